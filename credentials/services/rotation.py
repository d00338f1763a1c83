"""Re-encrypting every stored secret with the first key in FIELD_ENCRYPTION_KEY.

Rotation: put the new key first and keep the old one after it (FIELD_ENCRYPTION_KEY=new,old),
deploy, run `manage.py rotate_encryption_key`, then remove the old key.

Each encrypted column is walked in batches in primary-key order. A batch's ciphertexts are read
as stored (raw SQL: the plaintext never becomes a model attribute), re-encrypted in Python, and
written back in one statement and one transaction per batch. That statement writes a row only
where it still holds the ciphertext that was read, so a secret erased meanwhile (a key superseded
or revoked) stays erased and one saved meanwhile is never overwritten with a stale value; such
rows are then taken again one at a time, under a row lock. Never `bulk_update`, which corrupts
encrypted columns. A row already under the first key is left alone, so an interrupted run is
resumed by running it again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from encrypted_model_fields.fields import EncryptedMixin

from audit.models import AuditEvent
from audit.services import audit_record

# Large enough that a round trip is shared by hundreds of rows, small enough that a batch's
# statement and transaction stay short (a few hundred kilobytes, milliseconds of locks).
BATCH_SIZE = 500


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

    @property
    def rows_seen(self) -> int:
        return sum(self.counts.values())


class RotationImpossible(Exception):
    """No key is configured to rotate to."""


def encrypted_columns() -> list[tuple[type, str]]:
    """Return (model, field name) for every encrypted column of every installed model.

    Derived rather than listed, so that a secret stored by any app (credentials, the canary,
    webhook signing secrets) moves to the new key before the old one is dropped."""
    return [
        (model, model_field.name)
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
        for model_field in model._meta.local_concrete_fields
        if isinstance(model_field, EncryptedMixin)
    ]


def encryption_key_rotate(
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> RotationReport:
    """Re-encrypt every stored secret under the first configured key, `batch_size` rows per
    transaction; stop after `limit` re-encrypted rows when given. Call `progress(done, total)`
    for each row once its batch is committed. Audit the run; return what it did."""
    keys = list(settings.FIELD_ENCRYPTION_KEY)
    if not keys:
        raise RotationImpossible("FIELD_ENCRYPTION_KEY is empty.")
    fernets = [Fernet(key) for key in keys]
    columns = [_Column(model, field_name) for model, field_name in encrypted_columns()]
    total = sum(column.count() for column in columns)
    report = RotationReport(keys_configured=len(keys))

    def record(column: "_Column", pk: int, outcome: RowOutcome) -> None:
        report.counts[outcome] += 1
        if outcome == RowOutcome.UNDECRYPTABLE:
            report.undecryptable.append(f"{column.model._meta.label} {pk}")
        if progress is not None:
            progress(report.rows_seen, total)

    for column in columns:
        after = None
        while batch := column.read(after=after, size=batch_size):
            room = None if limit is None else limit - report.counts[RowOutcome.ROTATED]
            if room is not None and room <= 0:
                report.stopped_early = True
                break
            planned = _plan(batch, fernets, room=room)
            changes = [(pk, old, new) for pk, old, new, _ in planned if new is not None]
            written = column.write(changes)
            for pk, _, new, outcome in planned:
                if new is not None and pk not in written:
                    # Saved or erased between the read and the write: look at it again.
                    outcome = encrypted_value_rotate(
                        model=column.model, field_name=column.field_name, pk=pk, fernets=fernets
                    )
                record(column, pk, outcome)
            after = planned[-1][0]
        if report.stopped_early:
            break
    if progress is not None and not report.stopped_early and report.rows_seen != total:
        # Rows erased or added while the run went on: the count at the start was an estimate.
        progress(report.rows_seen, report.rows_seen)
    audit_record(
        action=AuditEvent.Action.ENCRYPTION_KEY_ROTATED,
        target="FIELD_ENCRYPTION_KEY",
        details={**{str(k): v for k, v in report.counts.items()}, "keys_configured": len(keys)},
    )
    return report


def encrypted_value_rotate(*, model, field_name: str, pk: int, fernets: list[Fernet]) -> RowOutcome:
    """Re-encrypt one stored value under the first of `fernets`, locked, in its own
    transaction."""
    column = _Column(model, field_name)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column.column} FROM {column.table} WHERE {column.pk} = %s{lock}",  # noqa: S608
            [pk],
        )
        row = cursor.fetchone()
        if row is None or row[0] is None:
            return RowOutcome.GONE
        outcome, rotated = value_reencrypt(row[0], fernets)
        if rotated is not None:
            cursor.execute(
                f"UPDATE {column.table} SET {column.column} = %s WHERE {column.pk} = %s",  # noqa: S608
                [rotated, pk],
            )
    return outcome


def value_reencrypt(token: str, fernets: list[Fernet]) -> tuple[RowOutcome, str | None]:
    """Return what rotating the stored `token` means, and its new token when it needs one.

    Each key is tried once, in order: a token under the first key is current; one under a later
    key is decrypted with it and encrypted with the first."""
    data = token.encode("utf-8")
    for index, fernet in enumerate(fernets):
        try:
            plaintext = fernet.decrypt(data)
        except InvalidToken:
            continue
        if index == 0:
            return RowOutcome.CURRENT, None
        return RowOutcome.ROTATED, fernets[0].encrypt(plaintext).decode("utf-8")
    return RowOutcome.UNDECRYPTABLE, None


def _plan(batch, fernets, *, room: int | None) -> list[tuple[int, str, str | None, RowOutcome]]:
    """Return (pk, stored token, new token or None, outcome) for the batch's rows, up to the
    row that brings the rotations to `room`."""
    planned = []
    rotations = 0
    for pk, token in batch:
        outcome, new = value_reencrypt(token, fernets)
        planned.append((pk, token, new, outcome))
        rotations += new is not None
        if room is not None and rotations >= room:
            break
    return planned


class _Column:
    """One encrypted column, read and written as stored, past the field."""

    def __init__(self, model, field_name: str):
        quote = connection.ops.quote_name
        self.model = model
        self.field_name = field_name
        self.table = quote(model._meta.db_table)
        self.column = quote(model._meta.get_field(field_name).column)
        self.pk = quote(model._meta.pk.column)

    def count(self) -> int:
        return self.model._base_manager.filter(**{f"{self.field_name}__isnull": False}).count()

    def read(self, *, after: int | None, size: int) -> list[tuple[int, str]]:
        """Return up to `size` (pk, ciphertext) pairs past the primary key `after`."""
        where = f"{self.column} IS NOT NULL"
        params: list = []
        if after is not None:
            where += f" AND {self.pk} > %s"
            params.append(after)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {self.pk}, {self.column} FROM {self.table} "  # noqa: S608
                f"WHERE {where} ORDER BY {self.pk} LIMIT %s",
                [*params, size],
            )
            return cursor.fetchall()

    def write(self, changes: list[tuple[int, str, str]]) -> set[int]:
        """Store each (pk, old, new)'s new token where the row still holds the old one, in one
        statement and transaction; return the primary keys written."""
        if not changes:
            return set()
        rows = ", ".join(["(%s, %s, %s)"] * len(changes))
        # One statement on PostgreSQL and SQLite alike (UPDATE … FROM with RETURNING).
        sql = (
            f"WITH rotation (row_pk, old_token, new_token) AS (VALUES {rows}) "  # noqa: S608
            f"UPDATE {self.table} SET {self.column} = rotation.new_token FROM rotation "
            f"WHERE {self.table}.{self.pk} = rotation.row_pk "
            f"AND {self.table}.{self.column} = rotation.old_token "
            f"RETURNING {self.table}.{self.pk}"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [value for change in changes for value in change])
            return {pk for (pk,) in cursor.fetchall()}
