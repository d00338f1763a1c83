"""Invitations: a single-use link by mail to join a merchant's team with a role."""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.refusals import Refused, authorize, refusals_audited
from audit.services import audit_record
from teams.models import Invitation, Membership, Role
from teams.permissions import INVITE_MEMBERS
from teams.rules import refusal_to_grant
from teams.selectors import invitation_get_by_token, token_hash
from teams.services.memberships import membership_create
from teams.services.refusals import refuse as _refuse

logger = logging.getLogger(__name__)

INVITATION_VALID_FOR = timedelta(days=10)


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
    invitation.token_hash = token_hash(token)
    return token


@refusals_audited
@transaction.atomic
def invitation_create(*, merchant, email: str, role: Role, actor, request=None) -> Invitation:
    """Invite `email` to join `merchant` with `role`; the mail goes out after commit."""
    authorize(actor, INVITE_MEMBERS, merchant)
    _refuse(refusal_to_grant(actor, merchant, role), merchant)
    email = get_user_model().objects.normalize_email(email.strip()).lower()
    if Membership.objects.filter(merchant=merchant, user__email__iexact=email).exists():
        raise Refused(f"{email} is already a member of {merchant.name}.", merchant=merchant)
    open_invitation = Invitation.objects.open().filter(merchant=merchant, email__iexact=email)
    if open_invitation.filter(expires_at__gt=timezone.now()).exists():
        raise Refused(
            f"{email} already has a pending invitation. Resend it from the team page if the "
            "mail was lost.",
            merchant=merchant,
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


@refusals_audited
@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor, request=None) -> Invitation:
    """Send a pending or expired invitation again, with a new link valid for another 10 days.

    The previous link stops working: only the newest mail opens the invitation.
    """
    merchant = invitation.merchant
    authorize(actor, INVITE_MEMBERS, merchant)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at or invitation.revoked_at:
        raise Refused("This invitation was already used or revoked.", merchant=merchant)
    _refuse(refusal_to_grant(actor, merchant, invitation.role), merchant)
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


@refusals_audited
@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor, request=None) -> None:
    """Withdraw an invitation: its link stops working at once."""
    merchant = invitation.merchant
    authorize(actor, INVITE_MEMBERS, merchant)
    updated = Invitation.objects.open().filter(pk=invitation.pk).update(revoked_at=timezone.now())
    if not updated:
        raise Refused("This invitation was already used or revoked.", merchant=merchant)
    audit_record(
        action=AuditEvent.Action.INVITATION_REVOKED,
        actor=actor,
        merchant=merchant,
        target=f"invitation {invitation.email}",
        request=request,
    )


@refusals_audited
@transaction.atomic
def invitation_accept(*, token: str, user, request=None) -> Membership:
    """Make `user` a member through the invitation whose link carries `token`.

    The invitation must be pending and addressed to the user's email: a forwarded link does
    not let someone else join.
    """
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("merchant", "role")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if invitation is None or invitation.state != Invitation.State.PENDING:
        raise Refused(
            "This invitation can no longer be accepted.",
            merchant=invitation.merchant if invitation else None,
        )
    if invitation.email.lower() != user.email.lower():
        raise Refused(
            f"This invitation is for {invitation.email}; you are signed in as {user.email}.",
            merchant=invitation.merchant,
        )
    membership = Membership.objects.filter(user=user, merchant=invitation.merchant).first()
    if membership is None:
        membership = membership_create(
            user=user, merchant=invitation.merchant, role=invitation.role
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


@refusals_audited
@transaction.atomic
def user_create_from_invitation(*, token: str, full_name: str, password: str, request=None):
    """Create the invited person's account (email from the invitation) and accept it."""
    invitation = invitation_get_by_token(token=token)
    if invitation is None or invitation.state != Invitation.State.PENDING:
        raise Refused(
            "This invitation can no longer be accepted.",
            merchant=invitation.merchant if invitation else None,
        )
    User = get_user_model()
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise Refused(
            "An account with this email exists: sign in to accept.", merchant=invitation.merchant
        )
    user = User.objects.create_user(invitation.email, password, full_name=full_name)
    invitation_accept(token=token, user=user, request=request)
    return user
