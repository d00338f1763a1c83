"""The helpdesk's side of a submission: acknowledging it, and the reminders until then."""

import functools
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from audit.models import AuditEvent
from audit.refusals import authorize, refusals_audited
from audit.services import audit_record
from core.sql import column, update_by_ids
from credentials.models import Credential, LifecycleState, VerificationState
from credentials.services.notifications import (
    HELPDESK_REMINDER,
    HELPDESK_SUBMISSION,
    credential_admin_url,
    credential_id_of_topic,
    credential_topic,
    key_names,
    key_target,
)
from mail.compose import email_compose
from mail.models import OutgoingEmail
from mail.services import emails_cancel, emails_enqueue, on_sent
from teams.permissions import HELPDESK_WORK_QUEUE

# Rows per sweep: bounded so that a transaction never grows without limit.
SWEEP_BATCH = 500


@refusals_audited
@transaction.atomic
def credential_acknowledge(*, credential: Credential, actor, request=None) -> bool:
    """Record that the helpdesk took the submission: reminders stop, including one queued but
    not sent yet (the mail server was down). Return False if it already was acknowledged
    (the first acknowledgement is kept). Needs the helpdesk's queue permission."""
    authorize(actor, HELPDESK_WORK_QUEUE, about=credential.merchant)
    updated = Credential.objects.filter(pk=credential.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor, followup_due_at=None
    )
    if updated:
        reminders_cancel(credential=credential)
        audit_record(
            action=AuditEvent.Action.SUBMISSION_ACKNOWLEDGED,
            actor=actor,
            merchant_id=credential.merchant_id,
            target=key_target(credential),
            request=request,
        )
    return bool(updated)


def followups_send_due(*, now=None) -> int:
    """Queue one reminder to the helpdesk for each unacknowledged submission now due.

    A key its provider rejected is not reminded: it waits for the merchant, who alone can submit
    one that works (its clock stays, so reminders resume if it is verified again).

    Rows are claimed with SELECT … FOR UPDATE SKIP LOCKED and a conditional update, so two
    sweeps running at once never remind twice; the next reminder is due FOLLOWUP_AFTER from
    now, so reminders missed while workers were down go out once, not once per missed period.
    Return the number of reminders queued.
    """
    now = now or timezone.now()
    next_due = now + timedelta(seconds=settings.FOLLOWUP_AFTER)
    with transaction.atomic():
        due = list(
            Credential.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                acknowledged_at__isnull=True,
                followup_due_at__lte=now,
                lifecycle_state=LifecycleState.ACTIVE,
            )
            .exclude(verification_state=VerificationState.REJECTED)
            .order_by("followup_due_at", "pk")
            .values_list("pk", "followup_due_at", "reminders_sent")[:SWEEP_BATCH]
        )
        numbers = {}
        for pk, due_at, reminders_sent in due:
            claimed = Credential.objects.filter(
                pk=pk, followup_due_at=due_at, acknowledged_at__isnull=True
            ).update(
                reminders_sent=reminders_sent + 1, last_reminded_at=now, followup_due_at=next_due
            )
            if claimed:
                numbers[pk] = reminders_sent + 1
        claimed_credentials = (
            Credential.objects.select_related("merchant", "submitted_by")
            .defer("secret", "extra_secret")
            .in_bulk(list(numbers))
        )
        # Stored together, in one insert: a reminder already stored (its dedupe key) is
        # left out and not counted.
        reminders = [
            _reminder_compose(claimed_credentials[pk], number=number)
            for pk, number in numbers.items()
        ]
        queued = len(emails_enqueue(reminders))
    return queued


def _reminder_compose(credential: Credential, *, number: int) -> OutgoingEmail:
    return email_compose(
        dedupe_key=f"reminder:{credential.pk}:{number}",
        kind=HELPDESK_REMINDER,
        to=[settings.HELPDESK_EMAIL],
        template="helpdesk_reminder",
        context={
            "credential": credential,
            **key_names(credential),
            "merchant": credential.merchant,
            "number": number,
            "admin_url": credential_admin_url(credential),
        },
        topic=credential_topic(credential.pk),
    )


def reminders_cancel(*, credential: Credential) -> int:
    """Cancel the reminders about `credential` that were queued but not sent; return how many.

    Called when reminding no longer makes sense: the submission was acknowledged, or its key
    revoked.
    """
    return emails_cancel(topic=credential_topic(credential.pk), kind=HELPDESK_REMINDER)


@on_sent(HELPDESK_SUBMISSION)
def _helpdesk_told(emails, sent_at) -> None:
    """Record when the helpdesk was told of a key, and start its follow-up clock then: the
    outbox calls this once the notice of a submission went out, so no reminder can overtake
    a notice the mail server held back.

    A hook rather than a fact derived from the mail table when needed: the queue sorts and
    filters on these columns, and the outbox's topic is an opaque string no index joins on.
    """
    notified = [pk for pk in map(credential_id_of_topic, (e.topic for e in emails)) if pk]
    # One update for both, written by hand: the worker runs it after every verification's
    # mail, and the ORM's CASE costs more CPU to build than the update takes (core.sql).
    update_by_ids(
        Credential,
        notified,
        helpdesk_notified_at=RawSQL(_first_notice_sql(), (sent_at,)),  # noqa: S611  parameters
        followup_due_at=RawSQL(  # noqa: S611  values are parameters
            _followup_clock_sql(), (sent_at + timedelta(seconds=settings.FOLLOWUP_AFTER),)
        ),
    )


@functools.cache
def _first_notice_sql() -> str:
    return f"COALESCE({column(Credential, 'helpdesk_notified_at')}, %s)"


@functools.cache
def _followup_clock_sql() -> str:
    """The follow-up clock starts (at the parameter) unless acknowledged, started or retired."""
    due = column(Credential, "followup_due_at")
    return (
        f"CASE WHEN {column(Credential, 'acknowledged_at')} IS NULL AND {due} IS NULL "
        f"AND {column(Credential, 'lifecycle_state')} = '{LifecycleState.ACTIVE}' "
        f"THEN %s ELSE {due} END"
    )
