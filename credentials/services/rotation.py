"""Re-encrypting every stored secret with the first key in FIELD_ENCRYPTION_KEY.

Rotation: put the new key first and keep the old one after it (FIELD_ENCRYPTION_KEY=new,old),
deploy, run `manage.py rotate_encryption_key`, then remove the old key. Rows are re-encrypted
one at a time, each in its own transaction, with Fernet's own rotation (no bulk_update, which
corrupts encrypted columns). A row already under the first key is skipped, so an interrupted
run is resumed by running it again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import connection, transaction
from encrypted_model_fields import fields as encrypted_fields

from audit.models import AuditEvent
from audit.services import audit_record
from credentials.models import Credential, EncryptionCanary

ENCRYPTED_COLUMNS = (
    (Credential, "secret"),
    (Credential, "extra_secret"),
    (EncryptionCanary, "value"),
)


class RowOutcome(StrEnum):
    ROTATED = "rotated"
    CURRENT = "current"  # already under the first key
    UNDECRYPTABLE = "undecryptable"  # no configured key decrypts it
    GONE = "gone"  # erased meanwhile (a key superseded or revoked)


@dataclass
class RotationReport:
    """What a rotation run did."""

    keys_configured: int
    counts: dict[RowOutcome, int] = field(default_factory=lambda: dict.fromkeys(RowOutcome, 0))
    undecryptable: list[str] = field(default_factory=list)
    stopped_early: bool = False


class RotationImpossible(Exception):
    """No key is configured to rotate to."""


def encryption_key_rotate(
    *, limit: int | None = None, progress: Callable[[int, int], None] | None = None
) -> RotationReport:
    """Re-encrypt every stored secret under the first configured key, row by row; stop after
    `limit` re-encrypted rows when given. Audit the run; return what it did."""
    keys = list(settings.FIELD_ENCRYPTION_KEY)
    if not keys:
        raise RotationImpossible("FIELD_ENCRYPTION_KEY is empty.")
    primary = Fernet(keys[0])
    crypter = encrypted_fields.CRYPTER
    rows = [
        (model, field_name, pk)
        for model, field_name in ENCRYPTED_COLUMNS
        for pk in model.objects.filter(**{f"{field_name}__isnull": False})
        .order_by("pk")
        .values_list("pk", flat=True)
    ]
    report = RotationReport(keys_configured=len(keys))
    for done, (model, field_name, pk) in enumerate(rows, start=1):
        if limit is not None and report.counts[RowOutcome.ROTATED] >= limit:
            report.stopped_early = True
            break
        outcome = encrypted_value_rotate(
            model=model, field_name=field_name, pk=pk, primary=primary, crypter=crypter
        )
        report.counts[outcome] += 1
        if outcome == RowOutcome.UNDECRYPTABLE:
            report.undecryptable.append(f"{model._meta.label} {pk}")
        if progress is not None:
            progress(done, len(rows))
    audit_record(
        action=AuditEvent.Action.ENCRYPTION_KEY_ROTATED,
        target="FIELD_ENCRYPTION_KEY",
        details={**{str(k): v for k, v in report.counts.items()}, "keys_configured": len(keys)},
    )
    return report


def encrypted_value_rotate(
    *, model, field_name: str, pk: int, primary: Fernet, crypter
) -> RowOutcome:
    """Re-encrypt one stored value under `primary`, in its own transaction."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column = quote(model._meta.get_field(field_name).column)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    # Raw SQL: the ciphertext is rotated as it is, and the plaintext never becomes a
    # model attribute here.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table} WHERE {quote('id')} = %s{lock}",  # noqa: S608
            [pk],
        )
        row = cursor.fetchone()
        if row is None or row[0] is None:
            return RowOutcome.GONE
        token = row[0].encode("utf-8")
        try:
            primary.decrypt(token)
        except InvalidToken:
            pass
        else:
            return RowOutcome.CURRENT
        try:
            rotated = crypter.rotate(token)
        except InvalidToken:
            return RowOutcome.UNDECRYPTABLE
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE {quote('id')} = %s",  # noqa: S608
            [rotated.decode("utf-8"), pk],
        )
    return RowOutcome.ROTATED
