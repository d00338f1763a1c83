"""`manage.py rotate_encryption_key`: parse, call `credentials.services.rotation`, print."""

from django.core.management.base import BaseCommand, CommandError

from credentials.services.rotation import RotationImpossible, RowOutcome, encryption_key_rotate

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
        self._last = (0, 0)
        try:
            report = encryption_key_rotate(limit=limit, progress=self._progress)
        except RotationImpossible as error:
            raise CommandError(str(error)) from None
        if report.stopped_early:
            self._progress(*self._last, final=True)
            self.stdout.write(f"Stopped after {limit} row(s), as asked; run again to go on.")
        counts = report.counts
        self.stdout.write(
            f"Re-encrypted {counts[RowOutcome.ROTATED]} value(s); {counts[RowOutcome.CURRENT]} "
            f"already used the first key; {counts[RowOutcome.GONE]} were erased meanwhile; "
            f"{counts[RowOutcome.UNDECRYPTABLE]} could not be decrypted."
        )
        if report.undecryptable:
            raise CommandError(
                "No configured key decrypts: "
                + ", ".join(report.undecryptable[:10])
                + (" …" if len(report.undecryptable) > 10 else "")
                + ". Add the key they were encrypted with to FIELD_ENCRYPTION_KEY and run again."
            )
        # A limit that happened to cover the last row finished the work too.
        if not report.stopped_early:
            self.stdout.write(
                self.style.SUCCESS(
                    "Every stored value now uses the first key: the other keys can be removed "
                    "from FIELD_ENCRYPTION_KEY."
                )
            )

    def _progress(self, done: int, total: int, *, final: bool | None = None) -> None:
        self._last = (done, total)
        if total == 0:
            return
        final = done == total if final is None else final
        filled = round(BAR_WIDTH * done / total)
        bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"
        if self.stdout.isatty():
            self.stdout.write("\r" + bar, ending="\n" if final else "")
            self.stdout.flush()
        elif final or done % max(1, total // 10) == 0:
            # A log, not a terminal: one line per tenth of the work.
            self.stdout.write(bar)
