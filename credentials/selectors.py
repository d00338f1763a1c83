"""Reads of credentials, always scoped to a merchant the acting user belongs to."""

from django.http import Http404

from credentials.models import Credential, Mode


def credential_get_for_member(*, user, merchant, pk: int) -> Credential:
    """Return credential `pk` of `merchant` if `user` is a member there; else raise Http404."""
    try:
        return Credential.objects.with_people().get(
            pk=pk, merchant=merchant, merchant__memberships__user=user
        )
    except (Credential.DoesNotExist, ValueError):
        raise Http404("No such key.") from None


def credentials_current_by_mode(*, merchant) -> dict[str, Credential | None]:
    """Return the newest active credential of each mode (test, live), or None for a mode.

    During a roll the newest one is the replacement still being verified, which is what the
    merchant wants to follow.
    """
    current: dict[str, Credential | None] = dict.fromkeys(Mode.values)
    for credential in Credential.objects.active().with_people().filter(merchant=merchant):
        if current[credential.mode] is None:
            current[credential.mode] = credential
    return current


def credential_fingerprint_active(*, merchant, provider: str, mode: str, fingerprint: str) -> bool:
    """Return True if this secret is already active for the merchant, provider and mode."""
    return (
        Credential.objects.active()
        .filter(merchant=merchant, provider=provider, mode=mode, fingerprint=fingerprint)
        .exists()
    )
