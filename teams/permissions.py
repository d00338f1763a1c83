"""The catalogue of merchant permissions and the default roles built from it.

Permissions are Django permissions (`app_label.codename`) declared on the models' Meta. They
are asked per merchant: `user.has_perm(VIEW_KEYS, merchant)`, answered by
`teams.backends.MerchantRoleBackend` from the member's role in that merchant.
"""

from dataclasses import dataclass

VIEW_MERCHANT = "merchants.access_merchant"
EDIT_MERCHANT_PROFILE = "merchants.edit_merchant_profile"
VIEW_KEYS = "credentials.view_key_status"
SUBMIT_KEYS = "credentials.submit_keys"
REVOKE_KEYS = "credentials.revoke_keys"
VIEW_TEAM = "teams.view_team"
INVITE_MEMBERS = "teams.invite_members"
MANAGE_MEMBER_ROLES = "teams.manage_member_roles"
MANAGE_CUSTOM_ROLES = "teams.manage_custom_roles"


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
        SUBMIT_KEYS, "Submit and roll keys", "Send new Stripe keys, including replacements."
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


# Predicates ------------------------------------------------------------------------------
# Each returns None when the action is allowed, or the sentence that says why not. Services
# enforce them; views and templates ask them to hide what is not allowed.


def permission_objects(perms) -> list:
    """Return the auth Permission rows named by `app_label.codename` strings (missing ones are
    left out)."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    if not perms:
        return []
    query = Q()
    for perm in perms:
        app_label, codename = perm.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    return list(Permission.objects.filter(query))


def role_permission_names(role) -> frozenset[str]:
    """Return the role's permissions as `app_label.codename` strings."""
    return frozenset(
        f"{app_label}.{codename}"
        for app_label, codename in role.permissions.values_list(
            "content_type__app_label", "codename"
        )
    )


def held_permissions(user, merchant) -> frozenset[str]:
    """Return the merchant permissions `user` holds through their role there."""
    return frozenset(perm for perm in ALL_MERCHANT_PERMISSIONS if user.has_perm(perm, merchant))


def _labels(perms) -> str:
    return ", ".join(CATALOGUE_BY_PERM[perm].label for perm in sorted(perms, key=_catalogue_order))


def _catalogue_order(perm: str) -> int:
    return [entry.perm for entry in CATALOGUE].index(perm)


def is_owner(user, merchant) -> bool:
    from teams.models import Membership

    return Membership.objects.filter(
        user=user, merchant=merchant, role__merchant__isnull=True, role__slug=OWNER
    ).exists()


def refusal_to_grant(actor, merchant, role) -> str | None:
    """Why `actor` may not give `role` (by invitation or role change) in `merchant`, or None."""
    if role.merchant_id not in (None, merchant.pk):
        return "Choose a default role or one of this merchant's own custom roles."
    if role.is_owner and not is_owner(actor, merchant):
        return "Only an Owner can make someone else an Owner."
    missing = role_permission_names(role) - held_permissions(actor, merchant)
    if missing:
        return (
            f"You cannot give the role “{role.name}”: it includes permissions you do not hold "
            f"({_labels(missing)})."
        )
    return None


def refusal_to_manage_member(actor, membership) -> str | None:
    """Why `actor` may not change or remove `membership`, or None."""
    merchant = membership.merchant
    if membership.user_id == actor.pk:
        return "You cannot change your own role or remove yourself here; ask another manager."
    if membership.role.is_owner and not is_owner(actor, merchant):
        return "Only an Owner can change or remove an Owner."
    missing = role_permission_names(membership.role) - held_permissions(actor, merchant)
    if missing:
        return (
            f"{membership.user.email} holds permissions you do not ({_labels(missing)}), so "
            "you cannot change their membership."
        )
    return None


def refusal_to_define_role(actor, merchant, perms, role=None) -> str | None:
    """Why `actor` may not create (or, with `role`, edit) a custom role with `perms`, or None."""
    unknown = set(perms) - ALL_MERCHANT_PERMISSIONS
    if unknown:
        return "Choose permissions from the list."
    if not perms:
        return "Choose at least one permission: a role without any would open nothing."
    if VIEW_MERCHANT not in perms:
        return (
            "Include “View merchant”: every other permission is used through the merchant's "
            "pages, and a member who cannot open them could not even leave."
        )
    missing = set(perms) - held_permissions(actor, merchant)
    if missing:
        return f"You cannot give a role permissions you do not hold ({_labels(missing)})."
    if role is not None:
        from teams.models import Membership

        if Membership.objects.filter(user=actor, merchant=merchant, role=role).exists():
            return "You hold this role, so you cannot change it; ask another manager."
        missing_now = role_permission_names(role) - held_permissions(actor, merchant)
        if missing_now:
            return (
                f"This role includes permissions you do not hold ({_labels(missing_now)}), so "
                "you cannot change it."
            )
    return None
