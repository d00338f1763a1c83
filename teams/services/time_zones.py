"""The time zone a person reads times in: chosen on the account page, or detected once from
the browser (see `teams.time_zones` for why it is stored on the account)."""

from django.db import transaction

from audit.models import AuditEvent
from audit.refusals import authorize, refusals_audited
from audit.services import audit_record
from teams.models import User
from teams.permissions import HELPDESK_MANAGE_USERS


@refusals_audited
@transaction.atomic
def user_time_zone_set(
    *, user: User, time_zone: str, actor, detected: bool = False, request=None
) -> bool:
    """Set the zone `user` reads times in; return True if it changed. Audited.

    A person sets their own; anyone else needs the helpdesk's permission to manage users
    (Refused otherwise). A zone `detected` from the browser is stored only while none is set,
    so it never overwrites a choice. An unknown zone is refused (ValidationError).
    """
    if actor is None or actor.pk != user.pk:
        authorize(actor, HELPDESK_MANAGE_USERS)
    # Locked, so that a detection arriving with a choice cannot overwrite it.
    current = User.objects.select_for_update().only("time_zone").get(pk=user.pk).time_zone
    if (detected and current) or current == time_zone:
        user.time_zone = current
        return False
    user.time_zone = User._meta.get_field("time_zone").clean(time_zone, user)
    user.save(update_fields=["time_zone"])
    audit_record(
        action=AuditEvent.Action.USER_CHANGED,
        actor=actor,
        target=f"user {user.email}",
        details={
            "changed": ["time_zone"],
            "time_zone": time_zone or "not set",
            "source": "browser" if detected else "chosen",
        },
        request=request,
    )
    return True
