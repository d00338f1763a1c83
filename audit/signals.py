"""Sign-ins, successful or not, go to the audit trail."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from audit.models import AuditEvent
from audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="audit_signed_in")
def audit_signed_in(sender, request, user, **kwargs):
    audit_record(action=AuditEvent.Action.SIGNED_IN, actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def audit_sign_in_failed(sender, credentials, request=None, **kwargs):
    # Only the address typed is kept (Django already masks the password), and only if it
    # looks like one: whatever else was typed in the email field is not worth keeping.
    typed = str(credentials.get("username", ""))
    email = typed if "@" in typed and len(typed) <= 254 and " " not in typed else ""
    try:
        audit_record(action=AuditEvent.Action.SIGN_IN_FAILED, actor_email=email, request=request)
    except ValueError:
        audit_record(action=AuditEvent.Action.SIGN_IN_FAILED, request=request)
