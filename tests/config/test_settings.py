"""The settings contract (DESIGN.md): what each environment variable does at start-up.

Settings are read once per process, so every test starts a fresh Python with an environment it
controls: none of the suite's own variables, and KEYHOUSE_ENV_FILE pointing at a file of the
test's choosing, so that a developer's `.env` cannot answer for a variable the test left out.
"""

import json
import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

# Every variable of the settings contract, plus the ones that choose settings and `.env`.
CONTRACT_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "EMAIL_KEEP_OPEN_SECONDS",
    "DEFAULT_FROM_EMAIL",
    "FIELD_ENCRYPTION_KEY",
    "CREDENTIAL_FINGERPRINT_KEY",
    "HELPDESK_EMAIL",
    "STRIPE_API_BASE",
    "STRIPE_TIMEOUT_SECONDS",
    "STRIPE_MAX_NETWORK_RETRIES",
    "FOLLOWUP_AFTER",
    "FOLLOWUP_CHECK_EVERY",
    "SITE_URL",
    "DEMO_PASSWORD",
    "LOG_LEVEL",
    "KEYHOUSE_ENV_FILE",
    "PORT",
    "WEB_PORT",
)
PRODUCTION_REQUIRED = (
    "DJANGO_SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "CREDENTIAL_FINGERPRINT_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "HELPDESK_EMAIL",
    "SITE_URL",
)
PRINT_SETTINGS = """
import json, sys
import django
django.setup()
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}, default=str))
"""


@pytest.fixture
def empty_env_file(tmp_path):
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


@pytest.fixture
def production_environment(tmp_path, empty_env_file):
    """Return a complete, valid production environment with made-up secrets."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "KEYHOUSE_ENV_FILE": str(empty_env_file),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "CREDENTIAL_FINGERPRINT_KEY": secrets.token_urlsafe(32),
        "DJANGO_ALLOWED_HOSTS": "keyhouse.example.test",
        "HELPDESK_EMAIL": "helpdesk@example.test",
        "SITE_URL": "https://keyhouse.example.test",
        # Never the development database under var/, nor CI's: a file of this test's own.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
    }


@pytest.fixture
def local_environment(tmp_path, empty_env_file):
    """Return the smallest environment the local settings start with."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "KEYHOUSE_ENV_FILE": str(empty_env_file),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "CREDENTIAL_FINGERPRINT_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'local.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
    }


def run_python(args, variables):
    """Run Python in the project with exactly `variables` on top of a neutral environment."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in CONTRACT_VARIABLES and not name.startswith("DJANGO_")
    }
    environment.update(variables)
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_settings(variables, *names):
    """Return the named settings as a process started with `variables` sees them."""
    result = run_python(["-c", PRINT_SETTINGS, *names], variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def refusal(variables):
    """Return the error output of a start-up that must fail."""
    result = run_python(["-c", "import django; django.setup()"], variables)
    assert result.returncode != 0, "the settings started although they should have refused"
    assert "ImproperlyConfigured" in result.stderr
    return result.stderr


# Production: secrets with no default, and the deployment checks.


def test_production_settings_pass_the_deployment_checks_without_warnings(
    production_environment,
):
    migrated = run_python(["manage.py", "migrate", "--noinput"], production_environment)
    assert migrated.returncode == 0, migrated.stderr

    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_environment
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_production_settings_ignore_django_debug(production_environment):
    values = read_settings({**production_environment, "DJANGO_DEBUG": "true"}, "DEBUG")

    assert values == {"DEBUG": False}


@pytest.mark.parametrize("name", PRODUCTION_REQUIRED)
def test_production_settings_refuse_to_start_without(name, production_environment):
    del production_environment[name]

    assert f"Set the {name} environment variable" in refusal(production_environment)


@pytest.mark.parametrize("name", PRODUCTION_REQUIRED)
def test_production_settings_refuse_to_start_with_an_empty(name, production_environment):
    production_environment[name] = " "

    errors = refusal(production_environment)

    assert name in errors


def test_production_settings_do_not_take_a_missing_secret_from_the_repository_env_file(
    production_environment,
):
    # The repository's `.env` (when `make run` wrote one) holds a DJANGO_SECRET_KEY; only the
    # file named by KEYHOUSE_ENV_FILE may be read, and it is empty.
    del production_environment["DJANGO_SECRET_KEY"]

    assert "Set the DJANGO_SECRET_KEY environment variable" in refusal(production_environment)


def test_production_settings_refuse_an_encryption_key_equal_to_the_secret_key(
    production_environment,
):
    key = Fernet.generate_key().decode()
    production_environment["DJANGO_SECRET_KEY"] = key
    production_environment["FIELD_ENCRYPTION_KEY"] = key

    errors = refusal(production_environment)

    assert "FIELD_ENCRYPTION_KEY must differ from DJANGO_SECRET_KEY" in errors
    assert key not in errors


def test_production_settings_refuse_the_secret_key_among_older_encryption_keys(
    production_environment,
):
    key = Fernet.generate_key().decode()
    production_environment["DJANGO_SECRET_KEY"] = key
    production_environment["FIELD_ENCRYPTION_KEY"] = f"{Fernet.generate_key().decode()},{key}"

    assert "FIELD_ENCRYPTION_KEY must differ from DJANGO_SECRET_KEY" in refusal(
        production_environment
    )


def test_production_settings_refuse_a_short_secret_key(production_environment):
    production_environment["DJANGO_SECRET_KEY"] = "too-short"

    assert "at least 50 random characters" in refusal(production_environment)


def test_production_settings_refuse_an_encryption_key_that_is_not_a_fernet_key(
    production_environment,
):
    production_environment["FIELD_ENCRYPTION_KEY"] = "not-a-fernet-key"

    assert "FIELD_ENCRYPTION_KEY defined incorrectly" in refusal(production_environment)


def test_allowed_hosts_forgive_spaces_after_commas(production_environment):
    production_environment["DJANGO_ALLOWED_HOSTS"] = "keyhouse.example.test, www.example.test"

    values = read_settings(production_environment, "ALLOWED_HOSTS")

    assert values == {"ALLOWED_HOSTS": ["keyhouse.example.test", "www.example.test"]}


@pytest.mark.parametrize(
    ("broker", "transport"),
    [
        ("redis://127.0.0.1:6379/0", "core.broker:Transport"),
        ("rediss://redis.example.test:6380/0", "core.broker:Transport"),
        ("filesystem://localhost/", None),
        ("amqp://guest@127.0.0.1//", None),
    ],
)
def test_a_redis_broker_gets_the_transport_with_one_shared_client(
    broker, transport, local_environment
):
    local_environment["CELERY_BROKER_URL"] = broker

    values = read_settings(local_environment, "CELERY_BROKER_TRANSPORT")

    assert values == {"CELERY_BROKER_TRANSPORT": transport}


# The environment and `.env`.


def test_real_environment_wins_over_the_env_file(local_environment, tmp_path):
    env_file = tmp_path / "keyhouse.env"
    env_file.write_text("HELPDESK_EMAIL=a@x.test\n")
    local_environment["KEYHOUSE_ENV_FILE"] = str(env_file)
    local_environment["HELPDESK_EMAIL"] = "b@x.test"

    assert read_settings(local_environment, "HELPDESK_EMAIL") == {"HELPDESK_EMAIL": "b@x.test"}


def test_env_file_fills_what_the_environment_leaves_unset(local_environment, tmp_path):
    env_file = tmp_path / "keyhouse.env"
    env_file.write_text("HELPDESK_EMAIL=a@x.test\nSITE_URL=https://portal.example.test/\n")
    local_environment["KEYHOUSE_ENV_FILE"] = str(env_file)

    values = read_settings(local_environment, "HELPDESK_EMAIL", "SITE_URL")

    assert values == {"HELPDESK_EMAIL": "a@x.test", "SITE_URL": "https://portal.example.test"}


def test_local_settings_on_a_fresh_checkout_write_the_env_file_and_start(
    local_environment, tmp_path
):
    env_file = tmp_path / "fresh.env"
    local_environment["KEYHOUSE_ENV_FILE"] = str(env_file)
    for name in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "CREDENTIAL_FINGERPRINT_KEY"):
        del local_environment[name]

    result = run_python(["manage.py", "makemigrations", "--check", "--dry-run"], local_environment)

    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert "DJANGO_SECRET_KEY=" in env_file.read_text()
    assert read_settings(local_environment, "DEBUG") == {"DEBUG": False}


def test_local_settings_keep_an_existing_env_file(local_environment, tmp_path):
    env_file = tmp_path / "kept.env"
    env_file.write_text("HELPDESK_EMAIL=a@x.test\n")
    local_environment["KEYHOUSE_ENV_FILE"] = str(env_file)
    del local_environment["DJANGO_SECRET_KEY"]

    result = run_python(["-c", "import django; django.setup()"], local_environment)

    assert "ImproperlyConfigured" in result.stderr  # no secret key in it: refused, not replaced
    assert env_file.read_text() == "HELPDESK_EMAIL=a@x.test\n"


def test_local_settings_write_nothing_when_the_environment_has_the_secrets(
    local_environment, tmp_path
):
    env_file = tmp_path / "absent.env"
    local_environment["KEYHOUSE_ENV_FILE"] = str(env_file)

    read_settings(local_environment, "DEBUG")

    assert not env_file.exists()


# Local settings without DEBUG (issue #12, finding 4).

GET_LOCALLY = """
import json, sys
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
answers = {}
for path in sys.argv[1:]:
    response = client.get(path)
    answers[path] = [response.status_code, response.get("Cache-Control", "")]
print(json.dumps(answers))
"""


def test_local_settings_default_to_debug_off(local_environment):
    assert read_settings(local_environment, "DEBUG") == {"DEBUG": False}


def test_local_settings_turn_debug_on_only_when_asked(local_environment):
    local_environment["DJANGO_DEBUG"] = "true"

    assert read_settings(local_environment, "DEBUG") == {"DEBUG": True}


def test_local_settings_serve_static_files_without_debug(local_environment):
    stylesheet = "/static/keyhouse/css/keyhouse.css"
    migrated = run_python(["manage.py", "migrate", "--noinput"], local_environment)
    assert migrated.returncode == 0, migrated.stderr

    result = run_python(
        ["-W", "ignore", "-c", GET_LOCALLY, stylesheet, "/accounts/login/"], local_environment
    )

    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers[stylesheet][0] == 200
    assert "no-store" not in answers[stylesheet][1]  # static files stay cacheable
    assert answers["/accounts/login/"][0] == 200
    assert "no-store" in answers["/accounts/login/"][1]


# Links in mail (SITE_URL) follow the web port.


def test_site_url_defaults_to_port_8000(local_environment):
    assert read_settings(local_environment, "SITE_URL") == {"SITE_URL": "http://127.0.0.1:8000"}


def test_site_url_follows_port_when_unset(local_environment):
    local_environment["PORT"] = "9123"

    assert read_settings(local_environment, "SITE_URL") == {"SITE_URL": "http://127.0.0.1:9123"}


def test_site_url_follows_the_web_port_in_the_worker_started_by_make_run(local_environment):
    # honcho numbers PORT per process (the worker gets the web's PORT + 100); `make run`
    # passes the web's port to every process as WEB_PORT.
    local_environment.update({"WEB_PORT": "9123", "PORT": "9223"})

    assert read_settings(local_environment, "SITE_URL") == {"SITE_URL": "http://127.0.0.1:9123"}


def test_site_url_when_set_wins_over_the_port(local_environment):
    local_environment.update(
        {"SITE_URL": "https://portal.example.test/", "PORT": "9123", "WEB_PORT": "9123"}
    )

    assert read_settings(local_environment, "SITE_URL") == {
        "SITE_URL": "https://portal.example.test"
    }


# SQLite shared by web and worker (issue #12, finding 12).

CONCURRENT_SUBMITS = """
import json, threading
import django
django.setup()
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse
from tests.factories import MembershipFactory, MerchantFactory, UserFactory, default_role, fake_key

merchant = MerchantFactory()
owner = UserFactory()
MembershipFactory(user=owner, merchant=merchant, role=default_role("owner"))
url = reverse("credentials:submit", kwargs={"slug": merchant.slug})
first_holds_its_transaction = threading.Event()
second_done = threading.Event()
answers = {}


def signed_in():
    client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    client.force_login(owner)
    return client


# Signed in beforehand: the sign-in's own write must not be what meets the lock.
clients = {"first": signed_in(), "second": signed_in()}


def submit(name):
    mode = "test" if name == "first" else "live"
    response = clients[name].post(url, {
        "publishable_key": fake_key(f"pk_{mode}_"),
        "secret_key": fake_key(f"sk_{mode}_"),
        "requested_integrations": ["online_payments"],
        "note": "",
    })
    return response.status_code


def first():
    try:
        # The first submission's transaction is still open (its row written, not committed)
        # when the second one starts.
        with transaction.atomic():
            answers["first"] = submit("first")
            first_holds_its_transaction.set()
            second_done.wait(timeout=1)
    except Exception as error:
        answers["first"] = repr(error)
    finally:
        first_holds_its_transaction.set()
        connections.close_all()


def second():
    first_holds_its_transaction.wait()
    try:
        answers["second"] = submit("second")
    except Exception as error:
        answers["second"] = repr(error)
    finally:
        second_done.set()
        connections.close_all()


threads = [threading.Thread(target=first), threading.Thread(target=second)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    answers["journal_mode"] = cursor.fetchone()[0]
from credentials.models import Credential
answers["stored"] = Credential.objects.filter(merchant=merchant).count()
print(json.dumps(answers))
"""


def test_two_concurrent_submissions_on_sqlite_both_succeed(local_environment):
    migrated = run_python(["manage.py", "migrate", "--noinput"], local_environment)
    assert migrated.returncode == 0, migrated.stderr

    result = run_python(["-W", "ignore", "-c", CONCURRENT_SUBMITS], local_environment)

    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers == {"first": 302, "second": 302, "journal_mode": "wal", "stored": 2}
    assert "database is locked" not in result.stderr


# Encryption keys.


def test_field_encryption_key_accepts_a_comma_separated_list_for_rotation(local_environment):
    new_key, old_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_token = Fernet(old_key).encrypt(b"sk_test_encryptedunderoldkey").decode()
    local_environment["FIELD_ENCRYPTION_KEY"] = f"{new_key}, {old_key}"
    code = f"""
import json
import django
django.setup()
from cryptography.fernet import Fernet
from django.conf import settings
from encrypted_model_fields import fields
from credentials.fields import decrypt_stored_value
print(json.dumps({{
    "keys": settings.FIELD_ENCRYPTION_KEY,
    "old_row": decrypt_stored_value({old_token!r}),
    "new_row_under_first_key": Fernet({new_key!r}).decrypt(fields.encrypt_str("x")).decode(),
}}))
"""

    result = run_python(["-c", code], local_environment)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "keys": [new_key, old_key],
        "old_row": "sk_test_encryptedunderoldkey",
        "new_row_under_first_key": "x",
    }


# Mail.


def test_email_url_defaults_to_the_console(local_environment):
    values = read_settings(local_environment, "EMAIL_BACKEND")

    assert values == {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


def test_email_url_console_prints_mail(local_environment):
    local_environment["EMAIL_URL"] = "console"

    values = read_settings(local_environment, "EMAIL_BACKEND")

    assert values == {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


def test_email_url_smtp_sets_host_and_port_on_the_connection_keeping_backend(
    local_environment,
):
    local_environment["EMAIL_URL"] = "smtp://host:2525"

    values = read_settings(local_environment, "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT")

    assert values == {
        "EMAIL_BACKEND": "mail.smtp.EmailBackend",
        "EMAIL_HOST": "host",
        "EMAIL_PORT": 2525,
    }


@pytest.mark.parametrize(("written", "seconds"), [(None, 10.0), ("0", 0.0), ("2.5", 2.5)])
def test_a_worker_keeps_its_smtp_connection_ten_seconds_unless_told(
    written, seconds, local_environment
):
    if written is not None:
        local_environment["EMAIL_KEEP_OPEN_SECONDS"] = written

    values = read_settings(local_environment, "EMAIL_KEEP_OPEN_SECONDS")

    assert values == {"EMAIL_KEEP_OPEN_SECONDS": seconds}


# Follow-up timing.


def test_followup_after_defaults_to_a_day(local_environment):
    assert read_settings(local_environment, "FOLLOWUP_AFTER") == {"FOLLOWUP_AFTER": 86400.0}


@pytest.mark.parametrize(
    ("written", "seconds"), [("86400", 86400.0), ("24h", 86400.0), ("90s", 90.0)]
)
def test_followup_after_accepts(written, seconds, local_environment):
    local_environment["FOLLOWUP_AFTER"] = written

    assert read_settings(local_environment, "FOLLOWUP_AFTER") == {"FOLLOWUP_AFTER": seconds}


def test_followup_after_refuses_an_unreadable_duration_naming_the_variable(local_environment):
    local_environment["FOLLOWUP_AFTER"] = "soon"

    errors = refusal(local_environment)

    assert "FOLLOWUP_AFTER: Cannot read the duration 'soon'" in errors
    assert "24h" in errors


# Production over HTTP.

GET_OVER_HTTP = """
import json, sys
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="keyhouse.example.test")
print(json.dumps({path: client.get(path).status_code for path in sys.argv[1:]}))
"""


def test_production_redirects_plain_http_to_https_except_the_health_check(
    production_environment,
):
    result = run_python(
        ["-W", "ignore", "-c", GET_OVER_HTTP, "/healthz", "/accounts/login/"],
        production_environment,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "/healthz": 200,
        "/accounts/login/": 301,
    }
