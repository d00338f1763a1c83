"""Writing the audit trail. Every security-relevant service calls `audit_record`."""

from audit.models import AuditEvent
from core.redaction import contains_secret


def client_ip(request) -> str | None:
    """Return the address the request came from (REMOTE_ADDR; a proxy must set it)."""
    return request.META.get("REMOTE_ADDR") if request is not None else None


def audit_record(
    *,
    action: str,
    actor=None,
    merchant=None,
    merchant_id=None,
    target: str = "",
    details: dict | None = None,
    request=None,
    actor_email: str = "",
) -> AuditEvent:
    """Append an audit event. Refuse (ValueError) details or a target shaped like a secret."""
    details = details or {}
    if contains_secret(f"{target} {details}"):
        raise ValueError("An audit event must never contain a secret; pass its hint instead.")
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        action=action,
        actor=actor if authenticated else None,
        actor_email=(actor.email if authenticated else actor_email)[:254],
        merchant_id=merchant.pk if merchant is not None else merchant_id,
        target=target[:255],
        details=details,
        ip=client_ip(request),
    )
