"""Can the configured FIELD_ENCRYPTION_KEY read what is stored? Every process asks at start.

A process running with the wrong key would encrypt new submissions with it, fail every
verification, and report itself healthy. The web application (config.wsgi, config.asgi), the
worker and beat (config.celery_app) refuse to start instead, and `/healthz` reports it.
"""

from django.db import DatabaseError, connection

from credentials.fields import SecretDecryptionError, decrypt_stored_value
from credentials.models import EncryptionCanary


class EncryptionKeyMismatch(Exception):
    """The configured FIELD_ENCRYPTION_KEY cannot decrypt the stored canary."""


REFUSAL = (
    "FIELD_ENCRYPTION_KEY cannot decrypt the values stored in this database, so {process} "
    "will not start: it would fail every verification and encrypt new keys with the wrong "
    "key. Put the key these values were encrypted with back into FIELD_ENCRYPTION_KEY "
    "(comma-separated: the first encrypts, every key listed decrypts)."
)


def encryption_canary_decrypts() -> bool | None:
    """Return True if the configured keys decrypt the stored canary, False if they do not,
    and None if there is nothing to ask (no database yet, not migrated, unreachable)."""
    table = connection.ops.quote_name(EncryptionCanary._meta.db_table)
    column = connection.ops.quote_name(EncryptionCanary._meta.get_field("value").column)
    try:
        with connection.cursor() as cursor:
            # Raw SQL: the field would raise before the answer could be given.
            cursor.execute(f"SELECT {column} FROM {table}")  # noqa: S608
            ciphertexts = [row[0] for row in cursor.fetchall()]
    except DatabaseError:
        return None
    if not ciphertexts:
        return None
    try:
        for ciphertext in ciphertexts:
            decrypt_stored_value(ciphertext)
    except SecretDecryptionError:
        return False
    return True


def encryption_key_ensure(*, process: str) -> None:
    """Raise EncryptionKeyMismatch, saying what to do, if the keys cannot read the canary."""
    if encryption_canary_decrypts() is False:
        raise EncryptionKeyMismatch(REFUSAL.format(process=process))
