"""The outbox: compose, store, send and sweep mail, and what happens once a mail went out.

Mail is stored in the transaction of the event it reports and sent after commit, by a task or
by the worker that caused it; a sweep sends whatever is due (new, retried, or left by a worker
that died). Senders that must learn when a kind of mail went out register a hook with
`on_sent(kind)`; the outbox itself knows nothing of what its mail is about.
"""

import functools
import logging
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import BooleanField, F
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.queue import enqueue
from core.sql import columns_of, insert_rows, quoted, table, update_by_ids
from mail.compose import email_compose, mime_message
from mail.models import OutgoingEmail

logger = logging.getLogger(__name__)

SEND_TASK = "mail.tasks.send_email"
# How long a worker may hold a mail it is sending before another may try it.
EMAIL_SEND_LEASE = timedelta(minutes=5)
EMAIL_RETRY_MAX_SECONDS = 3600
# Rows per sweep: bounded so that a transaction never grows without limit.
SWEEP_BATCH = 500

SentHook = Callable[[list[OutgoingEmail], datetime], None]
_SENT_HOOKS: dict[str, list[SentHook]] = defaultdict(list)


def on_sent(kind: str):
    """Register `hook(emails, sent_at)` to run when mail of `kind` has been sent.

    It runs in the transaction that marks the mail sent, so what it records commits with it.
    """

    def register(hook: SentHook) -> SentHook:
        if hook not in _SENT_HOOKS[kind]:
            _SENT_HOOKS[kind].append(hook)
        return hook

    return register


def _run_sent_hooks(emails: list[OutgoingEmail], sent_at) -> None:
    by_kind: dict[str, list[OutgoingEmail]] = defaultdict(list)
    for email in emails:
        by_kind[email.kind].append(email)
    for kind, sent in by_kind.items():
        for hook in _SENT_HOOKS.get(kind, ()):
            hook(sent, sent_at)


def unsent_mail_exists(topic_sql: str) -> RawSQL:
    """Whether unsent mail about a topic waits, as an annotation; `topic_sql` computes the
    topic from the annotated row (written by hand: see core.sql). A caller that loads the row
    anyway learns in the same query whether mail it is about to send must wait for earlier
    mail (see `emails_enqueue`'s `none_waiting`)."""
    return RawSQL(_unsent_sql(topic_sql), (), output_field=BooleanField())  # noqa: S611  values are parameters


@functools.cache
def _unsent_sql(topic_sql: str) -> str:
    mail = columns_of(OutgoingEmail, "mail")
    return (
        f"EXISTS (SELECT 1 FROM {table(OutgoingEmail)} AS {quoted('mail')} "  # noqa: S608  names from the models
        f"WHERE {mail('state')} = '{OutgoingEmail.State.PENDING}' "
        f"AND {mail('topic')} = {topic_sql})"
    )


def emails_enqueue(
    emails: list[OutgoingEmail], *, send_in_process: bool = False, none_waiting: bool = False
) -> list[OutgoingEmail]:
    """Store `emails` and send them once the transaction commits; return those stored.

    A mail whose `dedupe_key` already exists is left out: the event it reports was processed
    before.

    By default a `send_email` task sends each. Code already running in a worker passes
    `send_in_process=True` to send them right after commit instead, together over one
    connection to the mail server: that spares a task per mail and keeps the mails from
    queueing behind other work. They are stored already claimed by this worker, so no
    other sends them meanwhile; if this worker dies first, the sweep sends them once the
    claim has lapsed. A failed send is retried by the sweep either way. Mail sent in
    process is recorded as sent together, once the server accepted all of it; a caller that
    made sure (`unsent_mail_exists`) that no earlier mail of their topics is unsent passes
    `none_waiting=True`, which spares the query that checks it.
    """
    new = list(emails)
    if not new:
        return []
    if send_in_process:
        lease_until = timezone.now() + EMAIL_SEND_LEASE
        for email in new:
            email.next_attempt_at, email.attempts = lease_until, 1
    # Those stored before (the event is processed again) are left out.
    new = insert_rows(new, unless_exists="dedupe_key")
    if send_in_process and new:
        transaction.on_commit(
            lambda: _deliver(new, none_waiting=none_waiting, record_together=True)
        )
    else:
        for email in new:
            transaction.on_commit(partial(enqueue, SEND_TASK, email.pk))
    return new


def email_enqueue(*, send_in_process: bool = False, **mail) -> OutgoingEmail | None:
    """Compose one mail (the arguments of `email_compose`) and enqueue it: return it, or
    None, storing nothing, if a mail with its `dedupe_key` already exists."""
    stored = emails_enqueue([email_compose(**mail)], send_in_process=send_in_process)
    return stored[0] if stored else None


def _retry_delay(attempts: int) -> float:
    return min(EMAIL_RETRY_MAX_SECONDS, settings.EMAIL_RETRY_BASE_SECONDS * 2 ** (attempts - 1))


def email_send(*, email_id: int) -> bool:
    """Send mail `email_id` if it is due and unsent; return True if it was sent now.

    A worker first claims the mail (a conditional update), so two workers never send it
    together.
    """
    if not _claim(email_id, timezone.now()):
        return False
    return _deliver([OutgoingEmail.objects.get(pk=email_id)]) == 1


def _claim(email_id: int, now) -> bool:
    return bool(
        OutgoingEmail.objects.filter(
            pk=email_id, state=OutgoingEmail.State.PENDING, next_attempt_at__lte=now
        ).update(next_attempt_at=now + EMAIL_SEND_LEASE, attempts=F("attempts") + 1)
    )


def _thread(email: OutgoingEmail) -> tuple[str, tuple[str, ...]] | None:
    """Return what orders this mail against others: its topic and recipients (mail to one
    recipient about one thing goes out in the order it was created), or None."""
    return (email.topic, tuple(sorted(email.to))) if email.topic else None


def _waiting_earlier(emails: list[OutgoingEmail]) -> set[int]:
    """Return the ids of `emails` that an earlier unsent mail of their thread, outside this
    batch, must precede. One query, whatever the batch."""
    topics = {email.topic for email in emails if email.topic}
    if not topics:
        return set()
    batch = [email.pk for email in emails]
    earliest: dict[tuple, int] = {}
    earlier = (
        OutgoingEmail.objects.filter(
            state=OutgoingEmail.State.PENDING, topic__in=topics, pk__lt=max(batch)
        )
        .exclude(pk__in=batch)
        .values_list("pk", "topic", "to")
    )
    for pk, topic, to in earlier:
        thread = (topic, tuple(sorted(to)))
        earliest[thread] = min(pk, earliest.get(thread, pk))
    return {
        email.pk
        for email in emails
        if (thread := _thread(email)) in earliest and earliest[thread] < email.pk
    }


def _deliver(
    emails: list[OutgoingEmail], *, none_waiting: bool = False, record_together: bool = False
) -> int:
    """Send `emails`, claimed by this worker, over one connection; return how many were sent.

    Each is marked sent in its own transaction as soon as the mail server accepted it, so a
    worker that dies in the middle of a batch sends none of the accepted ones again; with
    `record_together` (the few mails of one event, sent within milliseconds) all accepted
    ones are marked in one. A failed one is scheduled again with a growing delay and never
    counted as sent; so is any later mail of its thread (same topic and recipients), which
    waits for it. `none_waiting`: the caller knows no earlier mail of their threads is unsent.
    """
    emails = sorted(emails, key=lambda email: email.pk)
    held = set() if none_waiting else _waiting_earlier(emails)
    accepted: list[OutgoingEmail] = []
    blocked: set[tuple] = set()
    sent = 0
    connection = get_connection()
    try:
        connection.open()
    except Exception as error:  # noqa: BLE001  any mail failure: retried, never marked sent
        for email in emails:
            _record_failure(email, error)
        return 0
    try:
        for email in emails:
            thread = _thread(email)
            if email.pk in held or (thread is not None and thread in blocked):
                blocked.add(thread)
                _release(email)
                continue
            # Each mail is its own attempt: a message the server refuses (a 4xx for that
            # recipient, say) does not hold back the others.
            try:
                connection.send_messages([mime_message(email)])
            except Exception as error:  # noqa: BLE001  retried, never marked sent
                if thread is not None:
                    blocked.add(thread)
                _record_failure(email, error)
            else:
                if record_together:
                    accepted.append(email)
                else:
                    _record_sent([email])
                sent += 1
    finally:
        with suppress(Exception):
            connection.close()
        if accepted:
            _record_sent(accepted)
    return sent


def _record_sent(emails: list[OutgoingEmail]) -> None:
    """Mark `emails` sent, and run the hooks on their kinds in the same transaction (what a
    hook records commits with the record, or neither does). A hook that fails must not undo
    the record that the mail went out: its work is rolled back and the record made alone.
    (Not a savepoint around the hooks: two more round trips to the database for every mail
    sent, for a failure that should never happen.)"""
    sent_at = timezone.now()
    ids = [email.pk for email in emails]
    marked = False
    try:
        with transaction.atomic():
            _mark_sent(ids, sent_at)
            marked = True
            _run_sent_hooks(emails, sent_at)
    except Exception:
        if not marked:
            raise
        logger.exception(
            "A hook on sent mail %s failed.",
            ", ".join(f"{email.pk} ({email.kind})" for email in emails),
        )
        _mark_sent(ids, sent_at)


def _mark_sent(ids: list[int], sent_at: datetime) -> None:
    update_by_ids(
        OutgoingEmail, ids, state=OutgoingEmail.State.SENT, sent_at=sent_at, last_error=""
    )


def _record_failure(email: OutgoingEmail, error: Exception) -> None:
    delay = _retry_delay(email.attempts)
    OutgoingEmail.objects.filter(pk=email.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        last_error=type(error).__name__,
    )
    logger.warning(
        "Sending mail %s (%s) failed with %s; trying again in %.0f s.",
        email.pk,
        email.kind,
        type(error).__name__,
        delay,
    )


def _release(email: OutgoingEmail) -> None:
    """Give back a mail held for an earlier one of its thread: the sweep sends it after."""
    OutgoingEmail.objects.filter(pk=email.pk, state=OutgoingEmail.State.PENDING).update(
        next_attempt_at=timezone.now() + timedelta(seconds=settings.EMAIL_RETRY_BASE_SECONDS),
        attempts=F("attempts") - 1,
    )


def emails_send_due() -> int:
    """Send every unsent mail whose time has come (new, or due for a retry); return how many.

    The due mails are claimed together: locked with SKIP LOCKED (a sweep running at the same
    time takes others) and leased in one update, then sent over one connection.
    """
    now = timezone.now()
    with transaction.atomic():
        due = list(
            OutgoingEmail.objects.select_for_update(skip_locked=True)
            .filter(state=OutgoingEmail.State.PENDING, next_attempt_at__lte=now)
            .order_by("pk")[:SWEEP_BATCH]
        )
        OutgoingEmail.objects.filter(pk__in=[email.pk for email in due]).update(
            next_attempt_at=now + EMAIL_SEND_LEASE, attempts=F("attempts") + 1
        )
    if not due:
        return 0
    for email in due:
        email.attempts += 1
    return _deliver(due)


def emails_cancel(*, topic: str, kind: str) -> int:
    """Cancel the unsent mail of `kind` about `topic`; return how many.

    For mail that no longer makes sense before it went out (a reminder about a submission
    that has just been acknowledged).
    """
    return OutgoingEmail.objects.filter(
        topic=topic, kind=kind, state=OutgoingEmail.State.PENDING
    ).update(state=OutgoingEmail.State.CANCELLED)
