"""Reads of credentials, always scoped to a merchant the acting user belongs to.

Lists and pages never load the encrypted column: decrypting is for verification only, and a
page that decrypted every key would grow slower with each one stored.
"""

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import Http404

from credentials.models import Credential, LifecycleState, Mode, VerificationState


def _for_display(*, user, merchant) -> QuerySet[Credential]:
    return (
        Credential.objects.filter(merchant=merchant, merchant__memberships__user=user)
        .select_related("merchant", "submitted_by")
        .defer("secret")
    )


def credential_get_for_member(*, user, merchant, pk: int) -> Credential:
    """Return credential `pk` of `merchant` if `user` is a member there; else raise Http404."""
    try:
        return _for_display(user=user, merchant=merchant).get(pk=pk)
    except (Credential.DoesNotExist, ValueError):
        raise Http404("No such key.") from None


def credentials_current_by_mode(*, user, merchant) -> dict[str, Credential | None]:
    """Return the current credential of each mode (test, live), or None for a mode.

    That is the newest active one, except that a key Stripe refused (or could not check)
    does not hide an older one still in use: during a roll the newest is the replacement
    being verified, which is what the merchant wants to follow, but once it is rejected the
    old key is the one in use again. One query per mode, whatever the number of stored keys.
    """
    failed_last = Case(
        When(
            verification_state__in=[VerificationState.REJECTED, VerificationState.UNREACHABLE],
            then=Value(1),
        ),
        default=Value(0),
        output_field=IntegerField(),
    )
    active = (
        _for_display(user=user, merchant=merchant)
        .filter(lifecycle_state=LifecycleState.ACTIVE)
        .order_by(failed_last, "-submitted_at", "-pk")
    )
    return {mode: active.filter(mode=mode).first() for mode in Mode.values}


def credential_fingerprint_active(*, merchant, provider: str, mode: str, fingerprint: str) -> bool:
    """Return True if this secret is already active for the merchant, provider and mode."""
    return (
        Credential.objects.active()
        .filter(merchant=merchant, provider=provider, mode=mode, fingerprint=fingerprint)
        .exists()
    )


def credential_list_active_by_fingerprint(
    *, merchant, provider: str, mode: str, fingerprint: str
) -> list[Credential]:
    """Return the merchant's active keys of this provider and mode holding the secret with
    `fingerprint`, locked, without their secrets (at most one, by the unique constraint)."""
    return list(
        Credential.objects.active()
        .filter(merchant=merchant, provider=provider, mode=mode, fingerprint=fingerprint)
        .select_for_update()
        .defer("secret")
    )


def credentials_history(*, user, merchant) -> QuerySet[Credential]:
    """Return every key of the merchant, newest first, with who submitted and who revoked,
    and the key that replaced each (its hint only: its secret is never loaded)."""
    return (
        _for_display(user=user, merchant=merchant)
        .select_related("revoked_by", "replaced_by")
        .defer("replaced_by__secret")
        .order_by("-submitted_at", "-pk")
    )


def credential_last_retired(*, user, merchant, mode: str) -> Credential | None:
    """Return the most recently revoked or superseded key of a mode, or None."""
    return (
        _for_display(user=user, merchant=merchant)
        .filter(mode=mode)
        .exclude(lifecycle_state=LifecycleState.ACTIVE)
        .order_by("-lifecycle_changed_at", "-pk")
        .first()
    )


class OnboardingStatus:
    """Where a merchant stands, derived from its current keys and the helpdesk's progress."""

    AWAITING_KEYS = "awaiting_keys", "Awaiting keys"
    KEYS_SUBMITTED = "keys_submitted", "Keys submitted"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"
    VERIFIED = "verified", "Verified"
    ENABLED = "enabled", "Enabled"


def merchant_onboarding_status(*, current_credentials) -> tuple[str, str]:
    """Return (code, label) of the onboarding status for the current key of each mode.

    awaiting keys → keys submitted → verified | needs attention → enabled (every current key
    verified and acknowledged by the helpdesk).
    """
    credentials = [credential for credential in current_credentials if credential is not None]
    if not credentials:
        return OnboardingStatus.AWAITING_KEYS
    states = {credential.verification_state for credential in credentials}
    if states & {VerificationState.REJECTED, VerificationState.UNREACHABLE}:
        return OnboardingStatus.NEEDS_ATTENTION
    if states & {VerificationState.PENDING, VerificationState.VERIFYING}:
        return OnboardingStatus.KEYS_SUBMITTED
    if all(credential.acknowledged_at for credential in credentials):
        return OnboardingStatus.ENABLED
    return OnboardingStatus.VERIFIED
