"""`manage.py rotate_encryption_key`: every stored secret moves to the first key, a batch of
rows per statement and transaction.

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
from django.test.utils import CaptureQueriesContext
from encrypted_model_fields import fields as encrypted_fields

from audit.models import AuditEvent
from credentials.models import Credential, EncryptionCanary, LifecycleState
from credentials.services import rotation
from credentials.services.rotation import RowOutcome, encryption_key_rotate
from integrations.scopes import Scope
from integrations.services.accounts import service_account_create
from tests.factories import CredentialFactory, fake_key
from tests.fake_kashier import fake_payment_api_key

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
NEWER = Fernet.generate_key().decode()
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


def test_the_command_says_how_long_it_took_and_how_fast_it_went(stored, use_keys):
    stored(4)
    use_keys(NEW, OLD)

    output = rotate()

    assert re.search(r"^Looked at 5 value\(s\) in \d+\.\d s \([\d,]+ per second\)\.$", output, re.M)


class Terminal(StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_shows_the_rate(stored, use_keys):
    stored(3)
    use_keys(NEW, OLD)
    out = Terminal()

    call_command("rotate_encryption_key", stdout=out)

    assert re.search(r"\r\[#{30}\] 4/4 [\d,]+/s\n", out.getvalue()), out.getvalue()


# Batches: one statement and one transaction for many rows


@pytest.mark.parametrize("count", [5, 6, 7], ids=["before", "on", "after"])
def test_every_row_is_rotated_whichever_side_of_a_batch_boundary_it_falls(stored, use_keys, count):
    secrets = stored(count)
    use_keys(NEW, OLD)

    report = encryption_key_rotate(batch_size=3)

    assert report.counts[RowOutcome.ROTATED] == count + 1
    assert not report.stopped_early
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


def test_each_batch_is_written_back_in_a_single_statement(stored, use_keys):
    stored(7)
    use_keys(NEW, OLD)

    with CaptureQueriesContext(connection) as queries:
        encryption_key_rotate(batch_size=3)

    updates = [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"].upper()]
    # Seven credentials in batches of three, and the canary.
    assert len(updates) == 4
    assert all(sql.startswith("WITH rotation") for sql in updates)


def test_the_number_of_queries_grows_with_batches_not_rows(stored, use_keys):
    stored(3)
    use_keys(NEW, OLD)
    with CaptureQueriesContext(connection) as few:
        encryption_key_rotate(batch_size=100)
    use_keys(OLD)
    stored(60)
    use_keys(NEWER, NEW, OLD)

    with CaptureQueriesContext(connection) as many:
        report = encryption_key_rotate(batch_size=100)

    assert report.counts[RowOutcome.ROTATED] == 64
    assert len(many) == len(few)


def test_a_limit_inside_a_batch_rotates_exactly_that_many_rows(stored, use_keys):
    secrets = stored(10)
    pks = sorted(secrets)
    use_keys(NEW, OLD)

    report = encryption_key_rotate(limit=5, batch_size=3)

    assert report.counts[RowOutcome.ROTATED] == 5
    assert report.stopped_early
    assert rotated_pks(pks) == set(pks[:5])


def test_undecryptable_rows_are_named_whichever_batch_they_fall_in(stored, use_keys):
    secrets = stored(7)
    pks = sorted(secrets)
    bad = [pks[1], pks[5]]
    for pk in bad:
        write_raw_secret(pk, Fernet(FOREIGN).encrypt(secrets[pk].encode()).decode())
    use_keys(NEW, OLD)

    report = encryption_key_rotate(batch_size=3)

    assert report.undecryptable == [f"credentials.Credential {pk}" for pk in bad]
    assert report.counts[RowOutcome.ROTATED] == 6
    assert rotated_pks(pks) == set(pks) - set(bad)


def test_every_encrypted_column_moves_to_the_new_key(stored, use_keys, merchant):
    secrets = stored(2)
    payment_api_key = fake_payment_api_key()
    kashier = CredentialFactory(merchant=merchant, provider="kashier", extra_secret=payment_api_key)
    secrets[kashier.pk] = kashier.secret
    account, _, signing_secret = service_account_create(
        name="pos-backend",
        scopes=[Scope.CREDENTIALS_READ],
        merchants=[merchant],
        webhook_url="https://pos.example.test/keyhouse",
        actor=None,
    )
    use_keys(NEW, OLD)

    output = rotate()

    # Three secrets, a Payment API key, a webhook signing secret and the canary.
    assert "Re-encrypted 6 value(s); 0 already used the first key" in output
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)
    assert Credential.objects.get(pk=kashier.pk).extra_secret == payment_api_key
    assert account.endpoints.get().signing_secret == signing_secret


# Rows changed by someone else between the rotation's read and its write


class Crash(Exception):
    """The process dies (a deploy, an out-of-memory kill) in the middle of a batch."""


@pytest.fixture
def meanwhile(monkeypatch):
    """Return a function that makes `change()` happen once, after the rotation has read the
    row `pk` and before it writes the row back."""

    def arrange(pk, change):
        read = raw_column(Credential, "secret", pk)
        original = rotation.value_reencrypt

        def reencrypt_then_change(token, fernets):
            nonlocal read
            result = original(token, fernets)
            if token == read:
                read = None
                change()
            return result

        monkeypatch.setattr(rotation, "value_reencrypt", reencrypt_then_change)

    return arrange


def test_a_secret_saved_meanwhile_is_not_overwritten_with_stale_ciphertext(
    stored, use_keys, meanwhile
):
    secrets = stored(6)
    pk = sorted(secrets)[3]
    use_keys(NEW, OLD)
    replacement = fake_key("sk_test_")
    saved = {}

    def save():
        credential = Credential.objects.get(pk=pk)
        credential.secret = replacement
        credential.save(update_fields=["secret"])
        saved["token"] = raw_column(Credential, "secret", pk)

    meanwhile(pk, save)

    report = encryption_key_rotate(batch_size=4)

    assert raw_column(Credential, "secret", pk) == saved["token"]
    assert report.counts[RowOutcome.ROTATED] == 6
    assert report.counts[RowOutcome.CURRENT] == 1
    secrets[pk] = replacement
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


def test_a_secret_saved_meanwhile_by_a_process_on_the_old_key_is_rotated_as_saved(
    stored, use_keys, meanwhile
):
    secrets = stored(6)
    pk = sorted(secrets)[0]
    use_keys(NEW, OLD)
    replacement = fake_key("sk_live_")
    meanwhile(pk, lambda: write_raw_secret(pk, Fernet(OLD).encrypt(replacement.encode()).decode()))

    report = encryption_key_rotate(batch_size=4)

    assert report.counts[RowOutcome.ROTATED] == 7
    secrets[pk] = replacement
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


def test_a_secret_erased_meanwhile_stays_erased(stored, use_keys, meanwhile):
    secrets = stored(5)
    pk = sorted(secrets)[2]
    use_keys(NEW, OLD)
    meanwhile(
        pk,
        lambda: Credential.objects.filter(pk=pk).update(
            secret=None, lifecycle_state=LifecycleState.REVOKED
        ),
    )

    output = rotate()

    assert "Re-encrypted 5 value(s); 0 already used the first key; 1 were erased meanwhile" in (
        output
    )
    assert raw_column(Credential, "secret", pk) is None
    del secrets[pk]
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)


def test_a_run_that_dies_mid_batch_keeps_the_batches_written_and_resumes_after_them(
    stored, use_keys, monkeypatch
):
    secrets = stored(10)
    pks = sorted(secrets)
    use_keys(NEW, OLD)
    original = rotation.value_reencrypt
    calls = 0

    def dies_at_the_sixth_row(token, fernets):
        nonlocal calls
        calls += 1
        if calls == 6:
            raise Crash
        return original(token, fernets)

    monkeypatch.setattr(rotation, "value_reencrypt", dies_at_the_sixth_row)
    with pytest.raises(Crash):
        encryption_key_rotate(batch_size=4)

    # The first batch was written; nothing of the second.
    assert rotated_pks(pks) == set(pks[:4])
    tokens = {pk: raw_column(Credential, "secret", pk) for pk in pks[:4]}

    report = encryption_key_rotate(batch_size=4)

    assert report.counts[RowOutcome.CURRENT] == 4
    assert report.counts[RowOutcome.ROTATED] == 7
    assert {pk: raw_column(Credential, "secret", pk) for pk in pks[:4]} == tokens
    assert_everything_decrypts_with_the_new_key_alone(secrets, use_keys)
