"""The daily re-check of verified keys with their provider, and the re-checks of keys it could
not be reached for: queued by a sweep, each key checked once however often it is queued."""

from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEvent
from audit.services import audit_record
from core.queue import enqueue
from credentials.fields import SecretDecryptionError
from credentials.models import Credential, VerificationState
from credentials.services.checking import REASONS, ask_provider, locked_for_recording
from credentials.services.events import credential_event
from credentials.services.flags import helpdesk_flags
from credentials.services.lifecycle import next_reverification, verification_restart
from credentials.services.notifications import (
    KeyEvent,
    key_event_notify,
    key_target,
    merchant_recipients,
)
from integrations.scopes import EventType

REVERIFY_TASK = "credentials.tasks.reverify_credential"


class ReverifyOutcome(StrEnum):
    """What one re-check of a verified key did."""

    NOT_DUE = "not_due"  # revoked, replaced or checked by another worker meanwhile
    UNAVAILABLE = "unavailable"  # Stripe did not answer; checked again in an hour
    STILL_VALID = "still_valid"
    REJECTED = "rejected"  # Stripe refuses it now; both sides told
    VERIFYING_AGAIN = "verifying_again"  # unreachable or unreadable: a new verification round


def reverifications_queue_due(*, now=None) -> int:
    """Queue the re-check of every active key that is due (verified keys daily, keys Stripe
    could not be reached for on their back-off), spread over the sweep interval so Stripe is
    not asked about all of them at once, at most REVERIFY_SWEEP_LIMIT per sweep (the next
    sweep takes the rest). Return how many."""
    now = now or timezone.now()
    due = list(
        Credential.objects.active()
        .filter(
            verification_state__in=[VerificationState.VERIFIED, VerificationState.UNREACHABLE],
            next_reverify_at__lte=now,
        )
        .order_by("next_reverify_at", "pk")
        .values_list("pk", flat=True)[: settings.REVERIFY_SWEEP_LIMIT]
    )
    if not due:
        return 0
    spacing = settings.REVERIFY_SWEEP_EVERY / len(due)
    queued = 0
    for index, pk in enumerate(due):
        if not enqueue(REVERIFY_TASK, pk, countdown=index * spacing):
            break  # the broker is down: the next sweep queues the rest again
        queued += 1
    return queued


@sensitive_variables("stored")
def credential_reverify(*, credential_id: int, now=None) -> "ReverifyOutcome":
    """Check again with Stripe a key that was verified; return what happened.

    The key is claimed by moving its next check forward (a conditional update), so two
    sweeps or a redelivered task check it once. A key Stripe now refuses (rolled or deleted
    on Stripe's side, expired) is marked rejected and both sides are told, once: rejected
    keys are not re-checked. A transient failure changes nothing but the next check's time.
    A key Stripe could not be reached for is verified again (a new round, with its retries);
    so is a key this worker cannot decrypt, which verification then reports to the helpdesk.
    """
    now = now or timezone.now()
    due_key = (
        Credential.objects.active()
        .filter(
            pk=credential_id,
            verification_state__in=[VerificationState.VERIFIED, VerificationState.UNREACHABLE],
            next_reverify_at__lte=now,
        )
        .values_list("next_reverify_at", "verification_state")
        .first()
    )
    if due_key is None:
        return ReverifyOutcome.NOT_DUE
    due, state = due_key
    if state == VerificationState.UNREACHABLE:
        with transaction.atomic():
            restarted = verification_restart(
                credential_id, states=[VerificationState.UNREACHABLE], next_reverify_at=due
            )
        return ReverifyOutcome.VERIFYING_AGAIN if restarted else ReverifyOutcome.NOT_DUE
    claimed = Credential.objects.filter(pk=credential_id, next_reverify_at=due).update(
        next_reverify_at=next_reverification(now)
    )
    if not claimed:
        return ReverifyOutcome.NOT_DUE
    try:
        stored = Credential.objects.filter(pk=credential_id).first()
    except SecretDecryptionError:
        with transaction.atomic():
            verification_restart(credential_id, states=[VerificationState.VERIFIED])
        return ReverifyOutcome.VERIFYING_AGAIN
    if stored is None or not stored.secret:
        return ReverifyOutcome.NOT_DUE
    answer = ask_provider(stored)
    del stored
    # The answer's code: the refusal's, or what an accepted key's check found.
    facts, refused_code = answer.facts, answer.code
    if answer.transient:
        # Not the key's fault: check again in an hour rather than a day. Only if it is still
        # active and verified: a key revoked or replaced meanwhile is never checked again.
        Credential.objects.active().filter(
            pk=credential_id, verification_state=VerificationState.VERIFIED
        ).update(next_reverify_at=now + timedelta(hours=1))
        return ReverifyOutcome.UNAVAILABLE
    with transaction.atomic():
        credential = locked_for_recording(credential_id)
        if not credential.is_active or credential.verification_state != VerificationState.VERIFIED:
            return ReverifyOutcome.NOT_DUE
        credential.checked_at = timezone.now()
        if facts is not None and credential.provider_spec.accepts(refused_code):
            credential.charges_enabled = facts.charges_enabled
            credential.payouts_enabled = facts.payouts_enabled
            credential.details_submitted = facts.details_submitted
            # A restricted key's permissions may have been switched on (or off) since: the
            # page, the queue and the flags say what this check found.
            credential.missing_permissions = list(facts.missing_permissions)
            credential.helpdesk_flags = helpdesk_flags(credential)
            credential.verification_code = refused_code
            credential.verification_reason = credential.outcome_reason(refused_code, facts)
            credential.save(
                update_fields=[
                    "checked_at",
                    "charges_enabled",
                    "payouts_enabled",
                    "details_submitted",
                    "missing_permissions",
                    "helpdesk_flags",
                    "verification_code",
                    "verification_reason",
                ]
            )
            return ReverifyOutcome.STILL_VALID
        credential.verification_state = VerificationState.REJECTED
        credential.verification_code = refused_code
        provider = credential.provider_spec
        credential.verification_reason = REASONS["no_longer_valid"].format(
            provider=provider.label,
            reason=credential.outcome_reason(refused_code),
        )
        credential.next_reverify_at = None
        credential.save(
            update_fields=[
                "checked_at",
                "verification_state",
                "verification_code",
                "verification_reason",
                "next_reverify_at",
            ]
        )
        audit_record(
            action=AuditEvent.Action.KEY_REVERIFICATION,
            merchant=credential.merchant,
            target=key_target(credential),
            details={"outcome": "rejected", "code": refused_code},
        )
        key_event_notify(
            credential=credential,
            event=KeyEvent.NO_LONGER_VALID,
            merchant_to=merchant_recipients(credential),
            occurrence=str(credential.verification_attempts),
            send_in_process=True,
        )
        credential_event(credential, EventType.STOPPED_WORKING)
    return ReverifyOutcome.REJECTED
