"""Writes of teams: memberships, custom roles, invitations and users.

Every service that acts for a person starts with `audit.refusals.authorize`, enforces the
team rules of `teams.rules` (the server decides, whatever the page showed), runs in a
transaction, writes an audit event, and refuses with `audit.refusals.Refused`, audited once
by `@refusals_audited`.
"""

from teams.services.invitations import (
    INVITATION_VALID_FOR,
    invitation_accept,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    invitation_url,
    user_create_from_invitation,
)
from teams.services.memberships import (
    membership_change_role,
    membership_create,
    membership_leave,
    membership_remove,
    merchant_create_with_owner,
)
from teams.services.roles import role_create, role_delete, role_update

__all__ = [
    "INVITATION_VALID_FOR",
    "invitation_accept",
    "invitation_create",
    "invitation_resend",
    "invitation_revoke",
    "invitation_url",
    "membership_change_role",
    "membership_create",
    "membership_leave",
    "membership_remove",
    "merchant_create_with_owner",
    "role_create",
    "role_delete",
    "role_update",
    "user_create_from_invitation",
]
