"""`manage.py rotate_encryption_key`: parse, call `credentials.services.rotation`, print."""

import time

from django.core.management.base import BaseCommand, CommandError

from credentials.services.rotation import RotationImpossible, RowOutcome, encryption_key_rotate

BAR_WIDTH = 30
# A terminal's bar is redrawn at most this often: a row takes microseconds.
REDRAW_SECONDS = 0.1


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key in FIELD_ENCRYPTION_KEY, a batch "
        "of rows per transaction. Safe to interrupt and run again: rows already re-encrypted "
        "are skipped."
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
        self._on_terminal = self.stdout.isatty()
        self._started = self._drawn_at = time.monotonic()
        try:
            report = encryption_key_rotate(limit=limit, progress=self._progress)
        except RotationImpossible as error:
            raise CommandError(str(error)) from None
        elapsed = time.monotonic() - self._started
        if report.stopped_early:
            self._progress(*self._last, final=True)
            self.stdout.write(f"Stopped after {limit} row(s), as asked; run again to go on.")
        counts = report.counts
        self.stdout.write(
            f"Re-encrypted {counts[RowOutcome.ROTATED]} value(s); {counts[RowOutcome.CURRENT]} "
            f"already used the first key; {counts[RowOutcome.GONE]} were erased meanwhile; "
            f"{counts[RowOutcome.UNDECRYPTABLE]} could not be decrypted."
        )
        self.stdout.write(
            f"Looked at {report.rows_seen} value(s) in {elapsed:.1f} s "
            f"({report.rows_seen / max(elapsed, 1e-6):,.0f} per second)."
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
        if self._on_terminal:
            now = time.monotonic()
            if final or now - self._drawn_at >= REDRAW_SECONDS:
                self._drawn_at = now
                rate = done / max(now - self._started, 1e-6)
                self.stdout.write(
                    f"\r{self._bar(done, total)} {rate:,.0f}/s", ending="\n" if final else ""
                )
                self.stdout.flush()
        elif final or done % max(1, total // 10) == 0:
            # A log, not a terminal: one line per tenth of the work.
            self.stdout.write(self._bar(done, total))

    @staticmethod
    def _bar(done: int, total: int) -> str:
        filled = min(BAR_WIDTH, round(BAR_WIDTH * done / total))
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"
