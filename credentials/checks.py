"""System checks: the configured encryption keys must decrypt what is stored.

django-encrypted-model-fields would otherwise hand back ciphertext as if it were the secret,
and the first sign of a lost key would be Stripe refusing a token.
"""

from django.core import checks
from django.db import DatabaseError, connection

from credentials.fields import SecretDecryptionError, decrypt_stored_value
from credentials.models import Credential, EncryptionCanary

# Enough rows to catch a key missing from the list without slowing every manage.py command.
SAMPLE_SIZE = 500


def _stored_ciphertexts():
    """Yield (label, ciphertext) for the canary and a sample of stored secrets."""
    sources = (
        (EncryptionCanary, "value"),
        (Credential, "secret"),
        (Credential, "extra_secret"),
    )
    for model, field_name in sources:
        column = model._meta.get_field(field_name).column
        table = model._meta.db_table
        quote = connection.ops.quote_name
        # Raw SQL: the ORM would decrypt (and raise) before the check could count failures.
        sql = (
            f"SELECT {quote('id')}, {quote(column)} FROM {quote(table)} "  # noqa: S608
            f"WHERE {quote(column)} IS NOT NULL ORDER BY {quote('id')} DESC LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [SAMPLE_SIZE])
            for pk, ciphertext in cursor.fetchall():
                yield f"{model._meta.label} {pk}", ciphertext


@checks.register(checks.Tags.database)
def check_stored_secrets_decrypt(app_configs=None, databases=None, **kwargs):
    """Return an error naming the rows the configured keys cannot decrypt.

    A database check: Django runs it only where a command asks for the database (migrate,
    `check --database default`), never on every manage.py command.
    """
    if not databases or "default" not in databases:
        return []
    failed: list[str] = []
    try:
        for label, ciphertext in _stored_ciphertexts():
            try:
                decrypt_stored_value(ciphertext)
            except SecretDecryptionError:
                failed.append(label)
    except DatabaseError:
        # Not migrated yet, or no database at all: nothing stored to prove.
        return []
    if not failed:
        return []
    shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
    return [
        checks.Error(
            f"FIELD_ENCRYPTION_KEY cannot decrypt {len(failed)} stored value(s): {shown}.",
            hint=(
                "Put the key these values were encrypted with back into FIELD_ENCRYPTION_KEY "
                "(comma-separated; the first encrypts, every key decrypts). If you are rotating "
                "keys, keep the old key listed until `manage.py rotate_encryption_key` finishes."
            ),
            id="credentials.E001",
        )
    ]
