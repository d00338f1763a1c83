"""The beat's sweeps at scale: follow-up reminders, stale verifications and re-verifications
among 1,000,000 keys, with 100 and then 10,000 of them due.

Each sweep handles a bounded batch per run; here it is run again and again until nothing is
due, as beat would over successive runs, and its time is divided by the rows it handled. The
target: the time per due row at 10,000 due is at most twice that at 100, so the cost follows
the due rows, not the table. The follow-up sweep must also remind each due submission
exactly once. The plan of each sweep's query at full size shows the index it uses.

The data is made here with `INSERT … SELECT … FROM generate_series` (PostgreSQL only), apart
from the page benchmarks' generator: only the columns the sweeps read matter here.
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from tests.benchmarks.harness import SMALL, Section, Target, scaled

MERCHANTS = scaled(100_000, least=100)
KEYS_PER_MERCHANT = 10  # one in use, nine replaced long ago (their secret erased)
DUE_COUNTS = (scaled(100, least=10), scaled(10_000, least=100))
MAX_RATIO = 2.0
WARM_UP = 5
TIMES = "\N{MULTIPLICATION SIGN}"
MADE_UP_SECRET = "rk_live_" + "Sweeps0Bench0Made0Up0Not0A0Real0Key"

# What a merchant's key in use is, by merchant number % 100; the rest (90 %) are verified and
# acknowledged, re-checked some time in the next day: the keys the benchmark makes due.
REJECTED_WAITING = (0, 1)  # refused by Stripe, never acknowledged: its follow-up clock stays
UNREACHABLE = (2, 3)  # re-checked within hours
REMINDED = (4, 5)  # unacknowledged, reminded once, the next reminder due within a day
PENDING = 6  # submitted seconds ago
VERIFYING = 7  # a worker has it
BACKING_OFF = 8  # pending, its next attempt in a minute
PLAIN_FROM = 10


@dataclass
class Scenario:
    due: int
    handled: int = 0
    runs: int = 0
    seconds: float = 0.0
    ran_dry: bool = False  # a run found nothing left
    last_run_ms: float = 0.0  # the run that found nothing: the fixed cost of one run
    again: int = 0  # what one more run handled at once
    reminders: int = 0
    reminded_once: bool | None = None

    @property
    def per_row_ms(self) -> float:
        return self.seconds * 1000 / max(1, self.handled)


@dataclass
class Sweep:
    title: str
    make_due: Callable[[list[int], datetime], None]
    run: Callable[[datetime], int]
    selects: int = 1  # the queries that find the due rows, first in a run
    reminds: bool = False  # stores a reminder per due row, to be counted
    after_run: Callable[[int, datetime], None] | None = None
    scenarios: list[Scenario] = field(default_factory=list)
    plan: str = ""


# The data -------------------------------------------------------------------------------------
def _execute(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _generate(now: datetime) -> float:
    """Make MERCHANTS merchants with KEYS_PER_MERCHANT keys each; return the seconds taken."""
    from credentials.models import Credential

    started = time.perf_counter()
    _execute(
        """
        INSERT INTO merchants_merchant (name, slug, contact_email, contact_phone, website,
            country, requested_integrations, require_two_factor, created_at)
        SELECT 'Sweeps Merchant ' || n, 'sweeps-' || n, 'contact@sweeps-' || n || '.test', '',
            '', 'GB', '["online_payments"]'::jsonb, false, %s - interval '3 years'
        FROM generate_series(0, %s - 1) AS n
        """,
        (now, MERCHANTS),
    )
    ciphertext = Credential._meta.get_field("secret").get_db_prep_save(MADE_UP_SECRET, connection)
    # Key n belongs to merchant n % MERCHANTS; the first of each merchant is in use.
    _execute(
        f"""
        WITH numbered AS (
            SELECT n, n %% %(merchants)s AS m, n / %(merchants)s = 0 AS in_use,
                (n %% %(merchants)s) %% 100 AS part,
                %(now)s - make_interval(days => 30 * (n / %(merchants)s) + 1,
                                        secs => n %% 86400) AS submitted_at
            FROM generate_series(0, %(keys)s - 1) AS n
        ), keys AS (
            SELECT numbered.*, merchant.id AS merchant_id,
                CASE WHEN NOT in_use THEN 'verified'
                     WHEN part IN {REJECTED_WAITING} THEN 'rejected'
                     WHEN part IN {UNREACHABLE} THEN 'unreachable'
                     WHEN part IN ({PENDING}, {BACKING_OFF}) THEN 'pending'
                     WHEN part = {VERIFYING} THEN 'verifying'
                     ELSE 'verified' END AS state,
                in_use AND part IN {REJECTED_WAITING + REMINDED + (PENDING, VERIFYING)}
                    AS waiting
            FROM numbered JOIN merchants_merchant AS merchant ON merchant.slug = 'sweeps-' || m
        )
        INSERT INTO credentials_credential (merchant_id, provider, mode, kind, public_key,
            secret, extra_secret, secret_hint, fingerprint, requested_integrations, note,
            submitted_at, verification_state, verification_attempts, verification_round,
            verification_claimed_at, verification_next_attempt_at, checked_at,
            verification_code, verification_reason, account_id, account_name, account_country,
            limited_permissions, missing_permissions, helpdesk_flags, lifecycle_state,
            lifecycle_changed_at, revoked_reason, next_reverify_at, helpdesk_notified_at,
            acknowledged_at, followup_due_at, reminders_sent, last_reminded_at)
        SELECT merchant_id, 'stripe', 'live', 'restricted',
            'pk_live_sweeps' || lpad(n::text, 24, '0'),
            CASE WHEN in_use THEN %(ciphertext)s END, NULL,
            'rk_live_…' || right(lpad(n::text, 4, '0'), 4), md5('sweeps' || n),
            '["online_payments"]'::jsonb, '',
            CASE WHEN in_use AND part IN ({PENDING}, {VERIFYING})
                     THEN %(now)s - interval '10 seconds'
                 ELSE submitted_at END,
            state, 1, 0,
            CASE WHEN state = 'verifying' THEN %(now)s - interval '5 seconds' END,
            CASE WHEN in_use AND part = {BACKING_OFF} THEN %(now)s + interval '1 minute'
                 WHEN in_use AND part IN ({PENDING}, {VERIFYING}) THEN NULL
                 ELSE submitted_at END,
            CASE WHEN state IN ('pending', 'verifying') THEN NULL
                 ELSE submitted_at + interval '5 seconds' END,
            CASE WHEN state = 'rejected' THEN 'invalid_api_key' ELSE '' END, '',
            'acct_sweeps' || m, 'Sweeps account ' || m, 'GB', false, '[]'::jsonb, '[]'::jsonb,
            CASE WHEN in_use THEN 'active' ELSE 'superseded' END,
            CASE WHEN NOT in_use THEN submitted_at + interval '30 days' END, '',
            CASE WHEN NOT in_use OR state NOT IN ('verified', 'unreachable') THEN NULL
                 WHEN part IN {UNREACHABLE} THEN %(now)s + make_interval(mins => 60 + n %% 300)
                 ELSE %(now)s + make_interval(mins => 60 + n %% 1440) END,
            CASE WHEN in_use AND part IN ({PENDING}, {VERIFYING}) THEN NULL
                 ELSE submitted_at + interval '10 seconds' END,
            CASE WHEN waiting THEN NULL ELSE submitted_at + interval '2 hours' END,
            CASE WHEN in_use AND part IN {REJECTED_WAITING}
                     THEN submitted_at + interval '1 day'
                 WHEN in_use AND part IN {REMINDED}
                     THEN %(now)s + make_interval(mins => 60 + n %% 1380) END,
            CASE WHEN in_use AND part IN {REMINDED} THEN 1 ELSE 0 END,
            CASE WHEN in_use AND part IN {REMINDED} THEN %(now)s - interval '1 hour' END
        FROM keys
        """,  # noqa: S608  the f-string adds this module's constants, no input
        {
            "merchants": MERCHANTS,
            "keys": MERCHANTS * KEYS_PER_MERCHANT,
            "now": now,
            "ciphertext": ciphertext,
        },
    )
    # VACUUM sets the visibility map and ANALYZE the planner's statistics, as autovacuum
    # would soon after a load this size.
    _execute("VACUUM ANALYZE merchants_merchant, credentials_credential")
    return time.perf_counter() - started


def _plain_keys() -> list[int]:
    """Return the ids of the keys in use that no sweep has to handle, to be made due."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT credential.id FROM credentials_credential AS credential
            JOIN merchants_merchant AS merchant ON merchant.id = credential.merchant_id
            WHERE credential.lifecycle_state = 'active'
                AND substring(merchant.slug FROM 8)::int %% 100 >= %s
            ORDER BY credential.id
            """,
            (PLAIN_FROM,),
        )
        return [pk for (pk,) in cursor.fetchall()]


def _followups_due(ids: list[int], now: datetime) -> None:
    _execute(
        """
        UPDATE credentials_credential SET acknowledged_at = NULL, acknowledged_by_id = NULL,
            helpdesk_notified_at = %s - make_interval(hours => 25, mins => (id %% 60)::int),
            followup_due_at = %s - make_interval(hours => 1, mins => (id %% 60)::int)
        WHERE id = ANY(%s)
        """,
        (now, now, ids),
    )


def _stale_due(ids: list[int], now: datetime) -> None:
    """A third each: pending with a next attempt long past, pending with none (the broker was
    down at submission), verifying by a worker that died."""
    _execute(
        """
        UPDATE credentials_credential SET
            verification_state = CASE WHEN id %% 3 = 2 THEN 'verifying' ELSE 'pending' END,
            verification_next_attempt_at = CASE WHEN id %% 3 = 1 THEN NULL
                ELSE %s - make_interval(mins => 20 + (id %% 60)::int) END,
            submitted_at = %s - make_interval(mins => 20 + (id %% 60)::int),
            verification_claimed_at = CASE WHEN id %% 3 = 2
                THEN %s - make_interval(mins => 10 + (id %% 60)::int) END,
            next_reverify_at = NULL
        WHERE id = ANY(%s)
        """,
        (now, now, now, ids),
    )


def _rechecks_due(ids: list[int], now: datetime) -> None:
    """Due for their daily check; one in ten could not reach Stripe last time."""
    _execute(
        """
        UPDATE credentials_credential SET
            verification_state = CASE WHEN id %% 10 = 0 THEN 'unreachable' ELSE 'verified' END,
            next_reverify_at = %s - make_interval(mins => 1 + (id %% 600)::int)
        WHERE id = ANY(%s)
        """,
        (now, ids),
    )


def _rechecks_claimed(queued: int, now: datetime) -> None:
    """Do what the queued checks' first step does: move each key's next check on (the
    workers are not running here). The sweep queues the oldest due first."""
    _execute(
        """
        UPDATE credentials_credential SET next_reverify_at = %s + interval '1 day'
        WHERE id IN (
            SELECT id FROM credentials_credential
            WHERE lifecycle_state = 'active' AND verification_state IN ('verified', 'unreachable')
                AND next_reverify_at <= %s
            ORDER BY next_reverify_at, id LIMIT %s)
        """,
        (now, now, queued),
    )


# Measuring ------------------------------------------------------------------------------------
class _Explained(Exception):
    pass


def _explain(sweep: Sweep, now: datetime) -> str:
    """Return the plans (EXPLAIN ANALYZE) of the queries that find the sweep's due rows, as
    the sweep would run them now; the run stops there, before it changes or queues anything."""
    plans: list[str] = []

    def explain(execute, sql, params, many, context):
        statement = sql.lstrip().upper()
        if statement.startswith(("SAVEPOINT", "RELEASE", "EXPLAIN")):
            return execute(sql, params, many, context)
        if not statement.startswith("SELECT"):
            raise _Explained
        with context["connection"].cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
            plans.append("\n".join(line for (line,) in cursor.fetchall()))
        if len(plans) == sweep.selects:
            raise _Explained
        return execute(sql, params, many, context)

    try:
        with transaction.atomic(), connection.execute_wrapper(explain):
            sweep.run(now)
    except _Explained:
        pass
    return "\n\n".join(plans)


def _count_reminders(ids: list[int]) -> tuple[int, bool]:
    """Return how many reminders are stored about `ids`, and whether each has exactly one."""
    from django.db.models import Count

    from credentials.services.notifications import HELPDESK_REMINDER, credential_topic
    from mail.models import OutgoingEmail

    topics = [credential_topic(pk) for pk in ids]
    per_topic = (
        OutgoingEmail.objects.filter(kind=HELPDESK_REMINDER, topic__in=topics)
        .values("topic")
        .annotate(count=Count("pk"))
    )
    counts = {row["topic"]: row["count"] for row in per_topic}
    return sum(counts.values()), len(counts) == len(ids) and set(counts.values()) == {1}


def _measure(sweep: Sweep, ids: list[int], now: datetime) -> Scenario:
    scenario = Scenario(due=len(ids))
    sweep.make_due(ids, now)
    # Explained before every measurement alike (it reads the same pages); the last one is
    # reported, with the most rows due.
    sweep.plan = _explain(sweep, now)
    while True:
        started = time.perf_counter()
        handled = sweep.run(now)
        elapsed = time.perf_counter() - started
        scenario.seconds += elapsed
        scenario.runs += 1
        if not handled:
            scenario.ran_dry, scenario.last_run_ms = True, elapsed * 1000
            break
        scenario.handled += handled
        if sweep.after_run:
            sweep.after_run(handled, now)
        if scenario.runs > 10 * (len(ids) // 100 + 10):
            break  # a sweep that never runs dry: reported as such
    scenario.again = sweep.run(now)
    if sweep.reminds:
        scenario.reminders, scenario.reminded_once = _count_reminders(ids)
    return scenario


def _sweeps() -> list[Sweep]:
    from credentials.services.helpdesk import followups_send_due
    from credentials.services.rechecks import reverifications_queue_due
    from credentials.services.stale import verifications_requeue_stale

    return [
        Sweep(
            "Follow-up reminders (`followups_send_due`)",
            _followups_due,
            lambda now: followups_send_due(now=now),
            reminds=True,
        ),
        Sweep(
            "Stale verifications (`verifications_requeue_stale`)",
            _stale_due,
            lambda now: verifications_requeue_stale(now=now),
            selects=2,
        ),
        Sweep(
            "Re-verifications (`reverifications_queue_due`)",
            _rechecks_due,
            lambda now: reverifications_queue_due(now=now),
            after_run=_rechecks_claimed,
        ),
    ]


# The report -----------------------------------------------------------------------------------
def _targets(sweeps: list[Sweep]) -> list[Target]:
    small, large = DUE_COUNTS
    targets = []
    for sweep in sweeps:
        few, many = sweep.scenarios
        ratio = many.per_row_ms / few.per_row_ms if few.per_row_ms else float("inf")
        complete = all(s.ran_dry and s.handled == s.due for s in sweep.scenarios)
        measured = (
            f"{many.per_row_ms:.3f} ms per due row at {large:,} due, "
            f"{few.per_row_ms:.3f} ms at {small:,}: {ratio:.2f}{TIMES}"
        )
        if not complete:
            handled = " and ".join(
                f"{s.handled:,} of {s.due:,}" + ("" if s.ran_dry else ", never ran dry")
                for s in sweep.scenarios
            )
            measured += f" (handled {handled})"
        met = None if SMALL else complete and ratio <= MAX_RATIO
        name = sweep.title.split(" (")[0].lower()
        targets.append(
            Target(f"Sweeps: {name} costs ≤ 2{TIMES} per due row with 10,000 due", measured, met)
        )
        if sweep.reminds:
            once = all(s.reminded_once and s.again == 0 for s in sweep.scenarios)
            counted = ", ".join(f"{s.reminders:,} for {s.due:,} due" for s in sweep.scenarios)
            targets.append(
                Target(
                    "Sweeps: exactly one reminder per due submission",
                    f"{counted}; a second run sent "
                    f"{', '.join(str(s.again) for s in sweep.scenarios)}",
                    None if SMALL else once,
                )
            )
    return targets


def _body(sweeps: list[Sweep], *, generated: float, keys: int, total: float) -> str:
    lines = [
        f"{keys:,} keys of {MERCHANTS:,} merchants (one in use each, the others replaced long "
        f"ago with their secret erased; among the keys in use, rejected ones still waiting "
        f"for the helpdesk, unreachable, pending and verifying ones), made in {generated:.0f} s "
        f"by INSERTs over `generate_series`, then VACUUM ANALYZE. For each sweep, "
        f"{DUE_COUNTS[0]:,} and then {DUE_COUNTS[1]:,} other keys in use are made due, and the "
        "sweep runs until a run finds nothing (as beat would over successive runs); the time "
        "of every run, the last one included, is divided by the rows handled. The "
        "re-verification sweep only queues checks: between its runs the benchmark does what "
        "each queued check does first (moves the key's next check on), untimed. Tasks go to a "
        "throwaway queue on Redis; counts are the sweeps' return values. What a run costs per "
        "row once its query is an index range: the follow-up sweep claims the row, renders "
        "the reminder (three templates) and publishes its mail's task after commit; the stale "
        "sweep makes a conditional update and publishes a task (a run commits once); the "
        "re-verification sweep publishes a task. In the plans, the Filter under LockRows "
        "repeats the index's condition, which PostgreSQL checks again on a row that changed "
        "before it was locked; it removes no rows. "
        f"Whole section: {total:.0f} s.",
        "",
        "| sweep | due | runs | handled | total ms | ms per due row | empty run ms | "
        "again at once |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sweep in sweeps:
        name = sweep.title.split(" (")[0]
        for s in sweep.scenarios:
            lines.append(
                f"| {name} | {s.due:,} | {s.runs} | {s.handled:,} | {s.seconds * 1000:.0f} | "
                f"{s.per_row_ms:.3f} | {s.last_run_ms:.1f} | {s.again} |"
            )
    for sweep in sweeps:
        few, many = sweep.scenarios
        lines += ["", f"### {sweep.title}", ""]
        if sweep.reminds:
            lines.append(
                "Reminders stored: "
                + "; ".join(
                    f"{s.reminders:,} for {s.due:,} due submissions"
                    f" ({'one each' if s.reminded_once else 'NOT one each'})"
                    for s in sweep.scenarios
                )
                + "."
            )
        ratio = many.per_row_ms / few.per_row_ms if few.per_row_ms else float("inf")
        if ratio > MAX_RATIO:
            lines.append(
                f"Missed: {ratio:.2f}{TIMES} per due row. A run that finds nothing takes "
                f"{many.last_run_ms:.1f} ms (the query alone); the rest is per row: "
                "see the plan for rows the query visits and discards."
            )
        lines += [
            "",
            f"Plan of its query with {DUE_COUNTS[1]:,} due among {keys:,} keys:",
            "",
            "```",
            sweep.plan.strip() or "(no query ran)",
            "```",
        ]
    return "\n".join(lines)


def run() -> Section:
    title = "Sweeps at scale"
    if connection.vendor != "postgresql":
        return Section(
            title,
            "skipped: needs PostgreSQL (the data is made with generate_series): set "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/keyhouse.",
        )
    from django.utils import timezone

    started = time.perf_counter()
    sweeps = _sweeps()
    # One moment for the data and every run, so that nothing falls due while it is measured.
    now = timezone.now().replace(microsecond=0)
    generated = _generate(now)
    keys = MERCHANTS * KEYS_PER_MERCHANT
    pool = _plain_keys()
    random.Random(15).shuffle(pool)  # due keys spread over the table, as in life
    plain = iter(pool)
    for sweep in sweeps:
        # Unmeasured: templates compiled, connections to Redis open, the table's pages read.
        _measure(sweep, [next(plain) for _ in range(WARM_UP)], now)
    for due in DUE_COUNTS:
        for sweep in sweeps:
            ids = [next(plain) for _ in range(due)]
            sweep.scenarios.append(_measure(sweep, ids, now))
    return Section(
        title,
        _body(sweeps, generated=generated, keys=keys, total=time.perf_counter() - started),
        targets=_targets(sweeps),
    )
