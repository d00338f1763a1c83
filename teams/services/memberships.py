"""Memberships: who belongs to a merchant's team, with which role; and new merchants with
their first Owner."""

from django.db import transaction

from audit.models import AuditEvent
from audit.refusals import Refused, authorize, refusals_audited
from audit.services import audit_record
from merchants.models import Merchant
from merchants.services import merchant_create
from teams.models import Membership, Role
from teams.permissions import MANAGE_MEMBER_ROLES, OWNER
from teams.rules import is_last_owner, refusal_to_grant, refusal_to_manage_member
from teams.services.inviter_changes import invitations_revoke_for_inviter
from teams.services.refusals import refuse as _refuse


def _member_target(membership) -> str:
    return f"member {membership.user.email}"


@transaction.atomic
def membership_create(*, user, merchant, role: Role) -> Membership:
    """Add `user` to `merchant`'s team with `role` (a default role or one of its own).

    Not a person's action on its own: called by the services that decide it (accepting an
    invitation, creating a merchant with its Owner), which authorize and audit.
    """
    membership = Membership(user=user, merchant=merchant, role=role)
    membership.full_clean()
    membership.save()
    return membership


@refusals_audited
@transaction.atomic
def merchant_create_with_owner(*, name: str, owner, actor, request=None, **profile) -> Merchant:
    """Create a merchant (`merchants.services.merchant_create`) with `owner` as its first
    Owner."""
    merchant = merchant_create(
        name=name, actor=actor, request=request, first_owner_email=owner.email, **profile
    )
    membership_create(user=owner, merchant=merchant, role=Role.objects.defaults().get(slug=OWNER))
    return merchant


def lock_team(merchant) -> None:
    """Lock the merchant's team until the transaction ends."""
    # Serialises changes to one team, so that "is this the last Owner?" stays true until the
    # change is written.
    list(Membership.objects.select_for_update().filter(merchant=merchant).values_list("pk"))


def _refuse_last_owner(membership, verb: str) -> None:
    if is_last_owner(membership):
        raise Refused(
            f"{membership.user.email} is the last Owner of {membership.merchant.name} and "
            f"cannot {verb}: make someone else an Owner first.",
            merchant=membership.merchant,
        )


@refusals_audited
@transaction.atomic
def membership_change_role(*, membership: Membership, role: Role, actor, request=None):
    """Give `membership` another role, within the team rules; the member's open invitations
    that the new role could not send are revoked."""
    merchant = membership.merchant
    authorize(actor, MANAGE_MEMBER_ROLES, merchant)
    lock_team(merchant)
    membership = Membership.objects.select_related("user", "role", "merchant").get(pk=membership.pk)
    _refuse(refusal_to_manage_member(actor, membership), merchant)
    _refuse(refusal_to_grant(actor, merchant, role), merchant)
    if membership.role_id == role.pk:
        return membership
    if not role.is_owner:
        _refuse_last_owner(membership, "be given another role")
    previous = membership.role
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    audit_record(
        action=AuditEvent.Action.MEMBER_ROLE_CHANGED,
        actor=actor,
        merchant=merchant,
        target=_member_target(membership),
        details={"from": previous.name, "to": role.name},
        request=request,
    )
    invitations_revoke_for_inviter(
        inviter_id=membership.user_id,
        merchant=merchant,
        actor=actor,
        reason="the inviter's role changed",
        request=request,
    )
    return membership


@refusals_audited
@transaction.atomic
def membership_remove(*, membership: Membership, actor, request=None) -> None:
    """Remove another member from the team, within the team rules; the invitations they sent
    that are still open are revoked."""
    merchant = membership.merchant
    authorize(actor, MANAGE_MEMBER_ROLES, merchant)
    lock_team(merchant)
    membership = Membership.objects.select_related("user", "role", "merchant").get(pk=membership.pk)
    _refuse(refusal_to_manage_member(actor, membership), merchant)
    _refuse_last_owner(membership, "be removed")
    target = _member_target(membership)
    role_name = membership.role.name
    membership.delete()
    audit_record(
        action=AuditEvent.Action.MEMBER_REMOVED,
        actor=actor,
        merchant=merchant,
        target=target,
        details={"role": role_name},
        request=request,
    )
    invitations_revoke_for_inviter(
        inviter_id=membership.user_id,
        merchant=merchant,
        actor=actor,
        reason="the inviter was removed",
        request=request,
    )


@refusals_audited
@transaction.atomic
def membership_leave(*, membership: Membership, actor, request=None) -> None:
    """Let a member leave a merchant (the last Owner cannot); the invitations they sent that
    are still open are revoked."""
    if membership.user_id != actor.pk:
        raise Refused(
            "Only the member can leave; managers remove members instead.",
            merchant=membership.merchant,
        )
    lock_team(membership.merchant)
    membership = Membership.objects.select_related("user", "role", "merchant").get(pk=membership.pk)
    _refuse_last_owner(membership, "leave")
    merchant = membership.merchant
    role_name = membership.role.name
    membership.delete()
    audit_record(
        action=AuditEvent.Action.MEMBER_LEFT,
        actor=actor,
        merchant=merchant,
        target=_member_target(membership),
        details={"role": role_name},
        request=request,
    )
    invitations_revoke_for_inviter(
        inviter_id=actor.pk,
        merchant=merchant,
        actor=actor,
        reason="the inviter left",
        request=request,
    )
