"""Writing the audit trail. Every security-relevant service calls `audit_record`."""

import ipaddress

from django.conf import settings

from audit.models import AuditEvent
from core.redaction import contains_secret
from core.sql import insert_rows


def client_ip(request) -> str | None:
    """Return the address the request came from.

    REMOTE_ADDR, unless TRUSTED_PROXY_COUNT says how many proxies of our own stand in front
    of the app: each of them appends the address it was reached from to X-Forwarded-For, so
    the client is the entry that many places from the right. Whatever stands further left was
    written by the client and proves nothing. A header with fewer entries than that, or an
    entry that is no address, did not come through our proxies: REMOTE_ADDR then.
    Sign-in throttling (django-axes) counts failures per address with this same function.
    """
    if request is None:
        return None
    remote_addr = request.META.get("REMOTE_ADDR") or None
    trusted = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if trusted <= 0 or not forwarded:
        return remote_addr
    entries = [entry.strip() for entry in forwarded.split(",")]
    if len(entries) < trusted:
        return remote_addr
    return _address(entries[-trusted]) or remote_addr


def _address(entry: str) -> str | None:
    """Return `entry` as a normalised IP address, without a port some proxies append
    (`203.0.113.9:5121`, `[2001:db8::1]:5121`); None if it is no address."""
    if entry.startswith("[") and "]" in entry:
        entry = entry[1 : entry.index("]")]
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


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
    ip: str | None = None,
) -> AuditEvent:
    """Append an audit event. Refuse (ValueError) details or a target shaped like a secret.

    The address is the request's client (`client_ip`), or `ip` when the caller worked it out
    already (an API call)."""
    details = details or {}
    if contains_secret(f"{target} {details}"):
        raise ValueError("An audit event must never contain a secret; pass its hint instead.")
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    event = AuditEvent(
        action=action,
        actor=actor if authenticated else None,
        actor_email=(actor.email if authenticated else actor_email)[:254],
        merchant_id=merchant.pk if merchant is not None else merchant_id,
        target=target[:255],
        details=details,
        ip=ip if ip is not None else client_ip(request),
    )
    # Not through the ORM's compiled insert (core.sql): every verification appends one.
    insert_rows([event])
    return event
