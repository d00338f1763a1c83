"""`manage.py rotate_encryption_key`: every stored secret moves to the first key, row by row.

The operator's procedure (README, "Production"): list the new key first and keep the old one
(FIELD_ENCRYPTION_KEY=NEW,OLD), run the command (resumable), then drop the old key; every
secret must still decrypt. The library builds its crypter at import time, so these tests patch
`encrypted_model_fields.fields.CRYPTER` and set the setting alongside it (the command reads
the setting to know which key is first).
"""

import re
from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection
from encrypted_model_fields import fields as encrypted_fields

from audit.models import AuditEvent
from credentials.models import Credential, EncryptionCanary, LifecycleState
from tests.factories import CredentialFactory, fake_key

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
FOREIGN = Fernet.generate_key().decode()


def raw_column(model, field_name, pk) -> str | None:
    """Return the stored ciphertext as the database holds it, read past the ORM."""
    quote = connection.ops.quote_name
    column = quote(model._meta.get_field(field_name).column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {quote(model._meta.db_table)} "  # noqa: S608
            f"WHERE {quote('id')} = %s",
            [pk],
        )
        return cursor.fetchone()[0]


def write_raw_secret(pk, value):
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Credential._meta.db_table)} SET {quote('secret')} = %s "  # noqa: S608
            f"WHERE {quote('id')} = %s",
            [value, pk],
        )


def decrypts_with(key, ciphertext: str) -> bool:
    try:
        Fernet(key).decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


@pytest.fixture
def use_keys(monkeypatch, settings):
    """Return a function that configures FIELD_ENCRYPTION_KEY: the setting and the crypter."""

    def use(*keys):
        settings.FIELD_ENCRYPTION_KEY = list(keys)
        monkeypatch.setattr(encrypted_fields, "CRYPTER", MultiFernet([Fernet(key) for key in keys]))

    return use


@pytest.fixture
def canary(db):
    """The canary row the migration stores (recreated if a flushing test removed it)."""
    return EncryptionCanary.objects.first() or EncryptionCanary.objects.create(
        value=EncryptionCanary.PLAINTEXT
    )


@pytest.fixture
def under_old_key(use_keys, canary):
    """Start with everything, the canary included, encrypted with OLD alone."""
    use_keys(OLD)
    canary.save(update_fields=["value"])
    return canary


@pytest.fixture
def stored(under_old_key, merchant, owner):
    """Return a function storing `count` credentials under OLD; {pk: secret}."""

    def store(count: int) -> dict[int, str]:
        secrets = {}
        for index in range(count):
            mode = "live" if index % 3 == 0 else "test"
            secret = fake_key(f"sk_{mode}_")
            credential = CredentialFactory(
                merchant=merchant, submitted_by=owner, mode=mode, secret_value=secret
            )
            secrets[credential.pk] = secret
        return secrets

    return store


def rotate(*args) -> str:
    out = StringIO()
    call_command("rotate_encryption_key", *args, stdout=out)
    return out.getvalue()


def rotated_pks(pks) -> set[int]:
    """Return the rows whose stored ciphertext the new key alone decrypts."""
    return {pk for pk in pks if decrypts_with(NEW, raw_column(Credential, "secret", pk))}


def assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys):
    use_keys(NEW)
    for pk, secret in secrets.items():
        stored = raw_column(Credential, "secret", pk)
        assert decrypts_with(NEW, stored)
        assert not decrypts_with(OLD, stored)
        assert Credential.objects.get(pk=pk).secret == secret
    canary = EncryptionCanary.objects.get()
    assert canary.value == EncryptionCanary.PLAINTEXT
    assert not decrypts_with(OLD, raw_column(EncryptionCanary, "value", canary.pk))
    call_command("check", databases=["default"])


def rotate_then_drop_the_old_key(secrets, use_keys):
    rows = len(secrets) + 1  # and the canary
    use_keys(NEW, OLD)

    output = rotate()

    assert f"Re-encrypted {rows} value(s); 0 already used the first key" in output
    assert re.search(rf"^\[#{{30}}\] {rows}/{rows}$", output, re.M), output
    assert "the other keys can be removed" in output
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


# Rotation, then removal of the old key


def test_rotating_twenty_rows_lets_the_old_key_go_with_every_secret_intact(stored, use_keys):
    rotate_then_drop_the_old_key(stored(20), use_keys)


@pytest.mark.postgres
def test_rotating_three_hundred_rows_on_postgresql_lets_the_old_key_go_with_every_secret_intact(
    stored, use_keys
):
    rotate_then_drop_the_old_key(stored(300), use_keys)


def test_progress_bar_advances_in_tenths_when_not_on_a_terminal(stored, use_keys):
    stored(19)
    use_keys(NEW, OLD)

    bars = re.findall(r"^\[([#.]{30})\] (\d+)/20$", rotate(), re.M)

    done = [int(count) for _, count in bars]
    assert done == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert bars[-1][0] == "#" * 30


def test_dropping_the_old_key_before_rotating_fails_the_check(stored, use_keys):
    secrets = stored(3)
    use_keys(NEW)

    with pytest.raises(SystemCheckError, match=r"credentials\.E001") as failed:
        call_command("check", databases=["default"])

    assert "cannot decrypt 4 stored value(s)" in str(failed.value)
    for secret in secrets.values():
        assert secret not in str(failed.value)


def test_after_rotation_the_old_key_alone_fails_the_check(stored, use_keys):
    stored(3)
    use_keys(NEW, OLD)
    rotate()

    use_keys(OLD)

    with pytest.raises(SystemCheckError, match=r"credentials\.E001"):
        call_command("check", databases=["default"])


def test_check_passes_with_both_keys_listed_before_and_after_rotation(stored, use_keys):
    stored(3)
    use_keys(NEW, OLD)

    call_command("check", databases=["default"])
    rotate()
    call_command("check", databases=["default"])


def test_a_key_submitted_during_rotation_is_already_current(stored, use_keys, merchant):
    secrets = stored(2)
    use_keys(NEW, OLD)
    late = CredentialFactory(merchant=merchant)
    secrets[late.pk] = late.secret

    output = rotate()

    assert "Re-encrypted 3 value(s); 1 already used the first key" in output
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


# An interrupted rotation, resumed


def test_interrupted_rotation_resumes_where_it_stopped(stored, use_keys):
    secrets = stored(20)
    pks = sorted(secrets)
    use_keys(NEW, OLD)

    first = rotate("--limit", "7")

    assert "Re-encrypted 7 value(s); 0 already used the first key" in first
    assert "Stopped after 7 row(s), as asked; run again to go on." in first
    assert re.search(r"^\[#+\.+\] 7/21$", first, re.M), first
    assert "can be removed" not in first
    assert rotated_pks(pks) == set(pks[:7])
    for pk in pks[7:]:
        assert decrypts_with(OLD, raw_column(Credential, "secret", pk))
    # Every row still reads back while both keys are listed.
    assert {c.pk: c.secret for c in Credential.objects.all()} == secrets

    second = rotate()

    # The rest of the credentials and the canary; the first seven are left as they are.
    assert "Re-encrypted 14 value(s); 7 already used the first key" in second
    assert "the other keys can be removed" in second
    assert rotated_pks(pks) == set(pks)
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


def test_a_limit_that_covers_every_row_finishes_the_rotation_and_says_so(stored, use_keys):
    secrets = stored(3)
    use_keys(NEW, OLD)

    output = rotate("--limit", "4")

    assert "Re-encrypted 4 value(s); 0 already used the first key" in output
    assert "Stopped after" not in output
    assert "the other keys can be removed" in output
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


def test_rows_rotated_by_an_interrupted_run_are_not_encrypted_again(stored, use_keys):
    secrets = stored(5)
    use_keys(NEW, OLD)
    rotate("--limit", "2")
    first_two = sorted(secrets)[:2]
    tokens = {pk: raw_column(Credential, "secret", pk) for pk in first_two}

    rotate()

    assert {pk: raw_column(Credential, "secret", pk) for pk in first_two} == tokens


def test_running_again_after_a_complete_rotation_changes_nothing(stored, use_keys):
    secrets = stored(4)
    use_keys(NEW, OLD)
    rotate()
    tokens = {pk: raw_column(Credential, "secret", pk) for pk in secrets}

    output = rotate()

    assert "Re-encrypted 0 value(s); 5 already used the first key" in output
    assert {pk: raw_column(Credential, "secret", pk) for pk in secrets} == tokens


# Rows the command cannot or need not rotate


@pytest.mark.parametrize(
    "stored_value",
    [
        pytest.param("foreign token", id="encrypted with a key no longer configured"),
        pytest.param("plaintext", id="a plaintext key written past the field"),
    ],
)
def test_a_row_no_configured_key_decrypts_is_named_and_the_others_are_rotated(
    stored, use_keys, stored_value
):
    secrets = stored(5)
    bad_pk = sorted(secrets)[2]
    bad_value = (
        Fernet(FOREIGN).encrypt(secrets[bad_pk].encode()).decode()
        if stored_value == "foreign token"
        else secrets[bad_pk]
    )
    write_raw_secret(bad_pk, bad_value)
    use_keys(NEW, OLD)
    out = StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("rotate_encryption_key", stdout=out)

    message = str(failed.value)
    assert f"credentials.Credential {bad_pk}" in message
    assert secrets[bad_pk] not in message
    assert "Re-encrypted 5 value(s); 0 already used the first key" in out.getvalue()
    assert "1 could not be decrypted" in out.getvalue()
    assert raw_column(Credential, "secret", bad_pk) == bad_value
    others = set(secrets) - {bad_pk}
    assert rotated_pks(others) == others
    event = AuditEvent.objects.get(action=AuditEvent.Action.ENCRYPTION_KEY_ROTATED)
    assert event.details["undecryptable"] == 1
    assert event.details["rotated"] == 5


def test_superseded_and_revoked_credentials_are_skipped(stored, use_keys, merchant):
    secrets = stored(3)
    erased = [
        CredentialFactory(merchant=merchant, secret=None, lifecycle_state=state).pk
        for state in (LifecycleState.SUPERSEDED, LifecycleState.REVOKED)
    ]
    use_keys(NEW, OLD)

    output = rotate()

    assert "Re-encrypted 4 value(s); 0 already used the first key" in output
    assert re.search(r"^\[#{30}\] 4/4$", output, re.M), output
    for pk in erased:
        assert raw_column(Credential, "secret", pk) is None
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


# The audit trail


def test_rotation_is_audited_with_counts_and_no_key_material(stored, use_keys):
    secrets = stored(4)
    use_keys(NEW, OLD)
    rotate("--limit", "2")
    rotate()

    first, second = AuditEvent.objects.filter(
        action=AuditEvent.Action.ENCRYPTION_KEY_ROTATED
    ).order_by("pk")
    assert first.details == {
        "rotated": 2,
        "current": 0,
        "undecryptable": 0,
        "gone": 0,
        "keys_configured": 2,
    }
    assert second.details["rotated"] == 3
    assert second.details["current"] == 2
    assert first.actor is None
    ciphertexts = [raw_column(Credential, "secret", pk) for pk in secrets]
    for event in (first, second):
        text = f"{event.target} {event.details} {event.actor_email}"
        for key in (OLD, NEW):
            assert key not in text
            assert key[:16] not in text
        for value in (*secrets.values(), *ciphertexts, EncryptionCanary.PLAINTEXT):
            assert value not in text


def test_rotation_never_goes_through_bulk_update(stored, use_keys, monkeypatch):
    secrets = stored(3)
    use_keys(NEW, OLD)

    def refuse(*args, **kwargs):
        raise AssertionError("bulk_update corrupts encrypted columns")

    monkeypatch.setattr(type(Credential.objects.all()), "bulk_update", refuse)

    rotate()

    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)
