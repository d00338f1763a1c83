"""Reads of merchant data, always scoped to the acting member."""

from django.db.models import QuerySet
from django.http import Http404

from merchants.models import Merchant
from teams.models import Membership


def memberships_for_user(*, user) -> QuerySet[Membership]:
    """Return the user's memberships with their merchant and role, merchants by name."""
    return (
        Membership.objects.filter(user=user)
        .select_related("merchant", "role")
        .order_by("merchant__name", "merchant__pk")
    )


def merchant_get_for_member(*, user, slug: str) -> Merchant:
    """Return the merchant `slug` if `user` is one of its members.

    Raise Http404 otherwise, whether the merchant does not exist or belongs to others: a 403
    would confirm that another tenant exists.
    """
    if not user.is_authenticated:
        raise Http404("No such merchant.")
    try:
        return Merchant.objects.get(slug=slug, memberships__user=user)
    except Merchant.DoesNotExist:
        raise Http404("No such merchant.") from None


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
    from credentials.models import VerificationState

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
