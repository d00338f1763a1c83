"""What happens to a member's open invitations when their place in the team changes.

An invitation is only as good as its inviter's right to give that role: when the inviter is
removed, leaves, or loses the permission (their role changed, their custom role edited), the
invitations they could no longer send are revoked at once. Called by the membership and role
services, which authorize and audit the change itself.
"""

from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from teams.models import Invitation
from teams.rules import refusal_to_invite


def invitations_revoke_for_inviter(*, inviter_id, merchant, actor, reason: str, request=None):
    """Revoke the open invitations `inviter_id` sent in `merchant` that they could no longer
    send now; audit each one. Return how many were revoked."""
    invitations = list(
        Invitation.objects.open()
        .select_for_update(of=("self",))
        .filter(merchant=merchant, invited_by_id=inviter_id)
        .select_related("role")
    )
    if not invitations:
        return 0
    # Loaded again: a user object caches its permission answers, and these must be the new ones.
    inviter = get_user_model().objects.filter(pk=inviter_id).first()
    stale = [
        invitation
        for invitation in invitations
        if refusal_to_invite(inviter, merchant, invitation.role) is not None
    ]
    Invitation.objects.filter(pk__in=[invitation.pk for invitation in stale]).update(
        revoked_at=timezone.now()
    )
    for invitation in stale:
        audit_record(
            action=AuditEvent.Action.INVITATION_REVOKED,
            actor=actor,
            merchant=merchant,
            target=f"invitation {invitation.email}",
            details={"role": invitation.role.name, "reason": reason},
            request=request,
        )
    return len(stale)
