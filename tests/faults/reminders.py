"""Scenarios about the helpdesk's mail over time: reminders with more than one beat and worker,
and a mail server that is down and comes back.

Reminder periods are seconds here (`FOLLOWUP_AFTER`), not a day: what is counted is how many
reminders each submission got per period and in which order mail arrived, which does not
depend on the period's length.
"""

import itertools
import time
from collections import defaultdict

from tests.faults.browser import submit_each
from tests.faults.results import Outcome, spread
from tests.faults.stage import HELPDESK_NOTICE, HELPDESK_REMINDER, Run, wait_for

BACKLOG_KEYS = 20
BACKLOG_PERIOD = 12
MISSED_PERIODS = 5
SWEEP_STORM = 20
# Both reminders of each key fall inside the window; a third would need another period.
OBSERVED_PERIODS = 1.5
# A reminder is stored a moment after its sweep claimed it (longer when twenty sweeps start
# at once on a loaded machine), so two reminders' creation times may be that much closer
# than the period between the claims. Two reminders sent together would be seconds closer.
COMPOSE_MARGIN = 1.5

SMTP_KEYS = 6
SMTP_PERIOD = 6


def _reminder_gaps(stage) -> list[float]:
    """Return the seconds between consecutive reminders of each key, from the outbox."""
    from mail.models import OutgoingEmail

    created = defaultdict(list)
    rows = OutgoingEmail.objects.filter(kind=HELPDESK_REMINDER).order_by("created_at")
    for topic, created_at in rows.values_list("topic", "created_at"):
        created[topic].append(created_at)
    return [
        (later - earlier).total_seconds()
        for times in created.values()
        for earlier, later in itertools.pairwise(times)
    ]


def _overdue_backlog(stage, count: int) -> None:
    """Store `count` verified submissions the helpdesk was told of long ago and whose
    reminder is MISSED_PERIODS periods overdue, as after workers and beat were down."""
    from django.utils import timezone

    from credentials.models import VerificationState
    from tests.factories import CredentialFactory

    owner, merchants = stage.merchants(count)
    now = timezone.now()
    period = timezone.timedelta(seconds=BACKLOG_PERIOD)
    for merchant in merchants:
        CredentialFactory(
            merchant=merchant,
            submitted_by=owner,
            submitted_at=now - (MISSED_PERIODS + 1) * period,
            verification_state=VerificationState.VERIFIED,
            verification_code="verified",
            checked_at=now - (MISSED_PERIODS + 1) * period,
            helpdesk_notified_at=now - (MISSED_PERIODS + 1) * period,
            followup_due_at=now - MISSED_PERIODS * period,
        )


def two_beats_two_workers(run: Run) -> Outcome:
    """Concurrent sweeps never remind twice: with two beats each queueing the follow-up sweep
    every second, two workers running them side by side and a storm of sweeps queued at
    once, every overdue submission gets exactly one reminder per period: one for the whole
    backlog (not one per missed period), the next a full period later."""
    outcome = Outcome(
        done=(
            f"{BACKLOG_KEYS} unacknowledged submissions, their reminder {MISSED_PERIODS} "
            f"periods overdue (`FOLLOWUP_AFTER={BACKLOG_PERIOD}s`); two workers (prefork, 2 "
            "processes each) and two beats (follow-up sweep every 1 s each) started, "
            f"{SWEEP_STORM} sweeps queued at once; counted {OBSERVED_PERIODS} periods after "
            "each key's first reminder"
        )
    )
    from core.queue import enqueue

    with run.stage(
        "two_beats",
        outcome,
        FOLLOWUP_AFTER=f"{BACKLOG_PERIOD}s",
        FOLLOWUP_CHECK_EVERY="1",
    ) as stage:
        _overdue_backlog(stage, BACKLOG_KEYS)
        for _ in range(2):
            stage.start_worker(concurrency=2)
        for _ in range(2):
            stage.start_beat()
        for _ in range(SWEEP_STORM):
            enqueue("credentials.tasks.followups_send_due")

        everyone = wait_for(
            lambda: len(stage.received_per_key(HELPDESK_REMINDER)) == BACKLOG_KEYS, timeout=60
        )
        if not everyone:
            outcome.notes.append("not every submission got a first reminder within 60 s")
        # From the last key's first reminder: every key has had 1.5 periods since its own.
        firsts = {}
        for delivery, row in stage.deliveries_of(HELPDESK_REMINDER):
            firsts.setdefault(row.topic, delivery.received_at)
        last_first = max(firsts.values(), default=time.time())
        time.sleep(max(0.0, last_first + OBSERVED_PERIODS * BACKLOG_PERIOD - time.time()))

        stage.stop_processes()

        expected = f"{BACKLOG_KEYS} keys: 2 each"
        received = spread(stage.mail_per_key(HELPDESK_REMINDER))
        outcome.check("reminders received per key (sink)", received, expected, received == expected)
        stored = spread(list(_stored_reminders(stage).values()))
        outcome.check("reminders in the outbox per key", stored, expected, stored == expected)
        counted = spread(list(stage.credentials().values_list("reminders_sent", flat=True)))
        outcome.check("reminders_sent per key", counted, expected, counted == expected)
        duplicates = stage.duplicate_deliveries()
        outcome.check("messages delivered twice", duplicates, "0", duplicates == 0)
        gaps = _reminder_gaps(stage)
        shortest = min(gaps, default=0.0)
        outcome.check(
            "shortest gap between a key's reminders",
            f"{shortest:.1f} s",
            f"≥ {BACKLOG_PERIOD - COMPOSE_MARGIN} s (a period, less the time to store one)",
            bool(gaps) and shortest >= BACKLOG_PERIOD - COMPOSE_MARGIN,
        )
    return outcome


def _stored_reminders(stage) -> dict[int, int]:
    """Return how many reminders the outbox holds for each stored key."""
    from credentials.services.notifications import credential_topic
    from mail.models import OutgoingEmail

    counts = {}
    for pk in stage.credentials().values_list("pk", flat=True):
        counts[pk] = OutgoingEmail.objects.filter(
            kind=HELPDESK_REMINDER, topic=credential_topic(pk)
        ).count()
    return counts


def smtp_down_then_up(run: Run) -> Outcome:
    """A mail server that is down loses and doubles nothing, and reminders never overtake the
    notice they follow up (issue 16, item 5): while it is down nothing is marked sent and no
    reminder is due, since the follow-up clock starts when the helpdesk was actually told;
    once it is back every mail arrives exactly once, each notice before its first reminder."""
    outcome = Outcome(
        done=(
            f"SMTP sink down; {SMTP_KEYS} keys submitted and verified; kept down "
            f"{2 * SMTP_PERIOD} s more (two reminder periods, `FOLLOWUP_AFTER={SMTP_PERIOD}s`); "
            "sink up on the same port; waited for every mail and a first reminder per key"
        )
    )
    from mail.models import OutgoingEmail

    with run.stage(
        "smtp_down",
        outcome,
        FOLLOWUP_AFTER=f"{SMTP_PERIOD}s",
        FOLLOWUP_CHECK_EVERY="1",
    ) as stage:
        stage.mail.down()
        owner, merchants = stage.merchants(SMTP_KEYS)
        web = stage.start_web()
        stage.start_worker(concurrency=2)
        stage.start_beat()
        submit_each(web.browser(owner), merchants)
        wait_for(lambda: stage.decided() == SMTP_KEYS, timeout=60)
        time.sleep(2 * SMTP_PERIOD)

        mails = OutgoingEmail.objects.all()
        sent = mails.filter(state=OutgoingEmail.State.SENT).count()
        failed = mails.exclude(last_error="").count()
        reminders = mails.filter(kind=HELPDESK_REMINDER).count()
        told = stage.credentials().filter(helpdesk_notified_at__isnull=False).count()
        outcome.check(
            "while down: decided, mails stored, marked sent",
            f"{stage.decided()}, {mails.count()}, {sent}",
            f"{SMTP_KEYS}, {2 * SMTP_KEYS}, 0",
            (stage.decided(), mails.count(), sent) == (SMTP_KEYS, 2 * SMTP_KEYS, 0),
        )
        outcome.check(
            "while down: mails with a failed attempt, reminders stored, keys marked told",
            f"{failed}, {reminders}, {told}",
            f"{2 * SMTP_KEYS}, 0, 0",
            (failed, reminders, told) == (2 * SMTP_KEYS, 0, 0),
        )

        stage.mail.up()
        up_at = time.time()
        wait_for(lambda: stage.mail_settled(SMTP_KEYS), timeout=60)
        settled_after = time.time() - up_at
        wait_for(lambda: len(stage.received_per_key(HELPDESK_REMINDER)) == SMTP_KEYS, timeout=60)
        stage.stop_processes()
        stage.check_one_mail_each(SMTP_KEYS)
        outcome.notes.append(
            f"every notice and result arrived {settled_after:.0f} s after the sink came back "
            f"(mail retries back off from `EMAIL_RETRY_BASE_SECONDS=1`, doubling)"
        )
        _check_sent_once(outcome, stage)
        _check_notice_first(outcome, stage)
    return outcome


def _check_sent_once(outcome: Outcome, stage) -> None:
    """Check that each mail marked sent arrived once, and that none arrived unmarked."""
    from mail.models import OutgoingEmail

    arrived = defaultdict(int)
    for delivery in stage.mail.deliveries:
        arrived[delivery.outbox_id] += 1
    sent = list(
        OutgoingEmail.objects.filter(state=OutgoingEmail.State.SENT).values_list("pk", flat=True)
    )
    unmarked = sum(count for pk, count in arrived.items() if pk not in set(sent))
    arrivals = spread([arrived.get(pk, 0) for pk in sent], "mails marked sent")
    outcome.check(
        "after: arrivals per mail marked sent; arrivals of mail not marked sent",
        f"{arrivals}; {unmarked}",
        "1 each; 0",
        arrivals.endswith(": 1 each") and unmarked == 0,
    )


def _check_notice_first(outcome: Outcome, stage) -> None:
    """Check, per key, that the notice arrived before the first reminder and that the first
    reminder was created a period after the notice went out."""
    from credentials.services.notifications import credential_id_of_topic

    notice_at, notice_sent_at, reminder_at, reminder_created_at = {}, {}, {}, {}
    for delivery, row in stage.deliveries_of(HELPDESK_NOTICE):
        key = credential_id_of_topic(row.topic)
        notice_at.setdefault(key, delivery.received_at)
        notice_sent_at[key] = row.sent_at
    for delivery, row in stage.deliveries_of(HELPDESK_REMINDER):
        key = credential_id_of_topic(row.topic)
        reminder_at.setdefault(key, delivery.received_at)
        reminder_created_at.setdefault(key, row.created_at)
    keys = sorted(reminder_at)
    in_order = sum(key in notice_at and notice_at[key] < reminder_at[key] for key in keys)
    waited = [
        (reminder_created_at[key] - notice_sent_at[key]).total_seconds()
        for key in keys
        if notice_sent_at.get(key)
    ]
    outcome.check(
        "keys whose notice arrived before their first reminder",
        f"{in_order} of {len(keys)}",
        f"{SMTP_KEYS} of {SMTP_KEYS}",
        in_order == len(keys) == SMTP_KEYS,
    )
    outcome.check(
        "shortest wait from a notice going out to its first reminder",
        f"{min(waited, default=0.0):.1f} s",
        f"≥ {SMTP_PERIOD} s (a period)",
        bool(waited) and min(waited) >= SMTP_PERIOD,
    )
