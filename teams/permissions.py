"""The catalogue of permissions, merchant and helpdesk, and the default roles built from it.

Permissions are Django permissions (`app_label.codename`) declared on the models' Meta. Merchant
permissions are asked per merchant: `user.has_perm(VIEW_KEYS, merchant)`, answered by
`teams.backends.MerchantRoleBackend` from the member's role in that merchant. Helpdesk
permissions are global, held through the helpdesk's Django groups (`teams.helpdesk`). Every
service asks them through `audit.refusals.authorize`; the team rules that go beyond one
permission are in `teams.rules`.
"""

from dataclasses import dataclass

from merchants.permissions import (
    EDIT_MERCHANT_PROFILE,
    HELPDESK_ADD_MERCHANTS,
    HELPDESK_EDIT_MERCHANTS,
    HELPDESK_VIEW_MERCHANTS,
    VIEW_MERCHANT,
)

# Merchant permissions ------------------------------------------------------------------
# Asked per merchant (`user.has_perm(VIEW_KEYS, merchant)`), answered by the member's role.
VIEW_KEYS = "credentials.view_key_status"
SUBMIT_KEYS = "credentials.submit_keys"
REVOKE_KEYS = "credentials.revoke_keys"
VIEW_TEAM = "teams.view_team"
INVITE_MEMBERS = "teams.invite_members"
MANAGE_MEMBER_ROLES = "teams.manage_member_roles"
MANAGE_CUSTOM_ROLES = "teams.manage_custom_roles"


# Helpdesk permissions -------------------------------------------------------------------
# Global: from the staff user's groups, never from a membership.
HELPDESK_VIEW_KEYS = "credentials.view_credential"
HELPDESK_WORK_QUEUE = "credentials.change_credential"  # acknowledge, revoke, verify again
HELPDESK_REVEAL_SECRETS = "credentials.reveal_secret"
HELPDESK_VIEW_MAIL = "mail.view_outgoingemail"
HELPDESK_VIEW_AUDIT = "audit.view_auditevent"
HELPDESK_VIEW_TEAMS = ("teams.view_membership", "teams.view_role", "teams.view_invitation")
HELPDESK_VIEW_USERS = "teams.view_user"
HELPDESK_ADD_USERS = "teams.add_user"
HELPDESK_MANAGE_USERS = "teams.change_user"
# Sign-in lockouts (django-axes' admin): see who is locked out, and lift a lockout by deleting
# its access attempt (audited by audit.signals).
HELPDESK_VIEW_LOCKOUTS = "axes.view_accessattempt"
HELPDESK_LIFT_LOCKOUTS = "axes.delete_accessattempt"

# Declared by the merchant app, which sits below teams; part of this catalogue all the same.
__all__ = [
    "EDIT_MERCHANT_PROFILE",
    "HELPDESK_ADD_MERCHANTS",
    "HELPDESK_EDIT_MERCHANTS",
    "HELPDESK_VIEW_MERCHANTS",
    "VIEW_MERCHANT",
]


@dataclass(frozen=True)
class MerchantPermission:
    perm: str
    label: str
    description: str

    @property
    def app_label(self) -> str:
        return self.perm.split(".", 1)[0]

    @property
    def codename(self) -> str:
        return self.perm.split(".", 1)[1]


CATALOGUE: tuple[MerchantPermission, ...] = (
    MerchantPermission(VIEW_MERCHANT, "View merchant", "Open the merchant's pages."),
    MerchantPermission(
        EDIT_MERCHANT_PROFILE,
        "Edit merchant profile",
        "Change the merchant's contact details, website, country and requested integrations.",
    ),
    MerchantPermission(
        VIEW_KEYS,
        "View keys",
        "See which keys are stored, their hints and verification results (never the secret).",
    ),
    MerchantPermission(
        SUBMIT_KEYS,
        "Submit and roll keys",
        "Send new provider keys (Stripe, Kashier), including replacements.",
    ),
    MerchantPermission(
        REVOKE_KEYS, "Revoke keys", "Report a key as compromised, which erases it at once."
    ),
    MerchantPermission(VIEW_TEAM, "View team", "See the members, their roles and invitations."),
    MerchantPermission(INVITE_MEMBERS, "Invite members", "Invite people by email to join."),
    MerchantPermission(
        MANAGE_MEMBER_ROLES,
        "Manage members' roles",
        "Change other members' roles and remove members.",
    ),
    MerchantPermission(
        MANAGE_CUSTOM_ROLES, "Manage custom roles", "Create, edit and delete custom roles."
    ),
)
CATALOGUE_BY_PERM = {entry.perm: entry for entry in CATALOGUE}
ALL_MERCHANT_PERMISSIONS = frozenset(CATALOGUE_BY_PERM)


@dataclass(frozen=True)
class DefaultRole:
    slug: str
    name: str
    description: str
    permissions: frozenset[str]


OWNER = "owner"

DEFAULT_ROLES: tuple[DefaultRole, ...] = (
    DefaultRole(
        OWNER, "Owner", "Everything, including making other Owners.", ALL_MERCHANT_PERMISSIONS
    ),
    DefaultRole(
        "administrator",
        "Administrator",
        "Everything but ownership.",
        ALL_MERCHANT_PERMISSIONS,
    ),
    DefaultRole(
        "developer",
        "Developer",
        "Sends and rolls keys and follows their verification.",
        frozenset({VIEW_MERCHANT, VIEW_KEYS, SUBMIT_KEYS, VIEW_TEAM}),
    ),
    DefaultRole(
        "support",
        "Support",
        "Follows the state of the keys.",
        frozenset({VIEW_MERCHANT, VIEW_KEYS}),
    ),
    DefaultRole("view-only", "View only", "Sees the merchant's page.", frozenset({VIEW_MERCHANT})),
)
