"""Team pages: members, invitations, custom roles and the audit trail of one merchant.

Every merchant page declares the permission it needs (MerchantPermissionRequiredMixin);
objects in the URL are found through selectors scoped to that merchant; services decide
what is allowed and audit their refusals, which pages show as messages or form errors.
"""

from teams.views.invitations import (
    InvitationAcceptView,
    InvitationCreateView,
    InvitationResendView,
    InvitationRevokeView,
)
from teams.views.members import (
    AuditTrailView,
    LeaveView,
    MemberEditView,
    MemberRemoveView,
    TeamView,
)
from teams.views.roles import RoleCreateView, RoleDeleteView, RoleEditView, RoleListView

__all__ = [
    "AuditTrailView",
    "InvitationAcceptView",
    "InvitationCreateView",
    "InvitationResendView",
    "InvitationRevokeView",
    "LeaveView",
    "MemberEditView",
    "MemberRemoveView",
    "RoleCreateView",
    "RoleDeleteView",
    "RoleEditView",
    "RoleListView",
    "TeamView",
]
