"""What the integrator's systems may know about a key, never a secret: the one shape the API's
lists and the webhook events both use."""

from credentials.models import Credential


def credential_public_facts(credential: Credential) -> dict:
    """Return a key's public facts: provider, mode, kind, hint, verification and lifecycle."""
    return {
        "id": credential.pk,
        "provider": credential.provider,
        "mode": credential.mode,
        "kind": credential.kind,
        "hint": credential.secret_hint,
        "verification_state": credential.verification_state,
        "verification_code": credential.verification_code,
        "account_id": credential.account_id,
        "livemode": credential.livemode,
        "lifecycle_state": credential.lifecycle_state,
        "missing_permissions": list(credential.missing_permissions),
        "submitted_at": _iso(credential.submitted_at),
        "checked_at": _iso(credential.checked_at),
        "replaced_by": credential.replaced_by_id,
    }


def merchant_public_facts(merchant) -> dict:
    return {"slug": merchant.slug, "name": merchant.name}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None
