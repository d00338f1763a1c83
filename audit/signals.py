"""Sign-ins, successful or not, go to the audit trail; so do sign-in lockouts and their lifting.

Failed sign-ins are throttled by django-axes per typed address and client IP. Each failure is
recorded until the one that locks the sign-in; that lockout is recorded once; attempts refused
while it lasts are not (axes refuses them without checking the password, so they tell
nothing new, and an attacker hammering a locked account would otherwise grow the trail
without bound). At most AXES_FAILURE_LIMIT failures and one lockout per address and IP are
recorded each cool-off period.
"""

from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record


def _typed_address(typed) -> str:
    """Return what was typed in the email field if it looks like an address, else "":
    whatever else was typed there is not worth keeping."""
    typed = str(typed or "")
    return typed if "@" in typed and len(typed) <= 254 and " " not in typed else ""


def _record_with_address(address: str, **kwargs) -> None:
    """Audit with the typed `address`, or without it if it holds something shaped like a
    secret (which audit_record refuses): the event matters more than the address."""
    try:
        audit_record(actor_email=address, **kwargs)
    except ValueError:
        audit_record(**kwargs)


def _refused_while_locked(request) -> bool:
    """Return True if axes refused this attempt because its address and IP were locked
    already: its backend marks the request locked before the password is checked, and such an
    attempt is not counted (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT is off)."""
    return (
        getattr(request, "axes_locked_out", False)
        and getattr(request, "axes_failures_since_start", None) is None
    )


@receiver(user_logged_in, dispatch_uid="audit_signed_in")
def audit_signed_in(sender, request, user, **kwargs):
    audit_record(action=AuditEvent.Action.SIGNED_IN, actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def audit_sign_in_failed(sender, credentials, request=None, **kwargs):
    if request is not None and _refused_while_locked(request):
        return
    # Only the address typed is kept (Django already masks the password).
    _record_with_address(
        _typed_address(credentials.get("username")),
        action=AuditEvent.Action.SIGN_IN_FAILED,
        request=request,
    )


@receiver(user_locked_out, dispatch_uid="audit_sign_in_locked_out")
def audit_sign_in_locked_out(sender, request, username=None, **kwargs):
    """Record the failure that locked an address and IP, once: axes sends this signal again
    for every attempt refused while the lockout lasts."""
    failures = getattr(request, "axes_failures_since_start", None)
    credentials = getattr(request, "axes_credentials", None)
    if failures is None or failures != get_failure_limit(request, credentials):
        return
    until = (getattr(request, "axes_attempt_time", None) or timezone.now()) + get_cool_off(request)
    _record_with_address(
        _typed_address(username),
        action=AuditEvent.Action.SIGN_IN_LOCKED_OUT,
        target="sign-in",
        details={"failures": failures, "until": until.isoformat(timespec="seconds")},
        request=request,
    )


@receiver(post_delete, sender=AccessAttempt, dispatch_uid="audit_sign_in_unlocked")
def audit_sign_in_unlocked(sender, instance, **kwargs):
    """Record a lockout lifted before its time: an access attempt still locking its address
    and IP was deleted (in the admin by the helpdesk, or by `manage.py axes_reset*`).

    Attempts deleted because they expired, or below the limit (a successful sign-in clears
    them), lift nothing and are not recorded. Who lifted it comes from the admin's own log of
    the deletion, written just before it; without one it was a command (the system).
    """
    limit = settings.AXES_FAILURE_LIMIT
    cool_off = get_cool_off()
    if not isinstance(limit, int) or instance.failures_since_start < limit:
        return
    if cool_off is not None and instance.attempt_time <= timezone.now() - cool_off:
        return
    entry = (
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(AccessAttempt),
            object_id=str(instance.pk),
            action_flag=DELETION,
            action_time__gte=instance.attempt_time,
        )
        .select_related("user")
        .order_by("-action_time", "-pk")
        .first()
    )
    address = _typed_address(instance.username)
    details = {"ip": instance.ip_address or "", "failures": instance.failures_since_start}
    actor = entry.user if entry is not None else None
    try:
        audit_record(
            action=AuditEvent.Action.SIGN_IN_UNLOCKED,
            actor=actor,
            target=f"sign-in of {address or 'an address not kept'}",
            details=details,
        )
    except ValueError:
        audit_record(
            action=AuditEvent.Action.SIGN_IN_UNLOCKED,
            actor=actor,
            target="sign-in of an address not kept",
            details=details,
        )
