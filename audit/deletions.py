"""Deleting an account is itself recorded.

Accounts are not deleted through the app (the admin deactivates them), but `User.delete()`
stays possible from code or a shell. An account that acted cannot be deleted at all: the
audit trail protects its events' actor (`AuditEvent.actor` is PROTECT). One that never acted
can be, and its deletion is written to the trail by the system, in the same transaction.
"""

from django.conf import settings
from django.db.models.signals import post_delete
from django.dispatch import receiver

from audit.models import AuditEvent
from audit.services import audit_record
from core.redaction import redact


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="audit_user_deleted")
def audit_user_deleted(sender, instance, **kwargs):
    audit_record(
        action=AuditEvent.Action.USER_DELETED,
        target=redact(f"user {instance.email}"),
        details={"user_id": instance.pk},
    )
