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
from credentials.models import Credential, LifecycleState, VerificationState
from credentials.providers import provider_for
from credentials.providers.base import SubmittedKeys
from credentials.selectors import (
    credential_fingerprint_active,
    credential_list_active_by_fingerprint,
)
from credentials.services.events import credential_event, credentials_superseded_event
from credentials.services.helpdesk import reminders_cancel
from credentials.services.notifications import key_target
from integrations.scopes import EventType
from merchants.models import Merchant
from teams.permissions import SUBMIT_KEYS

VERIFY_TASK = "credentials.tasks.verify_credential"
# A failed submission of a secret does not block submitting the same secret again.
RESUBMITTABLE = frozenset({VerificationState.REJECTED, VerificationState.UNREACHABLE})


class SubmissionRefused(ValidationError):
    """A submission the service refuses for a reason the merchant can fix. `field` names the
    form field the refusal belongs beside (None: the form as a whole)."""

    def __init__(self, message, code=None, field: str | None = None):
        super().__init__(message, code=code)
        self.field = field


DUPLICATE_MESSAGE = (
    "This secret key is already stored for this merchant in {mode} mode ({hint}). There is "
    "nothing to do; to replace a key, roll it in {dashboard} and submit the new one."
)


@refusals_audited
@sensitive_variables("keys", "secret")
def credential_submit(
    *,
    merchant: Merchant,
    keys: SubmittedKeys,
    requested_integrations: list[str],
    note: str,
    actor,
    request=None,
) -> Credential:
    """Store `keys` (parsed by their provider's form) for `merchant`, encrypted and pending
    verification.

    Needs "Submit and roll keys" (Refused otherwise).
    Raise SubmissionRefused (code "duplicate") when the same secret is already active for this
    merchant, provider and mode and verified or being verified, or with the provider's own
    code when its policy refuses the keys (a Stripe secret key under
    STRIPE_SECRET_KEY_POLICY=refuse). The same secret submitted again after the provider
    rejected it or could not be reached is a new attempt: the failed submission is retired in
    its favour.
    """
    authorize(actor, SUBMIT_KEYS, merchant)
    provider = provider_for(keys.provider)
    if refusal := provider.submission_refusal(keys):
        raise SubmissionRefused(
            refusal.message, code=refusal.code, field=(refusal.params or {}).get("field")
        )
    secret = keys.secret
    fingerprint = secret_fingerprint(secret)
    duplicate = SubmissionRefused(
        DUPLICATE_MESSAGE.format(mode=keys.mode, hint=keys.hint, dashboard=provider.dashboard),
        code="duplicate",
        field="secret_key",
    )
    credential = Credential(
        merchant=merchant,
        provider=keys.provider,
        mode=keys.mode,
        kind=keys.kind,
        public_key=keys.public_key,
        secret=secret,
        extra_secret=keys.extra_secret or None,
        secret_hint=keys.hint,
        fingerprint=fingerprint,
        requested_integrations=list(requested_integrations),
        note=note,
        submitted_by=actor,
    )
    # The secret is left out of model validation: validating a constraint that names it would
    # send the plaintext to the database as a query parameter.
    credential.full_clean(exclude={"secret", "extra_secret"}, validate_constraints=False)
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
                details={
                    "provider": credential.provider,
                    "mode": credential.mode,
                    "kind": credential.kind,
                },
                request=request,
            )
            credential_event(credential, EventType.SUBMITTED)
            if same:
                credentials_superseded_event(earlier.pk for earlier in same)
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
        extra_secret=None,
        lifecycle_changed_at=timezone.now(),
        followup_due_at=None,
        next_reverify_at=None,
    )
    for credential in failed:
        reminders_cancel(credential=credential)
