"""Writes of users, roles, memberships and invitations, and the audit trail they leave.

Every service takes the acting user, checks the team rules in teams/permissions.py (the
server decides, whatever the page showed), runs in a transaction and writes an audit event.
"""

import functools
import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from credentials.stripe_keys import SECRET_IN_TEXT
from teams.models import AuditEvent, Invitation, Membership, Role
from teams.permissions import (
    INVITE_MEMBERS,
    MANAGE_CUSTOM_ROLES,
    MANAGE_MEMBER_ROLES,
    OWNER,
    permission_objects,
    refusal_to_define_role,
    refusal_to_grant,
    refusal_to_manage_member,
    role_permission_names,
)

logger = logging.getLogger(__name__)

INVITATION_VALID_FOR = timedelta(days=10)


class TeamRuleViolation(ValidationError):
    """An action the team rules forbid; the message says why, for the person who tried."""


def _refuse(message: str | None) -> None:
    if message:
        raise TeamRuleViolation(message)


def require_permission(actor, perm: str, merchant) -> None:
    """Refuse (TeamRuleViolation) unless `actor`'s role in `merchant` grants `perm`."""
    if not actor.has_perm(perm, merchant):
        raise TeamRuleViolation("Your role in this merchant does not allow this.")


# Audit ---------------------------------------------------------------------------------


def client_ip(request) -> str | None:
    """Return the address the request came from (REMOTE_ADDR; a proxy must set it)."""
    return request.META.get("REMOTE_ADDR") if request is not None else None


def audit_record(
    *,
    action: str,
    actor=None,
    merchant=None,
    merchant_id=None,
    target: str = "",
    details: dict | None = None,
    request=None,
    actor_email: str = "",
) -> AuditEvent:
    """Append an audit event. Refuse (ValueError) details or a target shaped like a secret."""
    details = details or {}
    if SECRET_IN_TEXT.search(f"{target} {details}"):
        raise ValueError("An audit event must never contain a secret; pass its hint instead.")
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        action=action,
        actor=actor if authenticated else None,
        actor_email=(actor.email if authenticated else actor_email)[:254],
        merchant_id=merchant.pk if merchant is not None else merchant_id,
        target=target[:255],
        details=details,
        ip=client_ip(request),
    )


def audits_refusals(merchant_of):
    """Decorate a service so that a refusal by the team rules is audited as action_refused.

    The event is written outside the service's own transaction (which the refusal rolls
    back), so every refused attempt is kept, whichever page or command made it.
    `merchant_of(kwargs)` names the merchant from the service's keyword arguments.
    """

    def decorate(service):
        @functools.wraps(service)
        def wrapper(**kwargs):
            try:
                return service(**kwargs)
            except TeamRuleViolation as refusal:
                request = kwargs.get("request")
                audit_record(
                    action=AuditEvent.Action.ACTION_REFUSED,
                    actor=kwargs.get("actor", kwargs.get("user")),
                    merchant=merchant_of(kwargs),
                    target=f"{request.method} {request.path}" if request else service.__name__,
                    details={"reason": refusal.message},
                    request=request,
                )
                raise

        return wrapper

    return decorate


def _member_target(membership) -> str:
    return f"member {membership.user.email}"


# Memberships ---------------------------------------------------------------------------


@transaction.atomic
def membership_create(*, user, merchant, role: Role, actor) -> Membership:
    """Add `user` to `merchant`'s team with `role` (a default role or one of its own)."""
    membership = Membership(user=user, merchant=merchant, role=role)
    membership.full_clean()
    membership.save()
    return membership


def _lock_team(merchant) -> None:
    # Serialises changes to one team, so that "is this the last Owner?" stays true until the
    # change is written.
    list(Membership.objects.select_for_update().filter(merchant=merchant).values_list("pk"))


def _owner_count(merchant) -> int:
    return Membership.objects.filter(
        merchant=merchant, role__merchant__isnull=True, role__slug=OWNER
    ).count()


def _refuse_last_owner(membership, verb: str) -> None:
    if membership.role.is_owner and _owner_count(membership.merchant) <= 1:
        raise TeamRuleViolation(
            f"{membership.user.email} is the last Owner of {membership.merchant.name} and "
            f"cannot {verb}: make someone else an Owner first."
        )


@audits_refusals(lambda kw: kw["membership"].merchant)
@transaction.atomic
def membership_change_role(*, membership: Membership, role: Role, actor, request=None):
    """Give `membership` another role, within the team rules."""
    merchant = membership.merchant
    require_permission(actor, MANAGE_MEMBER_ROLES, merchant)
    _lock_team(merchant)
    membership = Membership.objects.select_related("user", "role", "merchant").get(pk=membership.pk)
    _refuse(refusal_to_manage_member(actor, membership))
    _refuse(refusal_to_grant(actor, merchant, role))
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
    return membership


@audits_refusals(lambda kw: kw["membership"].merchant)
@transaction.atomic
def membership_remove(*, membership: Membership, actor, request=None) -> None:
    """Remove another member from the team, within the team rules."""
    merchant = membership.merchant
    require_permission(actor, MANAGE_MEMBER_ROLES, merchant)
    _lock_team(merchant)
    membership = Membership.objects.select_related("user", "role", "merchant").get(pk=membership.pk)
    _refuse(refusal_to_manage_member(actor, membership))
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


@audits_refusals(lambda kw: kw["membership"].merchant)
@transaction.atomic
def membership_leave(*, membership: Membership, actor, request=None) -> None:
    """Let a member leave a merchant; the last Owner cannot."""
    if membership.user_id != actor.pk:
        raise TeamRuleViolation("Only the member can leave; managers remove members instead.")
    _lock_team(membership.merchant)
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


# Custom roles --------------------------------------------------------------------------


def _clean_role_name(merchant, name: str, *, exclude_pk=None) -> str:
    name = " ".join(name.split())
    if not name:
        raise TeamRuleViolation("Give the role a name.")
    if len(name) > 64:
        raise TeamRuleViolation(f"Keep the name to 64 characters (it has {len(name)}).")
    if Role.objects.defaults().filter(name__iexact=name).exists():
        raise TeamRuleViolation(
            f"“{name}” is the name of a default role; choose another name for a custom role."
        )
    clash = Role.objects.filter(merchant=merchant, name__iexact=name).exclude(pk=exclude_pk)
    if clash.exists():
        raise TeamRuleViolation(f"{merchant.name} already has a role called “{name}”.")
    return name


@audits_refusals(lambda kw: kw["merchant"])
@transaction.atomic
def role_create(*, merchant, name: str, description: str, permissions, actor, request=None):
    """Create a custom role of `merchant` with `permissions` (`app_label.codename` strings)."""
    require_permission(actor, MANAGE_CUSTOM_ROLES, merchant)
    perms = frozenset(permissions)
    _refuse(refusal_to_define_role(actor, merchant, perms))
    role = Role(merchant=merchant, name=_clean_role_name(merchant, name), description=description)
    role.full_clean()
    try:
        with transaction.atomic():
            role.save()
    except IntegrityError:
        raise TeamRuleViolation(
            f"{merchant.name} already has a role called “{role.name}”."
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


@audits_refusals(lambda kw: kw["role"].merchant)
@transaction.atomic
def role_update(*, role: Role, name: str, description: str, permissions, actor, request=None):
    """Change a custom role's name, description and permissions. Default roles never change."""
    merchant = role.merchant
    if role.is_default or merchant is None:
        raise TeamRuleViolation("Default roles cannot be changed.")
    require_permission(actor, MANAGE_CUSTOM_ROLES, merchant)
    _lock_team(merchant)
    perms = frozenset(permissions)
    _refuse(refusal_to_define_role(actor, merchant, perms, role=role))
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
    return role


@audits_refusals(lambda kw: kw["role"].merchant)
@transaction.atomic
def role_delete(*, role: Role, actor, request=None) -> None:
    """Delete a custom role nobody holds; refuse, naming its members, while it is in use."""
    merchant = role.merchant
    if role.is_default or merchant is None:
        raise TeamRuleViolation("Default roles cannot be deleted.")
    require_permission(actor, MANAGE_CUSTOM_ROLES, merchant)
    _lock_team(merchant)
    holders = list(
        Membership.objects.filter(role=role).select_related("user").order_by("user__email")
    )
    if holders:
        raise TeamRuleViolation(
            f"“{role.name}” is still held by {', '.join(m.user.email for m in holders)}. Give "
            "them another role first."
        )
    if Invitation.objects.open().filter(role=role).exists():
        raise TeamRuleViolation(f"Open invitations offer “{role.name}”. Revoke them first.")
    name = role.name
    role.delete()
    audit_record(
        action=AuditEvent.Action.ROLE_DELETED,
        actor=actor,
        merchant=merchant,
        target=f"role {name}",
        request=request,
    )


# Invitations ---------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("teams:invitation", kwargs={"token": token})


def _send_invitation_mail(invitation: Invitation, token: str) -> None:
    """Send the invitation now (not through the outbox: the link is a secret kept nowhere)."""
    context = {
        "invitation": invitation,
        "merchant": invitation.merchant,
        "url": invitation_url(token),
        "site_url": settings.SITE_URL,
    }
    subject = " ".join(render_to_string("emails/invitation.subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(render_to_string("emails/invitation.html", context), "text/html")
    try:
        message.send()
    except Exception as error:  # noqa: BLE001  the invitation stands; the page offers Resend
        logger.warning("Invitation mail %s failed: %s", invitation.pk, type(error).__name__)
        return
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())


def _issue_token(invitation: Invitation) -> str:
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _token_hash(token)
    return token


@audits_refusals(lambda kw: kw["merchant"])
@transaction.atomic
def invitation_create(*, merchant, email: str, role: Role, actor, request=None) -> Invitation:
    """Invite `email` to join `merchant` with `role`; the mail goes out after commit."""
    require_permission(actor, INVITE_MEMBERS, merchant)
    _refuse(refusal_to_grant(actor, merchant, role))
    email = get_user_model().objects.normalize_email(email.strip()).lower()
    if Membership.objects.filter(merchant=merchant, user__email__iexact=email).exists():
        raise TeamRuleViolation(f"{email} is already a member of {merchant.name}.")
    open_invitation = Invitation.objects.open().filter(merchant=merchant, email__iexact=email)
    if open_invitation.filter(expires_at__gt=timezone.now()).exists():
        raise TeamRuleViolation(
            f"{email} already has a pending invitation. Resend it from the team page if the "
            "mail was lost."
        )
    # An expired, unused invitation is replaced by the new one.
    open_invitation.update(revoked_at=timezone.now())
    now = timezone.now()
    invitation = Invitation(
        merchant=merchant,
        email=email,
        role=role,
        invited_by=actor,
        created_at=now,
        expires_at=now + INVITATION_VALID_FOR,
    )
    token = _issue_token(invitation)
    invitation.full_clean(exclude={"token_hash"})
    invitation.save()
    audit_record(
        action=AuditEvent.Action.INVITATION_SENT,
        actor=actor,
        merchant=merchant,
        target=f"invitation {email}",
        details={"role": role.name},
        request=request,
    )
    transaction.on_commit(lambda: _send_invitation_mail(invitation, token))
    return invitation


@audits_refusals(lambda kw: kw["invitation"].merchant)
@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor, request=None) -> Invitation:
    """Send a pending or expired invitation again, with a new link valid for another 10 days.

    The previous link stops working: only the newest mail opens the invitation.
    """
    merchant = invitation.merchant
    require_permission(actor, INVITE_MEMBERS, merchant)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at or invitation.revoked_at:
        raise TeamRuleViolation("This invitation was already used or revoked.")
    _refuse(refusal_to_grant(actor, merchant, invitation.role))
    token = _issue_token(invitation)
    invitation.expires_at = timezone.now() + INVITATION_VALID_FOR
    invitation.save(update_fields=["token_hash", "expires_at"])
    audit_record(
        action=AuditEvent.Action.INVITATION_RESENT,
        actor=actor,
        merchant=merchant,
        target=f"invitation {invitation.email}",
        request=request,
    )
    transaction.on_commit(lambda: _send_invitation_mail(invitation, token))
    return invitation


@audits_refusals(lambda kw: kw["invitation"].merchant)
@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor, request=None) -> None:
    """Withdraw an invitation: its link stops working at once."""
    merchant = invitation.merchant
    require_permission(actor, INVITE_MEMBERS, merchant)
    updated = Invitation.objects.open().filter(pk=invitation.pk).update(revoked_at=timezone.now())
    if not updated:
        raise TeamRuleViolation("This invitation was already used or revoked.")
    audit_record(
        action=AuditEvent.Action.INVITATION_REVOKED,
        actor=actor,
        merchant=merchant,
        target=f"invitation {invitation.email}",
        request=request,
    )


def _merchant_of_token(kwargs):
    invitation = invitation_for_token(kwargs["token"])
    return invitation.merchant if invitation else None


def invitation_for_token(token: str) -> Invitation | None:
    """Return the invitation whose link carries `token` (any state), or None."""
    return (
        Invitation.objects.select_related("merchant", "role", "invited_by")
        .filter(token_hash=_token_hash(token))
        .first()
    )


@audits_refusals(_merchant_of_token)
@transaction.atomic
def invitation_accept(*, token: str, user, request=None) -> Membership:
    """Make `user` a member through the invitation whose link carries `token`.

    The invitation must be pending and addressed to the user's email: a forwarded link does
    not let someone else join.
    """
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("merchant", "role")
        .filter(token_hash=_token_hash(token))
        .first()
    )
    if invitation is None or invitation.state != Invitation.State.PENDING:
        raise TeamRuleViolation("This invitation can no longer be accepted.")
    if invitation.email.lower() != user.email.lower():
        raise TeamRuleViolation(
            f"This invitation is for {invitation.email}; you are signed in as {user.email}."
        )
    membership = Membership.objects.filter(user=user, merchant=invitation.merchant).first()
    if membership is None:
        membership = membership_create(
            user=user, merchant=invitation.merchant, role=invitation.role, actor=user
        )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        action=AuditEvent.Action.INVITATION_ACCEPTED,
        actor=user,
        merchant=invitation.merchant,
        target=f"invitation {invitation.email}",
        details={"role": invitation.role.name},
        request=request,
    )
    return membership


@audits_refusals(_merchant_of_token)
@transaction.atomic
def user_create_from_invitation(*, token: str, full_name: str, password: str, request=None):
    """Create the invited person's account (email from the invitation) and accept it."""
    invitation = invitation_for_token(token)
    if invitation is None or invitation.state != Invitation.State.PENDING:
        raise TeamRuleViolation("This invitation can no longer be accepted.")
    User = get_user_model()
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise TeamRuleViolation("An account with this email exists: sign in to accept.")
    user = User.objects.create_user(invitation.email, password, full_name=full_name)
    invitation_accept(token=token, user=user, request=request)
    return user
