"""The one door for permissions: `authorize()`, the one refusal type, and its one audit.

Every service that acts for a person starts with `authorize(actor, PERMISSION, merchant)`
and is decorated with `@refusals_audited`. Whatever refuses inside it (the permission check,
or a team rule further on) raises `Refused`; the decorator writes that refusal to the audit
trail once, outside the service's transaction (which the refusal rolls back), whichever
path called it: a page, the admin, a command or a task.

Permissions are Django permission strings (`app_label.codename`), asked through Django's own
`has_perm`: with a merchant they are answered by the member's role there
(`teams.backends.MerchantRoleBackend`), without one by the user's groups (the helpdesk).

Refusals of a person on a merchant are written once per window (AUDIT_REFUSAL_WINDOW, ten
minutes) for each route or service: someone probing another tenant's pages must not flood its
trail. The first refusal is an event as before; the next ones in the window are counted in a
`RefusalWindow`, and once the window is over one more event says how many there were ("49
more refused attempts"). That event is written by the next refusal after the window or by the
periodic sweep (`refusal_windows_close`), whichever comes first. The trail stays append-only:
no event is ever changed to raise a count.
"""

import functools
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent, RefusalWindow
from audit.services import audit_record, client_ip
from core.redaction import redact

NOT_ALLOWED = "Your role in this merchant does not allow this."


class Refused(PermissionDenied):
    """An action refused to the person who tried it; `message` says why, for them.

    `merchant` names whose audit trail records the refusal; `hidden` asks pages to answer 404
    rather than 403, for what the person may not even know exists (another tenant).
    """

    def __init__(
        self,
        message: str = NOT_ALLOWED,
        *,
        merchant=None,
        permission: str = "",
        hidden: bool = False,
        action: str = AuditEvent.Action.ACTION_REFUSED,
    ):
        super().__init__(message)
        self.message = message
        self.merchant = merchant
        self.permission = permission
        self.hidden = hidden
        self.action = action
        self.audited = False


def holds(actor, permission: str, merchant=None) -> bool:
    """Return True if `actor` holds `permission` for `merchant` (or globally, for staff).

    Global permissions count for staff only: the helpdesk's permissions come from its groups,
    and a group given to a non-staff account by mistake must not open anything.
    """
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return False
    if merchant is None:
        return actor.is_staff and actor.has_perm(permission)
    return actor.has_perm(permission, merchant)


def authorize(
    actor, permission: str, merchant=None, *, staff_permission: str = "", about=None
) -> str:
    """Refuse (Refused) unless `actor` may act; return "member", "staff" or "system".

    `permission` is asked for `merchant` (a member's role) or, without a merchant, of the
    helpdesk. `staff_permission` lets helpdesk staff holding it act on any merchant as well.
    `about` names the merchant whose audit trail records a refusal of a helpdesk permission.
    An actor of None is the system itself (a management command or a task).
    """
    if actor is None:
        return "system"
    if merchant is not None and holds(actor, permission, merchant):
        return "member"
    if merchant is None and holds(actor, permission):
        return "staff"
    if staff_permission and holds(actor, staff_permission):
        return "staff"
    raise Refused(
        NOT_ALLOWED if merchant is not None else "Your account does not allow this.",
        merchant=merchant if merchant is not None else about,
        permission=permission,
        action=AuditEvent.Action.ACCESS_DENIED,
    )


def refusals_audited(service):
    """Decorate a service so that a refusal (Refused) is written to the audit trail once.

    Put it above `@transaction.atomic`: the event is written after the service's own
    transaction has rolled back, so the refused attempt is kept. A refusal already audited by
    an inner service is not written again.
    """

    @functools.wraps(service)
    def wrapper(*args, **kwargs):
        try:
            return service(*args, **kwargs)
        except Refused as refusal:
            if not refusal.audited:
                refusal.audited = True
                request = kwargs.get("request")
                _audit_refusal(
                    refusal,
                    actor=kwargs.get("actor", kwargs.get("user")),
                    target=_target(request, service),
                    request=request,
                )
            raise

    return wrapper


def _target(request, service) -> str:
    """Name what was refused by its route or service, never by its path: a path can hold a
    token (an invitation link) that the audit trail must not keep."""
    match = getattr(request, "resolver_match", None) if request is not None else None
    if match is not None:
        return f"{request.method} {match.view_name}"
    return service.__name__


def _details(refusal: Refused) -> dict:
    details = {"reason": redact(refusal.message)}
    if refusal.permission:
        details["permission"] = refusal.permission
    return details


@refusals_audited
def authorize_view(*, actor, permission: str, merchant=None, about=None, request=None) -> str:
    """`authorize()` for a page that only shows something (a GET), with the refusal audited as
    a service's would be; return what `authorize()` returns."""
    return authorize(actor, permission, merchant, about=about)


def refusal_window() -> timedelta:
    """Return how long refusals of one person on one merchant's route count as one burst."""
    return timedelta(seconds=settings.AUDIT_REFUSAL_WINDOW)


def _audit_refusal(refusal: Refused, *, actor, target: str, request) -> None:
    """Write `refusal` to the audit trail, or count it in the open window of its kind."""
    person = actor is not None and getattr(actor, "is_authenticated", False)
    if not person or refusal.merchant is None:
        _record(refusal, actor=actor, target=target, request=request)
        return
    now = timezone.now()
    with transaction.atomic():
        window, opened = RefusalWindow.objects.select_for_update().get_or_create(
            actor=actor,
            merchant=refusal.merchant,
            action=refusal.action,
            target=target,
            defaults={"opened_at": now, "last_at": now},
        )
        if not opened and now < window.opened_at + refusal_window():
            window.more += 1
            window.last_at = now
            window.last_ip = client_ip(request)
            window.last_reason = redact(refusal.message)[:255]
            window.save(update_fields=["more", "last_at", "last_ip", "last_reason"])
            return
        if not opened:
            _summarise(window)
            window.opened_at = window.last_at = now
            window.more = 0
            window.save(update_fields=["opened_at", "last_at", "more"])
        _record(refusal, actor=actor, target=target, request=request)


def refusal_windows_close(*, now=None) -> int:
    """Sum up every refusal window that is over: one event each for the refusals it counted
    after its first, then the window goes. Return how many summaries were written."""
    closed_before = (now or timezone.now()) - refusal_window()
    written = 0
    with transaction.atomic():
        windows = (
            RefusalWindow.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(opened_at__lte=closed_before)
            .select_related("actor", "merchant")
            .order_by("pk")
        )
        for window in windows:
            written += _summarise(window)
            window.delete()
    return written


def _record(refusal: Refused, *, actor, target: str, request) -> None:
    audit_record(
        action=refusal.action,
        actor=actor,
        merchant=refusal.merchant,
        target=target,
        details=_details(refusal),
        request=request,
    )


def _summarise(window: RefusalWindow) -> int:
    """Write the event saying how many refusals `window` counted after its first; return 1 if
    there were any, else 0."""
    if not window.more:
        return 0
    attempts = "attempt" if window.more == 1 else "attempts"
    audit_record(
        action=window.action,
        actor=window.actor,
        merchant=window.merchant,
        target=window.target,
        details={
            "reason": f"{window.more} more refused {attempts} (not recorded one by one)",
            "more_attempts": window.more,
            "since": window.opened_at.isoformat(timespec="seconds"),
            "until": window.last_at.isoformat(timespec="seconds"),
            "last_reason": window.last_reason,
            "last_ip": window.last_ip or "",
        },
    )
    return 1
