"""Reads of credentials, always scoped to a merchant the acting user belongs to.

Lists and pages never load the encrypted column: decrypting is for verification only, and a
page that decrypted every key would grow slower with each one stored.
"""

from django.db.models import QuerySet
from django.http import Http404

from credentials.models import Credential, LifecycleState, Mode


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
    """Return the newest active credential of each mode (test, live), or None for a mode.

    During a roll the newest one is the replacement still being verified, which is what the
    merchant wants to follow. One query per mode, whatever the number of stored keys.
    """
    active = _for_display(user=user, merchant=merchant).filter(
        lifecycle_state=LifecycleState.ACTIVE
    )
    return {mode: active.filter(mode=mode).first() for mode in Mode.values}


def credential_fingerprint_active(*, merchant, provider: str, mode: str, fingerprint: str) -> bool:
    """Return True if this secret is already active for the merchant, provider and mode."""
    return (
        Credential.objects.active()
        .filter(merchant=merchant, provider=provider, mode=mode, fingerprint=fingerprint)
        .exists()
    )


def credentials_history(*, user, merchant) -> QuerySet[Credential]:
    """Return every key of the merchant, newest first, with who submitted and who revoked."""
    return (
        _for_display(user=user, merchant=merchant)
        .select_related("revoked_by", "replaced_by")
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
