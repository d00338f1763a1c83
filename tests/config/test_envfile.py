"""`python -m core.envfile`: the `.env` that `make run` writes on first start."""

import os
import stat

import pytest
from cryptography.fernet import Fernet

from core.envfile import main

GENERATED = (
    "DJANGO_SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "CREDENTIAL_FINGERPRINT_KEY",
    "DEMO_PASSWORD",
)


def read_env_file(path):
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            values[name] = value
    return values


@pytest.fixture
def env_path(tmp_path):
    return tmp_path / ".env"


def test_writes_every_generated_secret(env_path):
    assert main(["--path", str(env_path)]) == 0

    values = read_env_file(env_path)
    assert set(GENERATED) <= set(values)
    assert all(values[name] for name in GENERATED)


def test_debug_is_off_so_error_pages_show_no_settings_or_form_data(env_path):
    main(["--path", str(env_path)])

    assert read_env_file(env_path)["DJANGO_DEBUG"] == "false"


def test_secret_key_is_long_enough_for_production(env_path):
    main(["--path", str(env_path)])

    secret_key = read_env_file(env_path)["DJANGO_SECRET_KEY"]
    assert len(secret_key) >= 50
    assert len(set(secret_key)) >= 5


def test_field_encryption_key_is_a_working_fernet_key(env_path):
    main(["--path", str(env_path)])

    fernet = Fernet(read_env_file(env_path)["FIELD_ENCRYPTION_KEY"])
    assert fernet.decrypt(fernet.encrypt(b"sk_test_roundtrip")) == b"sk_test_roundtrip"


def test_every_generated_value_differs_from_the_others(env_path):
    main(["--path", str(env_path)])

    values = read_env_file(env_path)
    generated = [values[name] for name in GENERATED]
    assert len(set(generated)) == len(generated)


def test_file_is_readable_by_its_owner_only(env_path):
    main(["--path", str(env_path)])

    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600


def test_file_is_private_even_under_a_permissive_umask(env_path):
    previous = os.umask(0)
    try:
        main(["--path", str(env_path)])
    finally:
        os.umask(previous)

    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600


def test_existing_file_is_never_overwritten(env_path, capsys):
    env_path.write_text("FIELD_ENCRYPTION_KEY=the-key-that-encrypts-stored-data\n")
    env_path.chmod(0o640)

    assert main(["--path", str(env_path)]) == 0

    assert env_path.read_text() == "FIELD_ENCRYPTION_KEY=the-key-that-encrypts-stored-data\n"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o640
    assert "exists; keeping it" in capsys.readouterr().out


def test_second_run_keeps_the_first_runs_secrets(env_path):
    main(["--path", str(env_path)])
    first = env_path.read_text()

    main(["--path", str(env_path)])

    assert env_path.read_text() == first


def test_two_files_get_different_secrets(tmp_path):
    first, second = tmp_path / "first.env", tmp_path / "second.env"

    main(["--path", str(first)])
    main(["--path", str(second)])

    first_values, second_values = read_env_file(first), read_env_file(second)
    for name in GENERATED:
        assert first_values[name] != second_values[name], name


def test_key_option_prints_a_new_fernet_key_and_writes_nothing(env_path, capsys):
    assert main(["--key", "--path", str(env_path)]) == 0
    assert main(["--key", "--path", str(env_path)]) == 0

    first, second = capsys.readouterr().out.split()
    assert Fernet(first).decrypt(Fernet(first).encrypt(b"x")) == b"x"
    assert first != second
    Fernet(second)
    assert not env_path.exists()
