"""The helpdesk's Django groups and the admin permissions each one holds."""

from django.contrib.auth.models import Group
from django.db import transaction

from teams.permissions import (
    HELPDESK_LIFT_LOCKOUTS,
    HELPDESK_REVEAL_SECRETS,
    HELPDESK_VIEW_AUDIT,
    HELPDESK_VIEW_KEYS,
    HELPDESK_VIEW_LOCKOUTS,
    HELPDESK_VIEW_MAIL,
    HELPDESK_VIEW_MERCHANTS,
    HELPDESK_VIEW_TEAMS,
    HELPDESK_VIEW_USERS,
    HELPDESK_WORK_QUEUE,
)
from teams.rules import permission_objects

HELPDESK_GROUP = "Helpdesk"
HELPDESK_LEAD_GROUP = "Helpdesk lead"

# Global (admin) permissions. Merchant portal permissions come from memberships, not groups.
HELPDESK_PERMISSIONS = (
    HELPDESK_VIEW_MERCHANTS,
    HELPDESK_VIEW_KEYS,
    HELPDESK_WORK_QUEUE,
    HELPDESK_VIEW_MAIL,
    *HELPDESK_VIEW_TEAMS,
    HELPDESK_VIEW_USERS,
    HELPDESK_VIEW_AUDIT,
    # A merchant locked out of signing in calls the helpdesk, which may lift the lockout.
    HELPDESK_VIEW_LOCKOUTS,
    HELPDESK_LIFT_LOCKOUTS,
)

# A lead may also reveal a stored secret (each reveal is audited).
HELPDESK_LEAD_PERMISSIONS = (HELPDESK_REVEAL_SECRETS,)


@transaction.atomic
def helpdesk_groups_ensure() -> dict[str, Group]:
    """Create or update the helpdesk groups so they hold exactly their permissions.

    Permissions not created yet (an app still migrating) are skipped; the run after the last
    app's migration gives the groups everything.
    """
    group, _ = Group.objects.get_or_create(name=HELPDESK_GROUP)
    group.permissions.set(permission_objects(HELPDESK_PERMISSIONS))
    lead, _ = Group.objects.get_or_create(name=HELPDESK_LEAD_GROUP)
    lead.permissions.set(permission_objects((*HELPDESK_PERMISSIONS, *HELPDESK_LEAD_PERMISSIONS)))
    return {HELPDESK_GROUP: group, HELPDESK_LEAD_GROUP: lead}
