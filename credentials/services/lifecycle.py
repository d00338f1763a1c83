"""The key lifecycle: rolls (a verified key supersedes the older ones), revocation, and the
daily re-check of verified keys with their provider."""

import functools
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, Case, F, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone

from audit.models import AuditEvent
from audit.refusals import authorize, refusals_audited
from audit.services import audit_record
from core.queue import enqueue
from core.redaction import contains_secret
from core.sql import columns_of, quoted, table
from core.validators import refuse_control_characters
from credentials.models import Credential, LifecycleState, VerificationState
from credentials.services.events import credential_event, credentials_superseded_event
from credentials.services.helpdesk import reminders_cancel
from credentials.services.notifications import (
    KeyEvent,
    key_event_notify,
    key_target,
    merchant_recipients,
)
from credentials.services.submission import VERIFY_TASK
from integrations.scopes import EventType
from teams.permissions import HELPDESK_WORK_QUEUE, REVOKE_KEYS


def next_reverification(after: datetime) -> datetime:
    """Return when a key verified at `after` is checked again: REVERIFY_EVERY later, give or
    take a tenth, so that keys verified together do not all come due together."""
    period = settings.REVERIFY_EVERY
    jitter = random.uniform(-period / 10, period / 10)  # noqa: S311  spreading, not secrecy
    return after + timedelta(seconds=period + jitter)


# After an unreachable outcome, verification starts again after these waits (round by round,
# the last one repeating): Stripe's outages are short, a wrong setting may take a day.
UNREACHABLE_RECHECKS = (
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
)


# Keys the helpdesk may send to be verified again.
VERIFY_AGAIN_STATES = (VerificationState.REJECTED, VerificationState.UNREACHABLE)


def next_unreachable_recheck(after: datetime, *, round_: int) -> datetime:
    """Return when a key found unreachable at `after`, in verification round `round_`, is
    verified again."""
    return after + UNREACHABLE_RECHECKS[min(round_, len(UNREACHABLE_RECHECKS) - 1)]


def verification_restart(credential_id: int, *, states, next_reverify_at=None) -> bool:
    """Start a new verification round for an active key now in one of `states`: pending,
    attempts from zero, queued after commit. Return False if it was not (anymore) in them.

    With `next_reverify_at`, only if the key's next check is still that one: the claim of a
    re-check sweep, so two sweeps start one round.
    """
    matching = Credential.objects.active().filter(pk=credential_id, verification_state__in=states)
    if next_reverify_at is not None:
        matching = matching.filter(next_reverify_at=next_reverify_at)
    restarted = matching.update(
        verification_state=VerificationState.PENDING,
        verification_attempts=0,
        verification_round=F("verification_round") + 1,
        verification_next_attempt_at=timezone.now(),
        verification_claimed_at=None,
        next_reverify_at=None,
    )
    if restarted:
        transaction.on_commit(lambda: enqueue(VERIFY_TASK, credential_id))
    return bool(restarted)


@refusals_audited
@transaction.atomic
def credential_verify_again(*, credential: Credential, actor, request=None) -> Credential:
    """Verify again, at once, a key its provider rejected or could not be reached for (the helpdesk
    fixed something, or the merchant says the key works now). Audited.

    Raise ValidationError if the key is not active, or verified or being verified already.
    """
    authorize(actor, HELPDESK_WORK_QUEUE, about=credential.merchant)
    if not verification_restart(credential.pk, states=VERIFY_AGAIN_STATES):
        raise ValidationError(
            "Only an active key that its provider rejected or could not be reached for can be "
            "verified again; this one is verified, being verified, or no longer in use."
        )
    audit_record(
        action=AuditEvent.Action.KEY_VERIFY_AGAIN,
        actor=actor,
        merchant_id=credential.merchant_id,
        target=key_target(credential),
        request=request,
    )
    return Credential.objects.defer("secret", "extra_secret").get(pk=credential.pk)


def verification_settled() -> dict:
    """Return the update that ends a retired key's verification: a key replaced or revoked
    before Stripe answered is "not verified" (no worker will take it again, and the stale
    sweep leaves it alone); a decided key keeps Stripe's answer."""
    return {
        "verification_state": Case(
            When(
                verification_state__in=[VerificationState.PENDING, VerificationState.VERIFYING],
                then=Value(VerificationState.NOT_VERIFIED),
            ),
            default=F("verification_state"),
        ),
        "verification_claimed_at": None,
        "verification_next_attempt_at": None,
    }


def _active_in_same_slot(credential: Credential):
    """Return the merchant's other active keys for the same provider and mode, the keys a
    roll replaces, without their secrets."""
    return (
        Credential.objects.active()
        .filter(
            merchant_id=credential.merchant_id,
            provider=credential.provider,
            mode=credential.mode,
        )
        .exclude(pk=credential.pk)
        .defer("secret", "extra_secret")
    )


def active_verified_others(credential: Credential):
    return (
        _active_in_same_slot(credential)
        .filter(verification_state=VerificationState.VERIFIED)
        .order_by("-submitted_at")
    )


def older_in_slot_exists() -> RawSQL:
    """Whether a key (the row this annotates) has older active keys in its slot, which its
    verification supersedes (`supersede_older_keys`): asked while the worker locks it, so
    that a first key, the common case, costs no query for what it does not replace."""
    return RawSQL(_older_in_slot(), (), output_field=BooleanField())  # noqa: S611  values are parameters


@functools.cache
def _older_in_slot() -> str:
    older, this = columns_of(Credential, "older"), columns_of(Credential)
    return (
        f"EXISTS (SELECT 1 FROM {table(Credential)} AS {quoted('older')} "  # noqa: S608  names from the models
        f"WHERE {older('lifecycle_state')} = '{LifecycleState.ACTIVE}' "
        f"AND {older('merchant')} = {this('merchant')} "
        f"AND {older('provider')} = {this('provider')} AND {older('mode')} = {this('mode')} "
        f"AND {older('submitted_at')} < {this('submitted_at')} AND {older('id')} <> {this('id')})"
    )


def supersede_older_keys(credential: Credential) -> list[Credential]:
    """Retire the keys this verified one replaces (a roll): older active keys of the same
    merchant, provider and mode become superseded and their secrets are erased; one still
    waiting for Stripe ends "not verified". Hints, fingerprints and history stay. Return them."""
    older = list(
        _active_in_same_slot(credential)
        .filter(submitted_at__lt=credential.submitted_at)
        .select_for_update(of=("self",))
    )
    Credential.objects.filter(pk__in=[old.pk for old in older]).update(
        lifecycle_state=LifecycleState.SUPERSEDED,
        secret=None,
        extra_secret=None,
        replaced_by=credential,
        lifecycle_changed_at=timezone.now(),
        followup_due_at=None,
        next_reverify_at=None,
        **verification_settled(),
    )
    for old in older:
        audit_record(
            action=AuditEvent.Action.KEY_SUPERSEDED,
            merchant_id=credential.merchant_id,
            target=key_target(old),
            details={"replaced_by": credential.secret_hint},
        )
    if older:
        credentials_superseded_event(old.pk for old in older)
    return older


REVOKE_WHAT_TO_DO = (
    "Roll the key in {roll_where} so that the compromised one stops working everywhere, then "
    "submit the new key in Keyhouse."
)


@refusals_audited
@transaction.atomic
def credential_revoke(*, credential: Credential, actor, reason: str, request=None) -> Credential:
    """Revoke a key reported compromised: at once, its secret erased, reminders stopped, the
    helpdesk alerted (urgent mail) and the merchant told how to roll it and submit the new one.

    Merchant members need "Revoke keys"; helpdesk staff need to change credentials in the
    admin. Raise Refused otherwise, and ValidationError if it is not active.
    """
    merchant = credential.merchant
    by = authorize(actor, REVOKE_KEYS, merchant, staff_permission=HELPDESK_WORK_QUEUE)
    refuse_control_characters(reason)
    reason = " ".join(reason.split())[:500]
    if contains_secret(reason):
        raise ValidationError("Describe what happened without pasting the key itself.")
    now = timezone.now()
    revoked = (
        Credential.objects.active()
        .filter(pk=credential.pk)
        .update(
            lifecycle_state=LifecycleState.REVOKED,
            secret=None,
            extra_secret=None,
            revoked_by=actor,
            revoked_reason=reason,
            lifecycle_changed_at=now,
            followup_due_at=None,
            next_reverify_at=None,
            **verification_settled(),
        )
    )
    if not revoked:
        raise ValidationError("This key is no longer active: it was already replaced or revoked.")
    reminders_cancel(credential=credential)
    credential = (
        Credential.objects.select_related("merchant", "submitted_by", "revoked_by")
        .defer("secret", "extra_secret")
        .get(pk=credential.pk)
    )
    audit_record(
        action=AuditEvent.Action.KEY_REVOKED,
        actor=actor,
        merchant=merchant,
        target=key_target(credential),
        details={"reason": reason, "by": "helpdesk" if by == "staff" else "merchant"},
        request=request,
    )
    key_event_notify(
        credential=credential,
        event=KeyEvent.REVOKED,
        merchant_to=merchant_recipients(credential, also=() if by == "staff" else (actor.email,)),
        what_to_do=REVOKE_WHAT_TO_DO.format(roll_where=credential.provider_spec.roll_where),
    )
    credential_event(credential, EventType.REVOKED)
    return credential
