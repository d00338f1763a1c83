"""Custom roles: a merchant's own named sets of permissions, within the team rules."""

from django.db import IntegrityError, transaction

from audit.models import AuditEvent
from audit.refusals import Refused, authorize, refusals_audited
from audit.services import audit_record
from core.validators import refuse_secret_text
from teams.models import Invitation, Membership, Role
from teams.permissions import MANAGE_CUSTOM_ROLES
from teams.rules import (
    permission_objects,
    refusal_to_change_role,
    refusal_to_define_role,
    role_permission_names,
)
from teams.services.inviter_changes import invitations_revoke_for_inviter
from teams.services.memberships import lock_team
from teams.services.refusals import refuse as _refuse


def _clean_role_name(merchant, name: str, *, exclude_pk=None) -> str:
    name = " ".join(name.split())
    if not name:
        raise Refused("Give the role a name.", merchant=merchant)
    if len(name) > 64:
        raise Refused(f"Keep the name to 64 characters (it has {len(name)}).", merchant=merchant)
    if Role.objects.defaults().filter(name__iexact=name).exists():
        raise Refused(
            f"“{name}” is the name of a default role; choose another name for a custom role.",
            merchant=merchant,
        )
    clash = Role.objects.filter(merchant=merchant, name__iexact=name).exclude(pk=exclude_pk)
    if clash.exists():
        raise Refused(f"{merchant.name} already has a role called “{name}”.", merchant=merchant)
    return name


@refusals_audited
@transaction.atomic
def role_create(*, merchant, name: str, description: str, permissions, actor, request=None):
    """Create a custom role of `merchant` with `permissions` (`app_label.codename` strings)."""
    authorize(actor, MANAGE_CUSTOM_ROLES, merchant)
    refuse_secret_text(name, description)
    perms = frozenset(permissions)
    _refuse(refusal_to_define_role(actor, merchant, perms), merchant)
    role = Role(merchant=merchant, name=_clean_role_name(merchant, name), description=description)
    role.full_clean()
    try:
        with transaction.atomic():
            role.save()
    except IntegrityError:
        raise Refused(
            f"{merchant.name} already has a role called “{role.name}”.", merchant=merchant
        ) from None
    role.permissions.set(permission_objects(perms))
    audit_record(
        action=AuditEvent.Action.ROLE_CREATED,
        actor=actor,
        merchant=merchant,
        target=f"role {role.name}",
        details={"permissions": sorted(perms)},
        request=request,
    )
    return role


@refusals_audited
@transaction.atomic
def role_update(*, role: Role, name: str, description: str, permissions, actor, request=None):
    """Change a custom role's name, description and permissions. Default roles never change.

    Open invitations sent by the role's holders that they could no longer send are revoked.
    """
    merchant = role.merchant
    if role.is_default or merchant is None:
        raise Refused("Default roles cannot be changed.", merchant=merchant)
    authorize(actor, MANAGE_CUSTOM_ROLES, merchant)
    refuse_secret_text(name, description)
    lock_team(merchant)
    perms = frozenset(permissions)
    _refuse(refusal_to_define_role(actor, merchant, perms, role=role), merchant)
    before = {"name": role.name, "permissions": sorted(role_permission_names(role))}
    role.name = _clean_role_name(merchant, name, exclude_pk=role.pk)
    role.description = description
    role.full_clean()
    role.save(update_fields=["name", "description"])
    role.permissions.set(permission_objects(perms))
    audit_record(
        action=AuditEvent.Action.ROLE_CHANGED,
        actor=actor,
        merchant=merchant,
        target=f"role {role.name}",
        details={"before": before, "after": {"name": role.name, "permissions": sorted(perms)}},
        request=request,
    )
    for holder_id in Membership.objects.filter(role=role).values_list("user_id", flat=True):
        invitations_revoke_for_inviter(
            inviter_id=holder_id,
            merchant=merchant,
            actor=actor,
            reason="the inviter's role was edited",
            request=request,
        )
    return role


@refusals_audited
@transaction.atomic
def role_delete(*, role: Role, actor, request=None) -> None:
    """Delete a custom role nobody holds, within the rules for editing it; refuse, naming its
    members, while it is in use."""
    merchant = role.merchant
    if role.is_default or merchant is None:
        raise Refused("Default roles cannot be deleted.", merchant=merchant)
    authorize(actor, MANAGE_CUSTOM_ROLES, merchant)
    lock_team(merchant)
    _refuse(refusal_to_change_role(actor, merchant, role), merchant)
    holders = list(
        Membership.objects.filter(role=role).select_related("user").order_by("user__email")
    )
    if holders:
        raise Refused(
            f"“{role.name}” is still held by {', '.join(m.user.email for m in holders)}. Give "
            "them another role first.",
            merchant=merchant,
        )
    if Invitation.objects.open().filter(role=role).exists():
        raise Refused(
            f"Open invitations offer “{role.name}”. Revoke them first.", merchant=merchant
        )
    name = role.name
    role.delete()
    audit_record(
        action=AuditEvent.Action.ROLE_DELETED,
        actor=actor,
        merchant=merchant,
        target=f"role {name}",
        request=request,
    )
