"""Invitations: a single-use link by mail to join a merchant's team with a role.

The link's token is a secret kept nowhere: only its hash is stored, the mail goes out
directly (not through the outbox), and the page the link opens exchanges it at once for the
invitation in the session. A new account is made only with a one-time code mailed to the
invited address, so a forwarded link alone does not create one.
"""

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
from django.utils.crypto import constant_time_compare, salted_hmac

from audit.models import AuditEvent
from audit.refusals import Refused, authorize, refusals_audited
from audit.services import audit_record
from core.moments import moment_display
from merchants.models import Merchant
from teams.models import Invitation, InvitationCode, InvitationMail, Membership, Role
from teams.permissions import INVITE_MEMBERS
from teams.rules import refusal_to_grant, refusal_to_invite
from teams.selectors import token_hash
from teams.services.memberships import membership_create
from teams.services.refusals import refuse as _refuse
from teams.time_zones import time_zone_active, time_zone_for_addresses, time_zone_of

logger = logging.getLogger(__name__)

INVITATION_VALID_FOR = timedelta(days=10)
# The windows of the rate limits; the counts are settings.
MERCHANT_LIMIT_WINDOW = timedelta(hours=1)
ADDRESS_LIMIT_WINDOW = timedelta(days=1)
# The code that proves a new account's owner reads the invited mailbox.
CODE_DIGITS = 6
CODE_VALID_FOR = timedelta(minutes=15)
CODES_PER_INVITATION = 5

NO_LONGER_ACCEPTED = "This invitation can no longer be accepted."


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("teams:invitation", kwargs={"token": token})


def _send(invitation: Invitation, template: str, context: dict) -> bool:
    """Send one mail to the invited address now; return False if the server refused it."""
    context = {
        "invitation": invitation,
        "merchant": invitation.merchant,
        "inviter_email": invitation.invited_by.email if invitation.invited_by else "",
        "site_url": settings.SITE_URL,
        **context,
    }
    # In the invited person's zone if they have an account, else the inviter's: a guess, and
    # the zone is named next to every time.
    inviter_zone = time_zone_of(invitation.invited_by) if invitation.invited_by else ""
    with time_zone_active(time_zone_for_addresses([invitation.email], fallback=inviter_zone)):
        subject = " ".join(render_to_string(f"emails/{template}.subject.txt", context).split())
        body = render_to_string(f"emails/{template}.txt", context)
        body_html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=body, to=[invitation.email])
    message.attach_alternative(body_html, "text/html")
    try:
        message.send()
    except Exception as error:  # noqa: BLE001  the caller says what to do next
        logger.warning(
            "Mail %s for invitation %s failed: %s", template, invitation.pk, type(error).__name__
        )
        return False
    return True


def _send_invitation_mail(invitation: Invitation, token: str) -> None:
    """Send the invitation now (not through the outbox: the link is a secret kept nowhere)."""
    if _send(invitation, "invitation", {"url": invitation_url(token)}):
        Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())


def _issue_token(invitation: Invitation) -> str:
    token = secrets.token_urlsafe(32)
    invitation.token_hash = token_hash(token)
    return token


def _after(moment) -> str:
    """Return `moment` rounded up to the minute, as a person reads it ("3 Mar 2026, 14:05 UTC")."""
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment_display(moment)


def _refuse_over_limits(merchant, email: str) -> None:
    """Refuse another invitation mail from `merchant`, or to `email` from it, beyond the limits.

    Counted from the mails recorded in the database, so every web process agrees. The address
    limit counts this merchant's mails only: another tenant can neither use it up nor learn
    from it whom else that address was invited by.
    """
    # Serialises sending per merchant, so that two requests cannot both take the last mail.
    list(Merchant.objects.select_for_update().filter(pk=merchant.pk).values_list("pk"))
    now = timezone.now()
    sent = InvitationMail.objects.filter(invitation__merchant=merchant)
    limits = [
        (
            sent.filter(created_at__gt=now - MERCHANT_LIMIT_WINDOW),
            settings.INVITATIONS_PER_MERCHANT_PER_HOUR,
            MERCHANT_LIMIT_WINDOW,
            "{merchant} has sent {limit} invitation mails in the last hour, the most allowed",
        ),
        (
            sent.filter(created_at__gt=now - ADDRESS_LIMIT_WINDOW, invitation__email=email),
            settings.INVITATION_MAILS_PER_ADDRESS_PER_DAY,
            ADDRESS_LIMIT_WINDOW,
            "{email} has had {limit} invitation mails from {merchant} in the last 24 hours, the "
            "most allowed",
        ),
    ]
    for mails, limit, window, sentence in limits:
        times = list(mails.order_by("created_at").values_list("created_at", flat=True))
        if len(times) >= limit:
            # The moment enough of the counted mails have left the window.
            again = times[len(times) - limit] + window if limit > 0 else now + window
            raise Refused(
                sentence.format(merchant=merchant.name, email=email, limit=limit)
                + f"; you can send again after {_after(again)}.",
                merchant=merchant,
            )


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
    _refuse_over_limits(merchant, email)
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
    InvitationMail.objects.create(invitation=invitation, created_at=now)
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
    _refuse_over_limits(merchant, invitation.email)
    token = _issue_token(invitation)
    invitation.expires_at = timezone.now() + INVITATION_VALID_FOR
    invitation.save(update_fields=["token_hash", "expires_at"])
    InvitationMail.objects.create(invitation=invitation)
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
    """Withdraw an invitation the actor could send themselves: its link stops working at once."""
    merchant = invitation.merchant
    authorize(actor, INVITE_MEMBERS, merchant)
    _refuse(refusal_to_grant(actor, merchant, invitation.role), merchant)
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


def _lock_acceptable(invitation: Invitation) -> Invitation:
    """Return `invitation` locked and read again; refuse unless it can be accepted now."""
    locked = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("merchant", "role", "invited_by")
        .filter(pk=invitation.pk, token_hash=invitation.token_hash)
        .first()
    )
    if locked is None or locked.state != Invitation.State.PENDING:
        raise Refused(NO_LONGER_ACCEPTED, merchant=invitation.merchant)
    _refuse(refusal_to_invite(locked.invited_by, locked.merchant, locked.role), locked.merchant)
    return locked


@refusals_audited
@transaction.atomic
def invitation_accept(*, invitation: Invitation, user, request=None) -> Membership:
    """Make `user` a member through `invitation` (as opened from its link).

    The invitation must be pending, addressed to the user's email (a forwarded link does not
    let someone else join), and its inviter must still be a member who could give that role.
    """
    invitation = _lock_acceptable(invitation)
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


def _code_hash(invitation: Invitation, code: str) -> str:
    # Keyed by SECRET_KEY and the invitation: the stored hash of six digits cannot be
    # reversed by trying the million codes without the key.
    return salted_hmac(
        "teams.invitation_code", f"{invitation.pk}:{code}", algorithm="sha256"
    ).hexdigest()


def _refuse_existing_account(invitation: Invitation) -> None:
    if get_user_model().objects.filter(email__iexact=invitation.email).exists():
        raise Refused(
            "An account with this email exists: sign in to accept.", merchant=invitation.merchant
        )


@refusals_audited
@transaction.atomic
def invitation_code_send(*, invitation: Invitation, request=None) -> InvitationCode:
    """Mail a new one-time code to the invited address, for creating the account there.

    Earlier codes stop working. Only CODES_PER_INVITATION are sent per invitation, so a link
    in the wrong hands cannot flood the invited mailbox.
    """
    invitation = _lock_acceptable(invitation)
    _refuse_existing_account(invitation)
    if invitation.codes.count() >= CODES_PER_INVITATION:
        raise Refused(
            f"{CODES_PER_INVITATION} codes were already sent for this invitation. Ask the "
            "person who invited you to resend the invitation.",
            merchant=invitation.merchant,
        )
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    now = timezone.now()
    record = InvitationCode(invitation=invitation, created_at=now, expires_at=now + CODE_VALID_FOR)
    record.code_hash = _code_hash(invitation, code)
    record.save()
    minutes = int(CODE_VALID_FOR.total_seconds() // 60)
    transaction.on_commit(
        lambda: _send(invitation, "invitation_code", {"code": code, "minutes": minutes})
    )
    return record


def _code_problem(invitation: Invitation, code: str) -> str | None:
    """Check `code` against the invitation's newest code, counting a wrong attempt; return
    why it does not open the invitation, or None (and the code is used up)."""
    record = (
        InvitationCode.objects.select_for_update()
        .filter(invitation=invitation)
        .order_by("-created_at", "-pk")
        .first()
    )
    if record is None:
        return "Ask for a code first: it is mailed to the invited address."
    if record.used_at or record.expires_at <= timezone.now():
        return "This code has expired. Send a new code and enter the one in the newest mail."
    if record.attempts >= InvitationCode.MAX_ATTEMPTS:
        return "Too many wrong codes. Send a new code and enter the one in the newest mail."
    if not constant_time_compare(record.code_hash, _code_hash(invitation, code.strip())):
        record.attempts += 1
        record.save(update_fields=["attempts"])
        left = InvitationCode.MAX_ATTEMPTS - record.attempts
        if not left:
            return "That code is not right, and it was the last try. Send a new code."
        return (
            "That code is not right. Enter the 6 digits from the newest mail "
            f"({left} {'try' if left == 1 else 'tries'} left)."
        )
    record.used_at = timezone.now()
    record.save(update_fields=["used_at"])
    return None


@refusals_audited
def user_create_from_invitation(
    *, invitation: Invitation, code: str, full_name: str, password: str, request=None
):
    """Create the invited person's account (email from the invitation) and accept it, if
    `code` is the one just mailed to that address."""
    with transaction.atomic():
        invitation = _lock_acceptable(invitation)
        _refuse_existing_account(invitation)
        problem = _code_problem(invitation, code)
        if problem is None:
            user = get_user_model().objects.create_user(
                invitation.email, password, full_name=full_name
            )
            invitation_accept(invitation=invitation, user=user, request=request)
            return user
    # Refused outside the transaction, so the wrong attempt stays counted.
    raise Refused(problem, merchant=invitation.merchant)
