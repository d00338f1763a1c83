"""Re-encrypt every stored secret with the first key in FIELD_ENCRYPTION_KEY.

Rotation: put the new key first and keep the old one after it
(FIELD_ENCRYPTION_KEY=new,old), deploy, run this command, then remove the old key. Rows are
re-encrypted one at a time, each in its own transaction, with Fernet's own rotation (no
bulk_update, which corrupts encrypted columns). A row already under the first key is skipped,
so an interrupted run is resumed by running the command again.
"""

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from encrypted_model_fields import fields as encrypted_fields

from credentials.models import Credential, EncryptionCanary
from teams.models import AuditEvent
from teams.services import audit_record

ENCRYPTED_COLUMNS = ((Credential, "secret"), (EncryptionCanary, "value"))
BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key in FIELD_ENCRYPTION_KEY, row by "
        "row. Safe to interrupt and run again: rows already re-encrypted are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="Stop after re-encrypting this many rows (spread the work; run again to go on).",
        )

    def handle(self, *args, limit=None, **options):
        keys = list(settings.FIELD_ENCRYPTION_KEY)
        if not keys:
            raise CommandError("FIELD_ENCRYPTION_KEY is empty.")
        primary = Fernet(keys[0])
        crypter = encrypted_fields.CRYPTER
        rows = [
            (model, field_name, pk)
            for model, field_name in ENCRYPTED_COLUMNS
            for pk in model.objects.filter(**{f"{field_name}__isnull": False})
            .order_by("pk")
            .values_list("pk", flat=True)
        ]
        counts = {"rotated": 0, "current": 0, "undecryptable": 0, "gone": 0}
        undecryptable: list[str] = []
        total = len(rows)
        stopped = False
        for done, (model, field_name, pk) in enumerate(rows, start=1):
            if limit is not None and counts["rotated"] >= limit:
                self._progress(done - 1, total, final=True)
                self.stdout.write(f"Stopped after {limit} row(s), as asked; run again to go on.")
                stopped = True
                break
            outcome = self._rotate_row(model, field_name, pk, primary, crypter)
            counts[outcome] += 1
            if outcome == "undecryptable":
                undecryptable.append(f"{model._meta.label} {pk}")
            self._progress(done, total, final=done == total)
        audit_record(
            action=AuditEvent.Action.ENCRYPTION_KEY_ROTATED,
            target="FIELD_ENCRYPTION_KEY",
            details={**counts, "keys_configured": len(keys)},
        )
        self.stdout.write(
            f"Re-encrypted {counts['rotated']} value(s); {counts['current']} already used the "
            f"first key; {counts['gone']} were erased meanwhile; "
            f"{counts['undecryptable']} could not be decrypted."
        )
        if undecryptable:
            raise CommandError(
                "No configured key decrypts: "
                + ", ".join(undecryptable[:10])
                + (" …" if len(undecryptable) > 10 else "")
                + ". Add the key they were encrypted with to FIELD_ENCRYPTION_KEY and run again."
            )
        # A limit that happened to cover the last row finished the work too.
        if not stopped:
            self.stdout.write(
                self.style.SUCCESS(
                    "Every stored value now uses the first key: the other keys can be removed "
                    "from FIELD_ENCRYPTION_KEY."
                )
            )

    def _rotate_row(self, model, field_name, pk, primary, crypter) -> str:
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
                return "gone"
            token = row[0].encode("utf-8")
            try:
                primary.decrypt(token)
            except InvalidToken:
                pass
            else:
                return "current"
            try:
                rotated = crypter.rotate(token)
            except InvalidToken:
                return "undecryptable"
            cursor.execute(
                f"UPDATE {table} SET {column} = %s WHERE {quote('id')} = %s",  # noqa: S608
                [rotated.decode("utf-8"), pk],
            )
        return "rotated"

    def _progress(self, done: int, total: int, *, final: bool) -> None:
        if total == 0:
            return
        filled = round(BAR_WIDTH * done / total)
        bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"
        if self.stdout.isatty():
            self.stdout.write("\r" + bar, ending="\n" if final else "")
            self.stdout.flush()
        elif final or done % max(1, total // 10) == 0:
            # A log, not a terminal: one line per tenth of the work.
            self.stdout.write(bar)
