"""Reads of teams, roles and invitations, scoped to one merchant.

Objects are reached by id only through these functions: an id of another merchant's
member, role or invitation is a 404, never a 403 that would confirm it exists.
"""

import hashlib

from django.contrib.auth.models import Permission
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from teams.models import Invitation, InvitationCode, Membership, Role


def membership_list(*, merchant) -> QuerySet[Membership]:
    """Return the merchant's members with their user, role and merchant, by email."""
    return (
        Membership.objects.filter(merchant=merchant)
        .select_related("user", "role", "merchant")
        .order_by("user__email")
    )


def membership_list_for_user(*, user) -> QuerySet[Membership]:
    """Return the user's memberships with their merchant and role, merchants by name."""
    return (
        Membership.objects.filter(user=user)
        .select_related("merchant", "role")
        .order_by("merchant__name", "merchant__pk")
    )


def membership_get(*, merchant, pk) -> Membership:
    """Return membership `pk` of `merchant`, or raise Http404."""
    try:
        return Membership.objects.select_related("user", "role", "merchant").get(
            merchant=merchant, pk=pk
        )
    except (Membership.DoesNotExist, ValueError):
        raise Http404("No such member.") from None


def membership_get_own(*, user, merchant) -> Membership:
    """Return the user's own membership in `merchant`, or raise Http404."""
    try:
        return Membership.objects.select_related("role", "merchant", "user").get(
            user=user, merchant=merchant
        )
    except Membership.DoesNotExist:
        raise Http404("No such member.") from None


def invitation_list_open(*, merchant) -> QuerySet[Invitation]:
    """Return invitations neither accepted nor revoked (expired ones included, marked so)."""
    return (
        Invitation.objects.open()
        .filter(merchant=merchant)
        .select_related("role", "invited_by")
        .order_by("email")
    )


def invitation_get(*, merchant, pk) -> Invitation:
    """Return invitation `pk` of `merchant`, or raise Http404."""
    try:
        return Invitation.objects.select_related("role", "merchant").get(merchant=merchant, pk=pk)
    except (Invitation.DoesNotExist, ValueError):
        raise Http404("No such invitation.") from None


def token_hash(token: str) -> str:
    """Return what is stored of an invitation link's token: its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """Return the invitation whose link carries `token` (any state), or None."""
    return (
        Invitation.objects.select_related("merchant", "role", "invited_by")
        .filter(token_hash=token_hash(token))
        .first()
    )


def invitation_get_opened(*, pk, token_hash: str) -> Invitation | None:
    """Return invitation `pk` (any state) if `token_hash` is still its link's, or None.

    The invitation page finds the invitation this way from the session, where the link's
    token was exchanged: a link replaced by a resend stops working there too.
    """
    return (
        Invitation.objects.select_related("merchant", "role", "invited_by")
        .filter(pk=pk, token_hash=token_hash)
        .first()
    )


def invitation_code_current(*, invitation) -> InvitationCode | None:
    """Return the invitation's newest code if it can still be entered, or None."""
    code = (
        InvitationCode.objects.filter(invitation=invitation).order_by("-created_at", "-pk").first()
    )
    if (
        code is None
        or code.used_at
        or code.attempts >= InvitationCode.MAX_ATTEMPTS
        or code.expires_at <= timezone.now()
    ):
        return None
    return code


def role_list(*, merchant) -> QuerySet[Role]:
    """Return the default roles, then the merchant's custom roles, with permissions and the
    number of members holding each in this merchant."""
    return (
        Role.objects.available_to(merchant)
        .annotate(member_count=Count("memberships", filter=Q(memberships__merchant=merchant)))
        .prefetch_related(
            Prefetch(
                "permissions",
                queryset=Permission.objects.select_related("content_type").order_by("pk"),
            )
        )
        .order_by("merchant_id", "pk")
    )


def custom_role_get(*, merchant, pk) -> Role:
    """Return custom role `pk` of `merchant`, or raise Http404 (default roles included)."""
    try:
        return Role.objects.get(merchant=merchant, pk=pk)
    except (Role.DoesNotExist, ValueError):
        raise Http404("No such role.") from None
