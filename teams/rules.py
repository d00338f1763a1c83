"""The team rules: who may give which role, manage which member, define which custom role.

Each predicate returns None when the action is allowed, or the sentence that says why not.
Services enforce them (raising `audit.refusals.Refused`); pages ask them to hide what is not
allowed.
"""

from django.contrib.auth.models import Permission
from django.db.models import Q

from teams.models import Membership
from teams.permissions import (
    ALL_MERCHANT_PERMISSIONS,
    CATALOGUE,
    CATALOGUE_BY_PERM,
    INVITE_MEMBERS,
    OWNER,
    REVOKE_KEYS,
    SUBMIT_KEYS,
    VIEW_KEYS,
    VIEW_MERCHANT,
)

# Permissions used through another's pages: whoever submits a key is sent to its page to
# follow the verification (and mailed its address), and keys are reported compromised from
# the list of keys, so both come with "View keys".
PERMISSION_NEEDS = {SUBMIT_KEYS: VIEW_KEYS, REVOKE_KEYS: VIEW_KEYS}


def permission_objects(perms) -> list:
    """Return the auth Permission rows named by `app_label.codename` strings (missing ones are
    left out)."""
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


def _sorted(perms) -> list[str]:
    return sorted(perms, key=_catalogue_order)


def _labels(perms) -> str:
    return ", ".join(CATALOGUE_BY_PERM[perm].label for perm in _sorted(perms))


def _catalogue_order(perm: str) -> int:
    return [entry.perm for entry in CATALOGUE].index(perm)


def is_owner(user, merchant) -> bool:
    """Return True if `user` is an Owner of `merchant`."""
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


INVITER_CANNOT_GRANT = (
    "The person who invited you can no longer give this role; ask the team for a new invitation."
)


def refusal_to_invite(inviter, merchant, role) -> str | None:
    """Why `inviter` may not (or may no longer) invite someone to `merchant` as `role`, or None.

    Asked again when an invitation is accepted and when the inviter's place in the team
    changes: an invitation is only as good as its inviter's right to give that role now.
    """
    if inviter is None or not inviter.has_perm(INVITE_MEMBERS, merchant):
        return INVITER_CANNOT_GRANT
    if refusal_to_grant(inviter, merchant, role):
        return INVITER_CANNOT_GRANT
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


def is_last_owner(membership) -> bool:
    """Return True if `membership` is its merchant's only Owner, who must stay one."""
    if not membership.role.is_owner:
        return False
    owners = Membership.objects.filter(
        merchant_id=membership.merchant_id, role__merchant__isnull=True, role__slug=OWNER
    )
    return owners.count() <= 1


def refusal_to_leave(membership) -> str | None:
    """Why the member of `membership` may not leave its merchant, or None: the last Owner
    stays, so that someone can always manage the team."""
    if not is_last_owner(membership):
        return None
    return (
        f"You are the last Owner of {membership.merchant.name}, so you cannot leave: make "
        "someone else an Owner first."
    )


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
    unmet = {perm for perm in perms if PERMISSION_NEEDS.get(perm, VIEW_MERCHANT) not in perms}
    if unmet:
        named = " and ".join(f"“{CATALOGUE_BY_PERM[perm].label}”" for perm in _sorted(unmet))
        return (
            f"Include “View keys” with {named}: a member who submits a key is sent to its "
            "page to follow its verification, and keys are reported from that list."
        )
    if role is not None:
        return refusal_to_change_role(actor, merchant, role)
    return None


def refusal_to_change_role(actor, merchant, role) -> str | None:
    """Why `actor` may not edit or delete the custom role `role` of `merchant`, or None."""
    if Membership.objects.filter(user=actor, merchant=merchant, role=role).exists():
        return "You hold this role, so you cannot change it; ask another manager."
    missing = role_permission_names(role) - held_permissions(actor, merchant)
    if missing:
        return (
            f"This role includes permissions you do not hold ({_labels(missing)}), so "
            "you cannot change it."
        )
    return None
