"""Webhook deliveries handed out again: the sweep that queues due, lost and stale ones, and a
superuser's "Send again" (audited). Sending itself is `delivery`'s."""

from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.refusals import authorize, refusals_audited
from audit.services import audit_record
from core.queue import enqueue
from integrations.models import WebhookDelivery
from integrations.scopes import MANAGE_SERVICE_ACCOUNTS
from integrations.services.delivery import SWEEP_BATCH, claims_stale_before, why_not_sent
from integrations.services.events import DELIVER_TASK

State = WebhookDelivery.State


def _due(now) -> Q:
    """Deliveries the sweep hands out: due and pending, not handed to a worker within
    WEBHOOK_STALE_AFTER; or claimed that long ago by a worker that never finished."""
    stale_before = claims_stale_before(now)
    return Q(
        Q(claimed_at__isnull=True) | Q(claimed_at__lte=stale_before),
        state=State.PENDING,
        next_attempt_at__lte=now,
    ) | Q(state=State.SENDING, claimed_at__lte=stale_before)


def deliveries_send_due(now=None) -> int:
    """Queue a send for every delivery whose time has come; return how many were queued.

    That is a retry that is due, a new delivery whose task was lost (the broker was down at
    commit), and one whose worker died while sending (its claim is older than
    WEBHOOK_STALE_AFTER: released, it is sent again). Each is handed out with a conditional
    update, so two sweeps never both queue it, and at most once per WEBHOOK_STALE_AFTER; at
    most SWEEP_BATCH per run, the next run takes the rest.
    """
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(_due(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "state")[:SWEEP_BATCH]
    )
    queued = 0
    for pk, state in due:
        handed_out = WebhookDelivery.objects.filter(_due(now), pk=pk)
        if state == State.SENDING:
            released = handed_out.update(
                state=State.PENDING,
                next_attempt_at=now,
                claimed_at=now,
                last_error="No answer recorded: the worker sending it stopped",
            )
        else:
            released = handed_out.update(claimed_at=now)
        if not released:
            continue
        if enqueue(DELIVER_TASK, pk):
            queued += 1
        else:
            # The broker is down: the next sweep tries again.
            WebhookDelivery.objects.filter(pk=pk, state=State.PENDING, claimed_at=now).update(
                claimed_at=None
            )
    return queued


@refusals_audited
@transaction.atomic
def delivery_resend(*, delivery: WebhookDelivery, actor, request=None) -> WebhookDelivery:
    """Send `delivery`'s event to its endpoint again, now, whatever its state (delivered,
    given up, or waiting for a retry): one more attempt, then retries as usual while the
    delivery is younger than WEBHOOK_GIVE_UP_AFTER. Audited.

    Superusers only (Refused otherwise; no helpdesk group holds the permission); an actor of
    None is the system. Raise ValidationError when it is being sent right now or when its
    endpoint may no longer receive it.
    """
    authorize(actor, MANAGE_SERVICE_ACCOUNTS)
    now = timezone.now()
    row = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("event__merchant", "endpoint__account")
        .defer("endpoint__signing_secret")
        .get(pk=delivery.pk)
    )
    if row.state == State.SENDING and row.claimed_at > claims_stale_before(now):
        raise ValidationError("It is being sent right now: wait a minute and look again.")
    if why := why_not_sent(row, now):
        raise ValidationError(f"It cannot be sent again: {why}.")
    was = row.state
    row.state = State.PENDING
    row.next_attempt_at = now
    row.claimed_at = now
    row.delivered_at = None
    row.save(update_fields=["state", "next_attempt_at", "claimed_at", "delivered_at"])
    audit_record(
        action=AuditEvent.Action.WEBHOOK_RESENT,
        actor=actor,
        merchant=row.event.merchant,
        target=f"webhook_delivery:{row.pk}",
        details={
            "event": row.event.event_id,
            "type": row.event.type,
            "service_account": row.endpoint.account.name,
            "was": was,
            "attempts": row.attempts,
        },
        request=request,
    )
    transaction.on_commit(partial(enqueue, DELIVER_TASK, row.pk))
    return row
