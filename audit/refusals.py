"""The one door for permissions: `authorize()`, the one refusal type, and its one audit.

Every service that acts for a person starts with `authorize(actor, PERMISSION, merchant)`
and is decorated with `@refusals_audited`. Whatever refuses inside it (the permission check,
or a team rule further on) raises `Refused`; the decorator writes that refusal to the audit
trail once, outside the service's transaction (which the refusal rolls back), whichever
path called it: a page, the admin, a command or a task.

Permissions are Django permission strings (`app_label.codename`), asked through Django's own
`has_perm`: with a merchant they are answered by the member's role there
(`teams.backends.MerchantRoleBackend`), without one by the user's groups (the helpdesk).
"""

import functools

from django.core.exceptions import PermissionDenied

from audit.models import AuditEvent
from audit.services import audit_record
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
                audit_record(
                    action=refusal.action,
                    actor=kwargs.get("actor", kwargs.get("user")),
                    merchant=refusal.merchant,
                    target=_target(request, service),
                    details=_details(refusal),
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
