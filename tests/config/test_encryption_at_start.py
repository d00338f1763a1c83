"""Every process refuses to start when FIELD_ENCRYPTION_KEY cannot read what is stored: the
web application, the worker and beat; `/healthz` says so too.

Each process runs for real, in a Python of its own, against a SQLite database migrated with
one key and then started with another.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
REFUSAL = "FIELD_ENCRYPTION_KEY cannot decrypt the values stored in this database"
STORED_KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()


def run(args, *, database: Path, key: str, timeout: float = 90):
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        KEYHOUSE_ENV_FILE=os.devnull,
        DATABASE_URL=f"sqlite:///{database}",
        FIELD_ENCRYPTION_KEY=key,
    )
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A database migrated (so holding the canary) under STORED_KEY."""
    path = tmp_path_factory.mktemp("encryption") / "keyhouse.sqlite3"
    result = run(["manage.py", "migrate", "--noinput"], database=path, key=STORED_KEY)
    assert result.returncode == 0, result.stderr
    return path


def test_the_web_application_loads_with_the_key_that_encrypted_the_data(database):
    result = run(["-c", "import config.wsgi, config.asgi"], database=database, key=STORED_KEY)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_the_web_application_refuses_to_load_with_another_key(database, module):
    result = run(["-c", f"import {module}"], database=database, key=OTHER_KEY)

    assert result.returncode != 0
    assert REFUSAL in result.stderr


def test_the_web_application_with_the_old_key_listed_second_loads(database):
    # Rotation: a new key first, the old one still listed, decrypts what is stored.
    result = run(["-c", "import config.wsgi"], database=database, key=f"{OTHER_KEY},{STORED_KEY}")

    assert result.returncode == 0, result.stderr


def test_the_worker_refuses_to_start_with_another_key(database):
    result = run(
        ["-m", "celery", "-A", "config.celery_app", "worker", "--pool=solo", "--loglevel=INFO"],
        database=database,
        key=OTHER_KEY,
    )

    assert result.returncode == 1
    assert REFUSAL in result.stderr + result.stdout
    assert "the worker will not start" in result.stderr + result.stdout


def test_beat_refuses_to_start_with_another_key(database, tmp_path):
    result = run(
        [
            "-m",
            "celery",
            "-A",
            "config.celery_app",
            "beat",
            f"--schedule={tmp_path / 'schedule'}",
            "--loglevel=INFO",
        ],
        database=database,
        key=OTHER_KEY,
    )

    assert result.returncode == 1
    assert "beat will not start" in result.stderr + result.stdout


@pytest.mark.django_db
def test_healthz_reports_503_and_encryption_false_when_the_canary_cannot_be_read(client):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE credentials_encryptioncanary SET value = %s",
            [Fernet(OTHER_KEY.encode()).encrypt(b"keyhouse-encryption-canary").decode()],
        )

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["encryption"] is False


@pytest.mark.django_db
def test_healthz_reports_encryption_true_with_the_right_key(client):
    assert client.get(reverse("healthz")).json()["encryption"] is True
