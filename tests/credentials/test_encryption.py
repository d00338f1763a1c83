"""Secrets at rest: encrypted in the database, never handed back as ciphertext.

The library builds its crypter when it is imported, so tests that change keys patch
`encrypted_model_fields.fields.CRYPTER`, never the settings (DESIGN.md, "Encryption at rest").
"""

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import serializers
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import IntegrityError, connection, transaction
from encrypted_model_fields import fields as encrypted_fields

from credentials.fields import SecretDecryptionError
from credentials.models import Credential, EncryptionCanary, LifecycleState
from tests.factories import CredentialFactory, fake_key

PREFIX = "sk_test_"


def windows(text, size=8):
    """Return every `size`-character stretch of `text`."""
    return {text[start : start + size] for start in range(len(text) - size + 1)}


def secret_windows(secret, size=8):
    """Return the stretches of the secret's random body: stretches that overlap the prefix
    ("k_test_A") also occur, by chance, in the publishable key and prove nothing."""
    return windows(secret.removeprefix(PREFIX), size)


def raw_row(model, pk):
    """Return the stored row as the database holds it, read past the ORM."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE {quote('id')} = %s", [pk])  # noqa: S608
        names = [column[0] for column in cursor.description]
        row = cursor.fetchone()
    return dict(zip(names, row, strict=True))


def write_raw_column(model, pk, column, value):
    """Store `value` as it is, past the field's encryption."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(model._meta.db_table)} SET {quote(column)} = %s "  # noqa: S608
            f"WHERE {quote('id')} = %s",
            [value, pk],
        )


def raw_secret_column(credential):
    return raw_row(Credential, credential.pk)["secret"]


def write_raw_secret_column(credential, value):
    write_raw_column(Credential, credential.pk, "secret", value)


def crypter_of(*keys):
    return MultiFernet([Fernet(key) for key in keys])


@pytest.fixture
def configured_key():
    """The key the test settings encrypt with (the first of FIELD_ENCRYPTION_KEY)."""
    return settings.FIELD_ENCRYPTION_KEY[0]


@pytest.fixture
def other_key():
    return Fernet.generate_key().decode()


@pytest.fixture
def credential(merchant, secret):
    return CredentialFactory(merchant=merchant, secret_value=secret)


@pytest.fixture
def canary(db):
    """The canary row the migration stores (recreated if a flushing test removed it)."""
    return EncryptionCanary.objects.first() or EncryptionCanary.objects.create(
        value=EncryptionCanary.PLAINTEXT
    )


@pytest.fixture
def use_crypter(monkeypatch):
    """Return a function that swaps the library's crypter for one with the given keys."""

    def use(*keys):
        monkeypatch.setattr(encrypted_fields, "CRYPTER", crypter_of(*keys))

    return use


# What the database holds.


def test_secret_column_holds_none_of_the_secret(credential, secret):
    stored = raw_secret_column(credential)

    assert secret not in stored
    assert secret.removeprefix(PREFIX) not in stored
    assert not {part for part in windows(secret) if part in stored}


def test_no_column_of_the_row_holds_any_part_of_the_secret_beyond_its_public_prefix(
    credential, secret
):
    row_text = " ".join(str(value) for value in raw_row(Credential, credential.pk).values())

    assert secret not in row_text
    assert secret.removeprefix(PREFIX) not in row_text
    # The prefix alone (mode and kind) is public by design: the hint shows it.
    leaked = {part for part in secret_windows(secret) if part in row_text}
    assert not leaked


def test_secret_column_is_a_fernet_token_under_the_configured_key(
    credential, secret, configured_key
):
    stored = raw_secret_column(credential)

    assert Fernet(configured_key).decrypt(stored.encode()).decode() == secret


def test_model_reads_the_secret_back(credential, secret):
    assert Credential.objects.get(pk=credential.pk).secret == secret


def test_values_list_reads_the_secret_back(credential, secret):
    assert Credential.objects.values_list("secret", flat=True).get(pk=credential.pk) == secret


def test_serialised_credential_carries_no_secret(credential, secret):
    dumped = serializers.serialize("json", Credential.objects.filter(pk=credential.pk))

    assert secret not in dumped
    assert raw_secret_column(credential) not in dumped
    assert not {part for part in secret_windows(secret) if part in dumped}


# A key that cannot decrypt.


def test_wrong_key_raises_instead_of_returning_ciphertext(credential, use_crypter, other_key):
    use_crypter(other_key)

    with pytest.raises(SecretDecryptionError):
        Credential.objects.get(pk=credential.pk)


def test_decryption_error_contains_neither_ciphertext_nor_secret(
    credential, secret, use_crypter, other_key
):
    stored = raw_secret_column(credential)
    use_crypter(other_key)

    with pytest.raises(SecretDecryptionError) as refused:
        Credential.objects.get(pk=credential.pk)

    error = refused.value
    for text in (str(error), repr(error)):
        assert stored not in text
        assert not {part for part in windows(stored) if part in text}
        assert secret not in text
        assert not {part for part in secret_windows(secret) if part in text}
    assert "FIELD_ENCRYPTION_KEY" in str(error)
    # Nothing chained either: a traceback shows only this error.
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_wrong_key_raises_for_values_list_too(credential, use_crypter, other_key):
    use_crypter(other_key)

    with pytest.raises(SecretDecryptionError):
        list(Credential.objects.filter(pk=credential.pk).values_list("secret", flat=True))


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("plaintext", id="a plaintext key written past the field"),
        pytest.param("", id="empty"),
        pytest.param("gAAAAABtruncated", id="a truncated token"),
        pytest.param("ünïcødé", id="non-ascii"),
    ],
)
def test_a_column_that_is_not_a_token_raises_instead_of_passing_for_the_secret(credential, stored):
    value = fake_key(PREFIX) if stored == "plaintext" else stored
    write_raw_secret_column(credential, value)

    with pytest.raises(SecretDecryptionError):
        Credential.objects.get(pk=credential.pk)


# Rotation: the first key encrypts, every key decrypts.


def test_rows_under_the_old_key_still_decrypt_with_new_and_old_listed(
    credential, secret, use_crypter, configured_key, other_key
):
    use_crypter(other_key, configured_key)

    assert Credential.objects.get(pk=credential.pk).secret == secret


def test_during_rotation_new_rows_are_encrypted_with_the_first_key(
    merchant, use_crypter, configured_key, other_key
):
    use_crypter(other_key, configured_key)
    secret = fake_key(PREFIX)

    credential = CredentialFactory(merchant=merchant, secret_value=secret)

    stored = raw_secret_column(credential).encode()
    assert Fernet(other_key).decrypt(stored).decode() == secret
    with pytest.raises(InvalidToken):
        Fernet(configured_key).decrypt(stored)


def test_resaving_a_row_during_rotation_makes_the_old_key_unnecessary(
    credential, secret, use_crypter, configured_key, other_key
):
    use_crypter(other_key, configured_key)
    credential = Credential.objects.get(pk=credential.pk)
    credential.save(update_fields=["secret"])

    use_crypter(other_key)

    assert Credential.objects.get(pk=credential.pk).secret == secret


def test_dropping_the_old_key_too_early_raises(credential, use_crypter, other_key):
    use_crypter(other_key)

    with pytest.raises(SecretDecryptionError):
        Credential.objects.get(pk=credential.pk)


# The system check credentials.E001: a database check, run by `check --database default`.


def test_check_passes_with_the_configured_key(canary, credential, merchant):
    CredentialFactory(merchant=merchant, secret=None, lifecycle_state=LifecycleState.SUPERSEDED)

    call_command("check", databases=["default"])


def test_check_passes_during_rotation_with_the_old_key_still_listed(
    canary, credential, use_crypter, configured_key, other_key
):
    use_crypter(other_key, configured_key)

    call_command("check", databases=["default"])


def test_check_fails_when_the_key_cannot_decrypt_stored_data(
    canary, credential, use_crypter, other_key
):
    use_crypter(other_key)

    with pytest.raises(SystemCheckError, match=r"credentials\.E001") as failed:
        call_command("check", databases=["default"])

    message = str(failed.value)
    assert f"credentials.EncryptionCanary {canary.pk}" in message
    assert f"credentials.Credential {credential.pk}" in message


def test_check_error_names_the_rows_but_contains_no_secret_or_ciphertext(
    canary, credential, secret, use_crypter, other_key
):
    stored = raw_secret_column(credential)
    use_crypter(other_key)

    with pytest.raises(SystemCheckError) as failed:
        call_command("check", databases=["default"])

    message = str(failed.value)
    assert secret not in message
    assert not {part for part in secret_windows(secret) if part in message}
    assert stored not in message
    assert not {part for part in windows(stored) if part in message}
    assert EncryptionCanary.PLAINTEXT not in message


def test_check_fails_on_a_credential_row_alone(canary, credential, other_key):
    # Only this row is under a foreign key; the canary still decrypts.
    foreign_token = Fernet(other_key).encrypt(fake_key(PREFIX).encode()).decode()
    write_raw_secret_column(credential, foreign_token)

    with pytest.raises(SystemCheckError, match=r"credentials\.E001") as failed:
        call_command("check", databases=["default"])

    message = str(failed.value)
    assert "cannot decrypt 1 stored value(s)" in message
    assert f"credentials.Credential {credential.pk}" in message
    assert "EncryptionCanary" not in message


def test_check_fails_on_the_canary_alone(canary, other_key):
    foreign_token = Fernet(other_key).encrypt(EncryptionCanary.PLAINTEXT.encode()).decode()
    write_raw_column(EncryptionCanary, canary.pk, "value", foreign_token)

    with pytest.raises(SystemCheckError, match=r"credentials\.E001") as failed:
        call_command("check", databases=["default"])

    assert f"credentials.EncryptionCanary {canary.pk}" in str(failed.value)


def test_check_without_the_database_reads_nothing_stored(
    canary, credential, use_crypter, other_key
):
    # Every manage.py command runs the plain checks: they must not need the database.
    use_crypter(other_key)

    call_command("check")


def test_check_lists_five_rows_and_counts_the_rest(canary, merchant, use_crypter, other_key):
    CredentialFactory.create_batch(7, merchant=merchant)
    use_crypter(other_key)

    with pytest.raises(SystemCheckError) as failed:
        call_command("check", databases=["default"])

    message = str(failed.value)
    assert "cannot decrypt 8 stored value(s)" in message
    assert "and 3 more" in message


# Assigned values are plaintext, whatever they look like.


def test_a_typed_value_that_is_a_valid_token_is_stored_as_typed_not_decrypted(credential):
    typed_plaintext = fake_key(PREFIX)
    token = encrypted_fields.CRYPTER.encrypt(typed_plaintext.encode()).decode()

    credential.secret = token
    credential.save()

    assert Credential.objects.get(pk=credential.pk).secret == token
    assert typed_plaintext not in raw_secret_column(credential)


def test_a_new_credential_created_with_a_token_keeps_the_token(merchant):
    token = encrypted_fields.CRYPTER.encrypt(fake_key(PREFIX).encode()).decode()

    credential = CredentialFactory(merchant=merchant, secret_value=token)

    assert Credential.objects.get(pk=credential.pk).secret == token


def test_to_python_never_decrypts():
    token = encrypted_fields.CRYPTER.encrypt(b"sk_test_behindthetoken").decode()
    field = Credential._meta.get_field("secret")

    assert field.to_python(token) == token
    assert field.clean(token, None) == token


# Erasing: superseded and revoked keys keep no secret.


@pytest.mark.parametrize("state", [LifecycleState.SUPERSEDED, LifecycleState.REVOKED])
def test_erasing_the_secret_stores_null(credential, state):
    credential.secret = None
    credential.lifecycle_state = state
    credential.save(update_fields=["secret", "lifecycle_state"])

    assert raw_secret_column(credential) is None
    assert Credential.objects.get(pk=credential.pk).secret is None


def test_database_refuses_an_active_credential_without_secret(credential):
    with pytest.raises(IntegrityError), transaction.atomic():
        Credential.objects.filter(pk=credential.pk).update(secret=None)


def test_database_refuses_a_new_active_credential_without_secret(merchant):
    with pytest.raises(IntegrityError), transaction.atomic():
        CredentialFactory(merchant=merchant, secret=None)


def test_database_refuses_a_superseded_credential_that_keeps_its_secret(credential):
    with pytest.raises(IntegrityError), transaction.atomic():
        Credential.objects.filter(pk=credential.pk).update(
            lifecycle_state=LifecycleState.SUPERSEDED
        )
