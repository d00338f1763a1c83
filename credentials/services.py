"""Writes of credentials. The only code that stores, verifies or erases a secret."""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Q
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from config.celery_app import enqueue
from credentials.fingerprints import secret_fingerprint
from credentials.models import (
    Credential,
    HelpdeskFlag,
    Kind,
    LifecycleState,
    Mode,
    Provider,
    VerificationState,
)
from credentials.selectors import credential_fingerprint_active
from credentials.stripe_client import (
    AccountFacts,
    KeyRefused,
    StripeUnavailable,
    stripe_account_facts,
)
from credentials.stripe_keys import RESTRICTED, SECRET_IN_TEXT, StripeKey, check_same_mode
from merchants.models import Merchant
from merchants.services import (
    HELPDESK_SUBMISSION,
    credential_admin_url,
    email_compose,
    emails_enqueue,
    reminders_cancel,
)
from teams.models import AuditEvent
from teams.permissions import REVOKE_KEYS
from teams.services import audit_record

logger = logging.getLogger(__name__)

VERIFY_TASK = "credentials.tasks.verify_credential"
# Rows one sweep handles: bounded, the next sweep takes the rest.
SWEEP_LIMIT = 500


class SubmissionRefused(ValidationError):
    """A submission the service refuses for a reason the merchant can fix."""


DUPLICATE_MESSAGE = (
    "This secret key is already stored for this merchant in {mode} mode ({hint}). There is "
    "nothing to do; to replace a key, roll it in the Stripe dashboard and submit the new one."
)


@sensitive_variables("secret_key", "secret")
def credential_submit(
    *,
    merchant: Merchant,
    publishable_key: StripeKey,
    secret_key: StripeKey,
    requested_integrations: list[str],
    note: str,
    actor,
    request=None,
) -> Credential:
    """Store a Stripe key pair for `merchant`, encrypted and pending verification.

    Raise SubmissionRefused (code "duplicate") when the same secret is already active for this
    merchant and mode, or (code "mode_mismatch") for keys of different modes.
    """
    try:
        check_same_mode(publishable=publishable_key, secret=secret_key)
    except ValidationError as error:
        raise SubmissionRefused(error.message, code=error.code) from None
    secret = secret_key.value
    fingerprint = secret_fingerprint(secret)
    duplicate = SubmissionRefused(
        DUPLICATE_MESSAGE.format(mode=secret_key.mode, hint=secret_key.hint), code="duplicate"
    )
    credential = Credential(
        merchant=merchant,
        provider=Provider.STRIPE,
        mode=secret_key.mode,
        kind=Kind.RESTRICTED if secret_key.type == RESTRICTED else Kind.SECRET,
        publishable_key=publishable_key.value,
        secret=secret,
        secret_hint=secret_key.hint,
        fingerprint=fingerprint,
        requested_integrations=list(requested_integrations),
        note=note,
        submitted_by=actor,
    )
    # The secret is left out of model validation: validating a constraint that names it would
    # send the plaintext to the database as a query parameter.
    credential.full_clean(exclude={"secret"}, validate_constraints=False)
    try:
        with transaction.atomic():
            # Locking the merchant serialises submissions for it, so the duplicate check and
            # the insert cannot interleave; the unique constraint backs it up regardless.
            Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
            if credential_fingerprint_active(
                merchant=merchant,
                provider=credential.provider,
                mode=credential.mode,
                fingerprint=fingerprint,
            ):
                raise duplicate
            credential.verification_next_attempt_at = credential.submitted_at
            credential.save()
            audit_record(
                action=AuditEvent.Action.KEY_SUBMITTED,
                actor=actor,
                merchant=merchant,
                target=_key_target(credential),
                details={"mode": credential.mode, "kind": credential.kind},
                request=request,
            )
            transaction.on_commit(lambda: enqueue(VERIFY_TASK, credential.pk))
    except IntegrityError:
        if credential_fingerprint_active(
            merchant=merchant,
            provider=credential.provider,
            mode=credential.mode,
            fingerprint=fingerprint,
        ):
            raise duplicate from None
        raise
    return credential


# What merchants and the helpdesk read about an outcome: our own sentences, never Stripe's
# message (which can echo the key).
REASONS = {
    "verified": "Stripe accepted this key.",
    "limited_permissions": (
        "Stripe accepted this restricted key, but it cannot read the account's details, only "
        "its balance. That is enough to check it works; the helpdesk will tell you if an "
        "integration needs more permissions."
    ),
    "invalid_api_key": (
        "Stripe did not accept this key (mistyped, rolled or deleted). Check the key in the "
        "Stripe dashboard (Developers → API keys), or roll it there, and submit it again."
    ),
    "api_key_expired": (
        "Stripe says this key has expired. Roll it in the Stripe dashboard (Developers → API "
        "keys) and submit the new one."
    ),
    "insufficient_permissions": (
        "This restricted key may read neither the account nor its balance. Give it read "
        "access in the Stripe dashboard, or submit the secret key instead."
    ),
    "livemode_mismatch": (
        "This key is marked {mode} but Stripe answered for the other mode. Copy both keys "
        "again from the Stripe dashboard, with Test mode set accordingly, and submit them."
    ),
    "retrying": "Stripe did not answer ({code}); trying again shortly.",
    "no_longer_valid": (
        "Stripe no longer accepts this key, which worked before: {reason} Until a new key is "
        "submitted, the integrations that use it stop working."
    ),
    "unreachable": (
        "Stripe could not be reached after {attempts} attempts ({code}). The helpdesk has "
        "been told and will verify the key; there is nothing you need to do."
    ),
}


@dataclass(frozen=True)
class VerifyResult:
    """What one verification attempt did. `retry_in` is set when another try is due."""

    state: str
    retry_in: float | None = None


def _backoff_seconds(attempt: int) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random."""
    delay = settings.VERIFY_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311  jitter, not cryptography


def _claim_for_verification(credential_id: int, now) -> Credential | None:
    """Mark the credential as being verified by this worker, or return None if it must not be.

    It must not be when it is gone, no longer active, already decided (a redelivered or
    duplicated task), being verified by another worker whose claim is fresh, or waiting for
    its back-off to pass.
    """
    stale_before = now - timedelta(seconds=settings.VERIFY_STALE_AFTER)
    # One conditional update: of two workers with the same task, one claims, the other
    # finds nothing to update.
    claimed = (
        Credential.objects.filter(
            pk=credential_id,
            lifecycle_state=LifecycleState.ACTIVE,
            verification_state__in=[VerificationState.PENDING, VerificationState.VERIFYING],
        )
        .exclude(
            verification_state=VerificationState.VERIFYING,
            verification_claimed_at__gt=stale_before,
        )
        .exclude(verification_next_attempt_at__gt=now + timedelta(seconds=1))
        .update(
            verification_state=VerificationState.VERIFYING,
            verification_claimed_at=now,
            verification_attempts=F("verification_attempts") + 1,
        )
    )
    if not claimed:
        return None
    credential = Credential.objects.filter(pk=credential_id).first()
    # Revoked or claimed by another worker since (the claim went stale meanwhile): not ours.
    if credential is None or not credential.is_active or credential.verification_claimed_at != now:
        return None
    return credential


# The claimed credential holds the decrypted secret: kept out of error reports.
@sensitive_variables("credential")
def credential_verify(*, credential_id: int) -> VerifyResult:
    """Verify one credential with Stripe and record what was learned. Idempotent.

    Called by the worker. Stripe is asked outside any transaction (no lock is held while
    waiting for the network); the outcome is recorded only if this worker's claim still
    stands. A decided outcome queues the merchant's and the helpdesk's mail in the same
    transaction and starts the helpdesk's follow-up clock. Transient failures ask for a retry
    with back-off until VERIFY_MAX_ATTEMPTS, then the key is marked unreachable.
    """
    now = timezone.now()
    credential = _claim_for_verification(credential_id, now)
    if credential is None:
        return VerifyResult(state="skipped")
    claimed_at = credential.verification_claimed_at
    facts, code, transient = _ask_stripe(credential.secret)

    with transaction.atomic():
        credential = _locked_for_recording(credential_id)
        # Skipped when another worker took the claim over, or when the key was revoked or
        # superseded while Stripe was being asked: no outcome mail for a key that is gone.
        if (
            credential.verification_state != VerificationState.VERIFYING
            or credential.verification_claimed_at != claimed_at
            or not credential.is_active
        ):
            return VerifyResult(state="skipped")
        if transient and credential.verification_attempts < settings.VERIFY_MAX_ATTEMPTS:
            delay = _backoff_seconds(credential.verification_attempts)
            credential.verification_state = VerificationState.PENDING
            credential.verification_next_attempt_at = timezone.now() + timedelta(seconds=delay)
            credential.verification_code = code
            credential.verification_reason = REASONS["retrying"].format(code=code)
            credential.save(
                update_fields=[
                    "verification_state",
                    "verification_next_attempt_at",
                    "verification_code",
                    "verification_reason",
                ]
            )
            return VerifyResult(state=VerificationState.PENDING, retry_in=delay)
        _record_outcome(credential, facts=facts, code=code, transient=transient)
        replaced = (
            _supersede_older_keys(credential)
            if credential.verification_state == VerificationState.VERIFIED
            else []
        )
        audit_record(
            action=AuditEvent.Action.KEY_VERIFICATION,
            merchant=credential.merchant,
            target=_key_target(credential),
            details={
                "outcome": credential.verification_state,
                "code": credential.verification_code,
                "account": credential.account_id,
                "attempts": credential.verification_attempts,
            },
        )
        _notify_outcome(credential, replaced=replaced)
    return VerifyResult(state=credential.verification_state)


@sensitive_variables("secret")
def _ask_stripe(secret: str) -> tuple[AccountFacts | None, str, bool]:
    """Ask Stripe about `secret`, outside any transaction; return (facts, code, transient):
    the facts and "verified" when the key works, else None, our code for the refusal or the
    outage, and whether trying again later could help."""
    try:
        return stripe_account_facts(secret), "verified", False
    except KeyRefused as refusal:
        return None, refusal.code, False
    except StripeUnavailable as unavailable:
        return None, unavailable.code, True


def _locked_for_recording(credential_id: int) -> Credential:
    """Return the credential locked for recording what Stripe said, with what its mails
    need; the secret is not read."""
    return (
        # of=("self",): PostgreSQL cannot lock the nullable side of the submitter's join.
        Credential.objects.select_for_update(of=("self",))
        .select_related("merchant", "submitted_by")
        .defer("secret")
        .get(pk=credential_id)
    )


def _record_outcome(credential: Credential, *, facts, code: str, transient: bool) -> None:
    decided_at = timezone.now()
    if transient:
        state = VerificationState.UNREACHABLE
        reason = REASONS["unreachable"].format(attempts=credential.verification_attempts, code=code)
    elif facts is None:
        state, reason = VerificationState.REJECTED, REASONS[code]
    elif facts.livemode is not None and facts.livemode != (credential.mode == Mode.LIVE):
        state, code = VerificationState.REJECTED, "livemode_mismatch"
        reason = REASONS[code].format(mode=credential.get_mode_display().lower())
    else:
        state = VerificationState.VERIFIED
        code = "limited_permissions" if facts.limited_permissions else "verified"
        reason = REASONS[code]
    if facts is not None:
        credential.account_id = facts.account_id
        credential.account_name = facts.display_name[:255]
        credential.account_country = facts.country
        credential.charges_enabled = facts.charges_enabled
        credential.payouts_enabled = facts.payouts_enabled
        credential.details_submitted = facts.details_submitted
        credential.livemode = facts.livemode
        credential.limited_permissions = facts.limited_permissions
    credential.verification_state = state
    credential.verification_code = code
    credential.verification_reason = reason
    credential.verification_next_attempt_at = None
    credential.checked_at = decided_at
    credential.helpdesk_flags = _helpdesk_flags(credential)
    if HelpdeskFlag.DUPLICATE_ELSEWHERE in credential.helpdesk_flags:
        fingerprint, merchant_id = credential.fingerprint, credential.merchant_id
        transaction.on_commit(
            lambda: _flag_duplicates_elsewhere(fingerprint=fingerprint, merchant_id=merchant_id)
        )
    if credential.acknowledged_at is None:
        credential.followup_due_at = decided_at + timedelta(seconds=settings.FOLLOWUP_AFTER)
    credential.next_reverify_at = (
        _next_reverification(decided_at) if state == VerificationState.VERIFIED else None
    )
    credential.save(
        update_fields=[
            "next_reverify_at",
            "account_id",
            "account_name",
            "account_country",
            "charges_enabled",
            "payouts_enabled",
            "details_submitted",
            "livemode",
            "limited_permissions",
            "verification_state",
            "verification_code",
            "verification_reason",
            "verification_next_attempt_at",
            "checked_at",
            "helpdesk_flags",
            "followup_due_at",
        ]
    )


def _helpdesk_flags(credential: Credential) -> list[str]:
    """Return what the helpdesk should look at. The merchant is never told about others."""
    active_elsewhere = (
        Credential.objects.active()
        .filter(fingerprint=credential.fingerprint)
        .exclude(merchant_id=credential.merchant_id)
    )
    other_mode_accounts = (
        Credential.objects.active()
        .filter(
            merchant_id=credential.merchant_id,
            provider=credential.provider,
            verification_state=VerificationState.VERIFIED,
        )
        .exclude(mode=credential.mode)
        .exclude(account_id="")
        .exclude(account_id=credential.account_id)
    )
    # Both questions in one query: the worker asks them for every key it decides.
    duplicate, mismatch = (
        Credential.objects.filter(pk=credential.pk)
        .annotate(duplicate=Exists(active_elsewhere), mismatch=Exists(other_mode_accounts))
        .values_list("duplicate", "mismatch")
        .get()
    )
    flags = []
    if duplicate:
        flags.append(HelpdeskFlag.DUPLICATE_ELSEWHERE)
    if mismatch and credential.account_id:
        flags.append(HelpdeskFlag.ACCOUNT_MISMATCH)
    if credential.limited_permissions:
        flags.append(HelpdeskFlag.LIMITED_PERMISSIONS)
    return [str(flag) for flag in flags]


def _flag_duplicates_elsewhere(*, fingerprint: str, merchant_id: int) -> None:
    """Flag the other merchants' active keys with this fingerprint as well, so the helpdesk
    sees the duplicate from both sides, not only on the key verified last.

    Run after the verification committed, one key per transaction: no worker ever holds the
    locks of two keys at once, so two verifications of the same key cannot deadlock.
    """
    flag = str(HelpdeskFlag.DUPLICATE_ELSEWHERE)
    others = (
        Credential.objects.active()
        .filter(fingerprint=fingerprint)
        .exclude(merchant_id=merchant_id)
        .values_list("pk", flat=True)
    )
    for pk in list(others):
        with transaction.atomic():
            other = Credential.objects.select_for_update().defer("secret").filter(pk=pk).first()
            if other is not None and other.is_active and flag not in other.helpdesk_flags:
                other.helpdesk_flags = [*other.helpdesk_flags, flag]
                other.save(update_fields=["helpdesk_flags"])


def _notify_outcome(credential: Credential, *, replaced=()) -> None:
    """Queue the outcome mails (once each, whatever the number of deliveries of the task)."""
    merchant = credential.merchant
    still_in_use = (
        _active_verified_others(credential).first()
        if credential.verification_state != VerificationState.VERIFIED
        else None
    )
    context = _mail_context(credential, replaced=list(replaced), still_in_use=still_in_use)
    mails = []
    if credential.submitted_by and credential.submitted_by.email:
        mails.append(
            email_compose(
                dedupe_key=f"verification:{credential.pk}:merchant",
                kind="merchant_verification_result",
                to=[credential.submitted_by.email],
                template="merchant_verification_result",
                context=context,
                merchant=merchant,
                credential=credential,
            )
        )
    mails.append(
        email_compose(
            dedupe_key=f"verification:{credential.pk}:helpdesk",
            kind=HELPDESK_SUBMISSION,
            to=[settings.HELPDESK_EMAIL],
            template="helpdesk_submission",
            context=context,
            merchant=merchant,
            credential=credential,
        )
    )
    emails_enqueue(mails, send_in_process=True)


def verifications_requeue_stale(*, now=None) -> int:
    """Queue again the verifications that no worker is doing: return how many.

    A key stays pending when the broker was down at submission or a retry was lost, and
    stays "verifying" when its worker died. Each is queued at most once per
    VERIFY_STALE_AFTER; the verification itself is idempotent, so a duplicate costs nothing.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.VERIFY_STALE_AFTER)
    stale = (
        Credential.objects.active()
        .filter(
            Q(verification_state=VerificationState.PENDING)
            & (
                Q(verification_next_attempt_at__lte=stale_before)
                | Q(verification_next_attempt_at__isnull=True, submitted_at__lte=stale_before)
            )
            | Q(
                verification_state=VerificationState.VERIFYING,
                verification_claimed_at__lte=stale_before,
            )
        )
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    queued = 0
    for pk in list(stale):
        # Release a dead worker's claim and restart the staleness clock, conditionally, so
        # two sweeps do not both queue it.
        released = (
            Credential.objects.filter(pk=pk)
            .filter(
                Q(verification_state=VerificationState.PENDING)
                | Q(verification_claimed_at__lte=stale_before)
            )
            .exclude(verification_next_attempt_at__gt=stale_before)
            .update(verification_state=VerificationState.PENDING, verification_next_attempt_at=now)
        )
        if released and enqueue(VERIFY_TASK, pk):
            queued += 1
    return queued


@transaction.atomic
def credential_acknowledge(*, credential: Credential, actor, request=None) -> bool:
    """Record that the helpdesk took the submission: reminders stop, including one queued but
    not sent yet (the mail server was down). Return False if it already was acknowledged
    (the first acknowledgement is kept)."""
    updated = Credential.objects.filter(pk=credential.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor, followup_due_at=None
    )
    if updated:
        reminders_cancel(credential=credential)
        audit_record(
            action=AuditEvent.Action.SUBMISSION_ACKNOWLEDGED,
            actor=actor,
            merchant_id=credential.merchant_id,
            target=_key_target(credential),
            request=request,
        )
    return bool(updated)


def _mail_context(credential: Credential, **extra) -> dict:
    """Return what every mail about a key needs: the key (hint only), its merchant and the
    absolute links to its page, to the submit form and to the helpdesk admin."""
    merchant = credential.merchant
    return {
        "credential": credential,
        "merchant": merchant,
        "merchant_url": settings.SITE_URL + credential.get_absolute_url(),
        "submit_url": settings.SITE_URL
        + reverse("credentials:submit", kwargs={"slug": merchant.slug}),
        "admin_url": credential_admin_url(credential),
        **extra,
    }


def _merchant_recipients(credential: Credential, *, also=()) -> list[str]:
    """Return who at the merchant hears about a key: its submitter and the contact address."""
    submitter = credential.submitted_by.email if credential.submitted_by else ""
    addresses = (submitter, credential.merchant.contact_email, *also)
    return sorted({address for address in addresses if address})


def _key_target(credential: Credential) -> str:
    """Name a key in the audit trail by its hint: never by anything that holds the secret."""
    return f"{credential.get_mode_display().lower()} key {credential.secret_hint}"


# Key lifecycle: roll, revoke, re-verify, reveal -----------------------------------------


def _next_reverification(after: datetime) -> datetime:
    """Return when a key verified at `after` is checked again: REVERIFY_EVERY later, give or
    take a tenth, so that keys verified together do not all come due together."""
    period = settings.REVERIFY_EVERY
    jitter = random.uniform(-period / 10, period / 10)  # noqa: S311  spreading, not secrecy
    return after + timedelta(seconds=period + jitter)


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
        .defer("secret")
    )


def _active_verified_others(credential: Credential):
    return (
        _active_in_same_slot(credential)
        .filter(verification_state=VerificationState.VERIFIED)
        .order_by("-submitted_at")
    )


def _supersede_older_keys(credential: Credential) -> list[Credential]:
    """Retire the keys this verified one replaces (a roll): older active keys of the same
    merchant, provider and mode become superseded and their secrets are erased. Hints,
    fingerprints and history stay. Return them."""
    older = list(
        _active_in_same_slot(credential)
        .filter(submitted_at__lt=credential.submitted_at)
        .select_for_update(of=("self",))
    )
    Credential.objects.filter(pk__in=[old.pk for old in older]).update(
        lifecycle_state=LifecycleState.SUPERSEDED,
        secret=None,
        replaced_by=credential,
        lifecycle_changed_at=timezone.now(),
        followup_due_at=None,
        next_reverify_at=None,
    )
    for old in older:
        audit_record(
            action=AuditEvent.Action.KEY_SUPERSEDED,
            merchant_id=credential.merchant_id,
            target=_key_target(old),
            details={"replaced_by": credential.secret_hint},
        )
    return older


REVOKE_WHAT_TO_DO = (
    "Roll the key in the Stripe dashboard (Developers → API keys → ⋯ → Roll key) so that the "
    "compromised one stops working everywhere, then submit the new key in Keyhouse."
)


@transaction.atomic
def credential_revoke(*, credential: Credential, actor, reason: str, request=None) -> Credential:
    """Revoke a key reported compromised: at once, its secret erased, reminders stopped, the
    helpdesk alerted (urgent mail) and the merchant told how to roll it and submit the new one.

    Merchant members need "Revoke keys"; helpdesk staff need to change credentials in the
    admin. Raise PermissionDenied otherwise, and ValidationError if it is not active.
    """
    merchant = credential.merchant
    by_helpdesk = actor.is_staff and actor.has_perm("credentials.change_credential")
    if not (actor.has_perm(REVOKE_KEYS, merchant) or by_helpdesk):
        raise PermissionDenied("Your role does not allow revoking keys.")
    reason = " ".join(reason.split())[:500]
    if SECRET_IN_TEXT.search(reason):
        raise ValidationError("Describe what happened without pasting the key itself.")
    now = timezone.now()
    revoked = (
        Credential.objects.active()
        .filter(pk=credential.pk)
        .update(
            lifecycle_state=LifecycleState.REVOKED,
            secret=None,
            revoked_by=actor,
            revoked_reason=reason,
            lifecycle_changed_at=now,
            followup_due_at=None,
            next_reverify_at=None,
        )
    )
    if not revoked:
        raise ValidationError("This key is no longer active: it was already replaced or revoked.")
    reminders_cancel(credential=credential)
    credential = (
        Credential.objects.select_related("merchant", "submitted_by", "revoked_by")
        .defer("secret")
        .get(pk=credential.pk)
    )
    audit_record(
        action=AuditEvent.Action.KEY_REVOKED,
        actor=actor,
        merchant=merchant,
        target=_key_target(credential),
        details={"reason": reason, "by": "helpdesk" if by_helpdesk else "merchant"},
        request=request,
    )
    context = _mail_context(credential, what_to_do=REVOKE_WHAT_TO_DO)
    mails = [
        email_compose(
            dedupe_key=f"revoked:{credential.pk}:helpdesk",
            kind="helpdesk_key_revoked",
            to=[settings.HELPDESK_EMAIL],
            template="helpdesk_key_revoked",
            context=context,
            merchant=merchant,
            credential=credential,
            urgent=True,
        )
    ]
    recipients = _merchant_recipients(credential, also=() if by_helpdesk else (actor.email,))
    if recipients:
        mails.append(
            email_compose(
                dedupe_key=f"revoked:{credential.pk}:merchant",
                kind="merchant_key_revoked",
                to=recipients,
                template="merchant_key_revoked",
                context=context,
                merchant=merchant,
                credential=credential,
            )
        )
    emails_enqueue(mails)
    return credential


REVERIFY_TASK = "credentials.tasks.reverify_credential"


def reverifications_queue_due(*, now=None) -> int:
    """Queue the re-check of every verified active key that is due, spread over the sweep
    interval so Stripe is not asked about all of them at once. Return how many."""
    now = now or timezone.now()
    due = list(
        Credential.objects.active()
        .filter(verification_state=VerificationState.VERIFIED, next_reverify_at__lte=now)
        .order_by("next_reverify_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
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


@sensitive_variables("secret")
def credential_reverify(*, credential_id: int, now=None) -> str:
    """Check again with Stripe a key that was verified; return what happened.

    The key is claimed by moving its next check forward (a conditional update), so two
    sweeps or a redelivered task check it once. A key Stripe now refuses (rolled or deleted
    on Stripe's side, expired) is marked rejected and both sides are told, once: rejected
    keys are not re-checked. A transient failure changes nothing but the next check's time.
    """
    now = now or timezone.now()
    due = (
        Credential.objects.active()
        .filter(
            pk=credential_id,
            verification_state=VerificationState.VERIFIED,
            next_reverify_at__lte=now,
        )
        .values_list("next_reverify_at", flat=True)
        .first()
    )
    if due is None:
        return "not_due"
    claimed = Credential.objects.filter(pk=credential_id, next_reverify_at=due).update(
        next_reverify_at=_next_reverification(now)
    )
    if not claimed:
        return "not_due"
    # values_list() decrypts through the field, as a model instance would.
    secret = Credential.objects.filter(pk=credential_id).values_list("secret", flat=True).first()
    if not secret:
        return "not_due"
    facts, refused_code, transient = _ask_stripe(secret)
    del secret
    if transient:
        # Not the key's fault: check again in an hour rather than a day. Only if it is still
        # active and verified: a key revoked or replaced meanwhile is never checked again.
        Credential.objects.active().filter(
            pk=credential_id, verification_state=VerificationState.VERIFIED
        ).update(next_reverify_at=now + timedelta(hours=1))
        return "unavailable"
    with transaction.atomic():
        credential = _locked_for_recording(credential_id)
        if not credential.is_active or credential.verification_state != VerificationState.VERIFIED:
            return "not_due"
        credential.checked_at = timezone.now()
        if facts is not None:
            credential.charges_enabled = facts.charges_enabled
            credential.payouts_enabled = facts.payouts_enabled
            credential.details_submitted = facts.details_submitted
            credential.save(
                update_fields=[
                    "checked_at",
                    "charges_enabled",
                    "payouts_enabled",
                    "details_submitted",
                ]
            )
            return "still_valid"
        credential.verification_state = VerificationState.REJECTED
        credential.verification_code = refused_code
        credential.verification_reason = REASONS["no_longer_valid"].format(
            reason=REASONS[refused_code]
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
            target=_key_target(credential),
            details={"outcome": "rejected", "code": refused_code},
        )
        merchant = credential.merchant
        context = _mail_context(credential)
        attempt = f"{credential.pk}:{credential.verification_attempts}"
        mails = []
        recipients = _merchant_recipients(credential)
        if recipients:
            mails.append(
                email_compose(
                    dedupe_key=f"no-longer-valid:{attempt}:merchant",
                    kind="merchant_key_no_longer_valid",
                    to=recipients,
                    template="merchant_key_no_longer_valid",
                    context=context,
                    merchant=merchant,
                    credential=credential,
                )
            )
        mails.append(
            email_compose(
                dedupe_key=f"no-longer-valid:{attempt}:helpdesk",
                kind="helpdesk_key_no_longer_valid",
                to=[settings.HELPDESK_EMAIL],
                template="helpdesk_key_no_longer_valid",
                context=context,
                merchant=merchant,
                credential=credential,
            )
        )
        emails_enqueue(mails, send_in_process=True)
    return "rejected"


@sensitive_variables("secret")
def credential_reveal(*, credential: Credential, actor, reason: str, request=None) -> str:
    """Return the plaintext secret to a helpdesk lead, and audit who, which key and why.

    Only active staff holding "credentials.reveal_secret" may; anyone else gets
    PermissionDenied, and the refusal is audited too. The reason is required.
    """
    reason = " ".join(reason.split())[:500]
    allowed = actor.is_active and actor.is_staff and actor.has_perm("credentials.reveal_secret")
    if not allowed:
        audit_record(
            action=AuditEvent.Action.KEY_REVEAL_REFUSED,
            actor=actor,
            merchant_id=credential.merchant_id,
            target=_key_target(credential),
            # A key pasted as the reason is withheld: the refusal is still audited.
            details={"reason": SECRET_IN_TEXT.sub("[key withheld]", reason)},
            request=request,
        )
        raise PermissionDenied("Only helpdesk leads may reveal a secret.")
    if len(reason) < 10:
        raise ValidationError("Say why you need the secret (at least 10 characters).")
    if SECRET_IN_TEXT.search(reason):
        raise ValidationError("Describe why without pasting a key.")
    secret = (
        Credential.objects.active()
        .filter(pk=credential.pk)
        .values_list("secret", flat=True)
        .first()
    )
    if not secret:
        raise ValidationError("This key is no longer active: its secret was erased.")
    audit_record(
        action=AuditEvent.Action.KEY_REVEALED,
        actor=actor,
        merchant_id=credential.merchant_id,
        target=_key_target(credential),
        details={"reason": reason},
        request=request,
    )
    return secret
