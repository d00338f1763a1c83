"""Submitting keys: stored encrypted, pending verification, queued for the worker."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEvent
from audit.refusals import authorize, refusals_audited
from audit.services import audit_record
from core.queue import enqueue
from credentials.fingerprints import secret_fingerprint
from credentials.models import Credential, LifecycleState, Provider, VerificationState
from credentials.selectors import (
    credential_fingerprint_active,
    credential_list_active_by_fingerprint,
)
from credentials.services.helpdesk import reminders_cancel
from credentials.services.notifications import key_target
from credentials.stripe_keys import StripeKey, check_same_mode
from merchants.models import Merchant
from teams.permissions import SUBMIT_KEYS

VERIFY_TASK = "credentials.tasks.verify_credential"
# A failed submission of a secret does not block submitting the same secret again.
RESUBMITTABLE = frozenset({VerificationState.REJECTED, VerificationState.UNREACHABLE})


class SubmissionRefused(ValidationError):
    """A submission the service refuses for a reason the merchant can fix."""


DUPLICATE_MESSAGE = (
    "This secret key is already stored for this merchant in {mode} mode ({hint}). There is "
    "nothing to do; to replace a key, roll it in the Stripe dashboard and submit the new one."
)


@refusals_audited
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

    Needs "Submit and roll keys" (Refused otherwise).
    Raise SubmissionRefused (code "duplicate") when the same secret is already active for this
    merchant and mode and verified or being verified, or (code "mode_mismatch") for keys of
    different modes. The same secret submitted again after Stripe rejected it or could not
    be reached is a new attempt: the failed submission is retired in its favour.
    """
    authorize(actor, SUBMIT_KEYS, merchant)
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
        kind=secret_key.kind,
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
            same = credential_list_active_by_fingerprint(
                merchant=merchant,
                provider=credential.provider,
                mode=credential.mode,
                fingerprint=fingerprint,
            )
            if any(earlier.verification_state not in RESUBMITTABLE for earlier in same):
                raise duplicate
            _retire(same)
            credential.verification_next_attempt_at = credential.submitted_at
            credential.save()
            Credential.objects.filter(pk__in=[earlier.pk for earlier in same]).update(
                replaced_by=credential
            )
            audit_record(
                action=AuditEvent.Action.KEY_SUBMITTED,
                actor=actor,
                merchant=merchant,
                target=key_target(credential),
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


def _retire(failed: list[Credential]) -> None:
    """Retire failed submissions of the secret being submitted again: superseded, secret
    erased, reminders stopped (their history stays)."""
    if not failed:
        return
    Credential.objects.filter(pk__in=[credential.pk for credential in failed]).update(
        lifecycle_state=LifecycleState.SUPERSEDED,
        secret=None,
        lifecycle_changed_at=timezone.now(),
        followup_due_at=None,
        next_reverify_at=None,
    )
    for credential in failed:
        reminders_cancel(credential=credential)
