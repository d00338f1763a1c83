"""Reads of the audit trail, scoped to one merchant."""

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_event_list(*, merchant, action: str = "", actor_id=None) -> QuerySet[AuditEvent]:
    """Return the merchant's audit trail, newest first, optionally filtered."""
    events = AuditEvent.objects.filter(merchant=merchant).select_related("actor")
    if action:
        events = events.filter(action=action)
    if actor_id:
        events = events.filter(actor_id=actor_id)
    return events.order_by("-occurred_at", "-pk")
