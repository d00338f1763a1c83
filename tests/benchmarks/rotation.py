"""Key rotation: `manage.py rotate_encryption_key` over 100,000 stored secrets.

100,000 active credentials with distinct secrets, encrypted with the key the database was set
up with (OLD), and some superseded ones (secret erased), are written straight into the table
(COPY on PostgreSQL). FIELD_ENCRYPTION_KEY then becomes NEW,OLD as an operator would set it
(the setting and the library's crypter, as the tests switch keys), and the command runs to the
end. Zero loss: every stored value must decrypt with NEW alone, every benchmark secret to what
was stored, and the erased ones stay erased. Resumable: a second rotation (NEWER,NEW) is
stopped after a third of the rows with `--limit`, then run again; nothing may be re-encrypted
twice or left behind. Afterwards the benchmark rows are deleted and what is left is rotated
back to OLD, so that later sections find the database as they expect.

Runs on SQLite too (the report names the database); CI measures it on PostgreSQL.
"""

import cProfile
import io
import pstats
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from encrypted_model_fields import fields as encrypted_fields

from tests.benchmarks.harness import SMALL, Section, Target, scaled

ACTIVE = scaled(100_000)
ERASED = scaled(1_000)
TARGET_SECONDS = 60.0
# How many rows the Fernet-only timing and the row-by-row comparison take (one commit per row
# is slow: a sample is enough).
SAMPLE = scaled(5_000, least=200)
ROW_BY_ROW_SAMPLE = scaled(1_000, least=100)
TOKENS_TABLE = "bench_rotation_tokens"
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass
class Run:
    """One `rotate_encryption_key` run, measured."""

    label: str
    details: dict
    seconds: float
    cpu_seconds: float
    statements: int
    database_seconds: float
    # {kind of statement: (how many, seconds)}
    database_split: dict[str, tuple[int, float]]
    profile: str = ""

    @property
    def seen(self) -> int:
        return sum(v for k, v in self.details.items() if k != "keys_configured")

    @property
    def per_second(self) -> float:
        return self.seen / self.seconds

    def row(self) -> str:
        d = self.details
        return (
            f"| {self.label} | {d['rotated']:,} | {d['current']:,} | {d['undecryptable']} | "
            f"{self.seconds:.2f} | {self.per_second:,.0f} | {self.cpu_seconds:.2f} | "
            f"{self.statements} | {self.database_seconds:.2f} |"
        )


@contextmanager
def _keys(*keys: str) -> Iterator[None]:
    """Configure FIELD_ENCRYPTION_KEY: the setting and the crypter the library built."""
    crypter = MultiFernet([Fernet(key) for key in keys])
    with (
        override_settings(FIELD_ENCRYPTION_KEY=list(keys)),
        mock.patch.object(encrypted_fields, "CRYPTER", crypter),
    ):
        yield


def _store(old: Fernet) -> tuple[int, dict[str, str]]:
    """Write ACTIVE credentials under `old` and ERASED superseded ones for one new merchant;
    return the merchant's id and {fingerprint: secret} of the active ones."""
    from credentials.fingerprints import secret_fingerprint
    from credentials.models import Credential
    from tests.factories import CredentialFactory, MerchantFactory

    merchant = MerchantFactory(name="Bench Rotation Ltd", slug="bench-rotation")
    template = CredentialFactory(merchant=merchant)
    # The erased rows are spread among the active ones, as superseded keys are.
    erased = set(range(0, ACTIVE + ERASED, (ACTIVE + ERASED) // ERASED)[:ERASED])
    expected, rows = {}, []
    for n in range(ACTIVE + ERASED):
        secret = f"sk_live_bench{n:07d}{secrets.token_hex(12)}"
        fingerprint = secret_fingerprint(secret)
        if n in erased:
            rows.append((n, None, fingerprint, "superseded"))
        else:
            expected[fingerprint] = secret
            rows.append((n, old.encrypt(secret.encode()).decode(), fingerprint, "active"))
    quote = connection.ops.quote_name
    table = quote(Credential._meta.db_table)
    overrides = {
        "secret": "tokens.token",
        "extra_secret": "NULL",
        "fingerprint": "tokens.fingerprint",
        "lifecycle_state": "tokens.state",
    }
    columns = [f.column for f in Credential._meta.concrete_fields if not f.primary_key]
    select = ", ".join(overrides.get(c, f"template.{quote(c)}") for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {TOKENS_TABLE} "
            "(n integer, token text, fingerprint varchar(64), state varchar(16))"
        )
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {TOKENS_TABLE} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO {TOKENS_TABLE} VALUES (%s, %s, %s, %s)", rows)  # noqa: S608
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
            f"SELECT {select} FROM {TOKENS_TABLE} AS tokens, {table} AS template "
            f"WHERE template.{quote('id')} = %s ORDER BY tokens.n",
            [template.pk],
        )
        cursor.execute(f"DROP TABLE {TOKENS_TABLE}")
        template.delete()
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")
    return merchant.pk, expected


def _credentials_table() -> str:
    from credentials.models import Credential

    return connection.ops.quote_name(Credential._meta.db_table)


def _raw(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _bench_tokens(merchant_id: int) -> dict[int, tuple[str, str | None, str]]:
    """Return {pk: (fingerprint, stored token, lifecycle state)} of the benchmark's rows."""
    return {
        pk: (fingerprint, token, state)
        for pk, fingerprint, token, state in _raw(
            "SELECT id, fingerprint, secret, lifecycle_state "  # noqa: S608
            f"FROM {_credentials_table()} WHERE merchant_id = %s",
            [merchant_id],
        )
    }


def _losses(key: str, merchant_id: int, expected: dict[str, str]) -> list[str]:
    """Return what `key` alone cannot read back as stored: every encrypted value of every
    table, and each benchmark secret compared with what was written."""
    from credentials.services.rotation import encrypted_columns

    fernet = Fernet(key)
    losses = []
    quote = connection.ops.quote_name
    for model, field_name in encrypted_columns():
        column = quote(model._meta.get_field(field_name).column)
        for pk, token in _raw(
            f"SELECT id, {column} FROM {quote(model._meta.db_table)} "  # noqa: S608
            f"WHERE {column} IS NOT NULL"
        ):
            try:
                fernet.decrypt(token.encode())
            except InvalidToken:
                losses.append(f"{model._meta.label} {pk} {field_name}: undecryptable")
    rows = _bench_tokens(merchant_id)
    found = {}
    for pk, (fingerprint, token, state) in rows.items():
        if state != "active":
            if token is not None:
                losses.append(f"{pk}: an erased secret came back")
            continue
        try:
            found[fingerprint] = fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            continue  # counted above
    if found != expected:
        wrong = sum(1 for fp, secret in expected.items() if found.get(fp) != secret)
        losses.append(f"{wrong} benchmark secret(s) missing or changed")
    erased = sum(1 for _, _, state in rows.values() if state != "active")
    if erased != ERASED:
        losses.append(f"{erased} erased rows instead of {ERASED}")
    return losses


def _rotate(label: str, *args: str, profile: bool = False) -> Run:
    """Run the command and return its measurements (counts from its audit event)."""
    from audit.models import AuditEvent

    out = io.StringIO()
    profiler = cProfile.Profile() if profile else None
    with CaptureQueriesContext(connection) as queries:
        cpu, started = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        call_command("rotate_encryption_key", *args, stdout=out)
        if profiler:
            profiler.disable()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    event = AuditEvent.objects.filter(action=AuditEvent.Action.ENCRYPTION_KEY_ROTATED).latest("pk")
    text = ""
    if profiler:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(8)
        text = stream.getvalue()
    return Run(
        label=label,
        details=event.details,
        seconds=seconds,
        cpu_seconds=cpu,
        statements=len(queries),
        database_seconds=sum(float(q["time"]) for q in queries.captured_queries),
        database_split=_split(queries.captured_queries),
        profile=text,
    )


def _split(queries: list[dict]) -> dict[str, tuple[int, float]]:
    split: dict[str, tuple[int, float]] = {}
    for query in queries:
        sql = query["sql"]
        kind = (
            "conditional writes"
            if sql.startswith("WITH rotation")
            else "reads and counts"
            if sql.startswith("SELECT")
            else "commits and the audit event"
        )
        count, seconds = split.get(kind, (0, 0.0))
        split[kind] = (count + 1, seconds + float(query["time"]))
    return split


def _fernet_microseconds(merchant_id: int, keys: list[str]) -> float:
    """Return the CPU time of re-encrypting one stored value, Fernet alone (no database)."""
    from credentials.services.rotation import value_reencrypt

    fernets = [Fernet(key) for key in keys]
    tokens = [
        token
        for _, token, state in list(_bench_tokens(merchant_id).values())[:SAMPLE]
        if state == "active"
    ]
    started = time.process_time()
    for token in tokens:
        value_reencrypt(token, fernets)
    return (time.process_time() - started) / len(tokens) * 1e6


def _row_by_row(merchant_id: int, keys: list[str]) -> float:
    """Rotate ROW_BY_ROW_SAMPLE benchmark rows one transaction per row (the shape rotation had
    before batches); return rows per second."""
    from credentials.models import Credential
    from credentials.services.rotation import encrypted_value_rotate

    fernets = [Fernet(key) for key in keys]
    pks = [
        pk
        for (pk,) in _raw(
            f"SELECT id FROM {_credentials_table()} "  # noqa: S608
            "WHERE merchant_id = %s AND secret IS NOT NULL ORDER BY id LIMIT %s",
            [merchant_id, ROW_BY_ROW_SAMPLE],
        )
    ]
    started = time.perf_counter()
    for pk in pks:
        encrypted_value_rotate(model=Credential, field_name="secret", pk=pk, fernets=fernets)
    return len(pks) / (time.perf_counter() - started)


def run() -> Section:
    title = "Key rotation: 100,000 secrets to a new key"
    old_keys = list(settings.FIELD_ENCRYPTION_KEY)
    new, newer = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    merchant_id, expected = _store(Fernet(old_keys[0]))
    stored_values = len(expected)
    try:
        with _keys(new, *old_keys):
            fernet_us = _fernet_microseconds(merchant_id, [new, *old_keys])
            full = _rotate("NEW,OLD: the whole run")
        full_losses = _losses(new, merchant_id, expected)
        if full.details["rotated"] != full.seen:
            full_losses.append(f"{full.seen - full.details['rotated']} value(s) not re-encrypted")

        with _keys(newer, new):
            third = full.seen // 3
            before = _bench_tokens(merchant_id)
            interrupted = _rotate(f"NEWER,NEW: stopped by --limit {third:,}", "--limit", str(third))
            after_first = _bench_tokens(merchant_id)
            resumed = _rotate("NEWER,NEW: run again", profile=full.seconds > TARGET_SECONDS)
            after_second = _bench_tokens(merchant_id)
        resumed_losses = _losses(newer, merchant_id, expected)
        with _keys(old_keys[0], newer):
            row_by_row = _row_by_row(merchant_id, [old_keys[0], newer])
    finally:
        _restore(merchant_id, old_keys, newer, new)

    first_rotated = {pk for pk in before if after_first[pk][1] != before[pk][1]}
    twice = sum(1 for pk in first_rotated if after_second[pk][1] != after_first[pk][1])
    left = sum(
        1 for pk, row in after_second.items() if row[1] is not None and row[1] == before[pk][1]
    )
    resumable = (
        interrupted.details["rotated"] == third
        and resumed.details["current"] == third
        and third + resumed.details["rotated"] == full.seen
        and twice == 0
        and left == 0
        and not resumed_losses
    )
    judged = not SMALL
    targets = [
        Target(
            f"{ACTIVE:,} secrets re-encrypted in ≤ {TARGET_SECONDS:.0f} s",
            f"{full.seconds:.1f} s for {full.seen:,} values ({full.per_second:,.0f} per s, "
            f"{connection.vendor})",
            full.seconds <= TARGET_SECONDS if judged else None,
        ),
        Target(
            "zero loss: every secret decrypts with the new key alone",
            "no loss" if not full_losses else "; ".join(full_losses[:3]),
            not full_losses,
        ),
        Target(
            "resumable",
            f"stopped after {third:,}, resumed: {resumed.details['rotated']:,} rotated, "
            f"{resumed.details['current']:,} left as they were, {twice} rotated twice, "
            f"{left} left behind",
            resumable,
        ),
    ]
    return Section(
        title, _body(full, interrupted, resumed, fernet_us, row_by_row, stored_values), targets
    )


def _body(
    full: Run, interrupted: Run, resumed: Run, fernet_us: float, row_by_row: float, stored: int
) -> str:
    fernet_seconds = fernet_us * full.seen / 1e6
    python_rest = max(0.0, full.cpu_seconds - fernet_seconds)
    share = {
        "Fernet": fernet_seconds,
        "the database (statements and their round trips)": full.database_seconds,
        "the rest of the Python (reading rows, building statements, progress)": python_rest,
    }
    bound = max(share, key=share.get)
    detail = ""
    _, write_seconds = full.database_split.get("conditional writes", (0, 0.0))
    if bound.startswith("the database") and write_seconds > full.database_seconds / 2:
        per_row = write_seconds / max(1, full.details["rotated"]) * 1e6
        detail = (
            f": mostly the conditional writes, {per_row:.0f} µs per re-encrypted row (each "
            "UPDATE writes a new version of the row and its index entries), not the round trips"
        )
    lines = [
        f"{stored:,} active benchmark credentials with distinct secrets under OLD and {ERASED:,} "
        f"superseded ones (secret erased), on {connection.vendor}, plus what earlier sections "
        "stored and the canary. Each run is `manage.py rotate_encryption_key` in this process "
        "(the command, its progress output and its audit event included).",
        "",
        "| run | re-encrypted | already current | undecryptable | s | values per s | "
        "process CPU s | statements | in the database s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        full.row(),
        interrupted.row(),
        resumed.row(),
        "",
        f"- Fernet alone (decrypt with the old key after the new one refused it, encrypt with "
        f"the new): {fernet_us:.1f} µs of CPU per value, {fernet_seconds:.2f} s of the whole "
        f"run's {full.seconds:.2f} s.",
        f"- Time spent in the database, round trips included: {full.database_seconds:.2f} s over "
        f"{full.statements} statements (batches of 500: a read and a conditional write each): "
        + "; ".join(
            f"{kind} {count} in {seconds:.2f} s"
            for kind, (count, seconds) in sorted(full.database_split.items())
        )
        + ".",
        f"- What bounds it: {bound} ({share[bound]:.2f} s of {full.seconds:.2f} s){detail}.",
        f"- One transaction per row, as rotation worked before, on {ROW_BY_ROW_SAMPLE:,} rows: "
        f"{row_by_row:,.0f} values per s, "
        f"{full.per_second / row_by_row:.0f}{TIMES} slower than the batches.",
    ]
    if resumed.profile:
        lines += [
            "",
            "Profile of the resumed run (target missed):",
            "",
            "```",
            resumed.profile.strip(),
            "```",
        ]
    return "\n".join(lines)


def _restore(merchant_id: int, old_keys: list[str], *later_keys: str) -> None:
    """Delete the benchmark's rows and put what is left back under the original keys."""
    from credentials.services.rotation import encryption_key_rotate

    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_credentials_table()} WHERE merchant_id = %s",  # noqa: S608
            [merchant_id],
        )
    with _keys(*old_keys, *later_keys):
        encryption_key_rotate()
