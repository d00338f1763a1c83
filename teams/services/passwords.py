"""A person's own password: changed while signed in, or reset through an emailed link.

Either way every other session of the account ends: Django keeps a hash of the password in
each session and signs out a session whose hash no longer matches. The page that changed it
keeps its own session (`update_session_auth_hash`, which also gives it a new key).
"""

from django.contrib.auth import password_validation
from django.db import transaction

from audit.models import AuditEvent
from audit.refusals import Refused, refusals_audited
from audit.services import audit_record
from teams.models import User


@refusals_audited
@transaction.atomic
def user_password_change(*, user: User, password: str, actor, request=None) -> User:
    """Set `user`'s new password, already validated, and audit it. Refuse (Refused) anyone
    but the user themselves: staff change other people's passwords in the admin."""
    if actor is None or not actor.is_authenticated or actor.pk != user.pk:
        raise Refused("Only the account's owner changes its password here.")
    user.set_password(password)
    user.save(update_fields=["password"])
    password_validation.password_changed(password, user)
    audit_record(
        action=AuditEvent.Action.PASSWORD_CHANGED,
        actor=actor,
        target=f"user {user.email}",
        request=request,
    )
    return user


@transaction.atomic
def user_password_reset(*, user: User, password: str, request=None) -> User:
    """Set `user`'s new password, already validated, from a password reset link and audit it.

    The caller has checked the link's token: whoever holds it reads the account's mailbox,
    so they act as the account's owner.
    """
    user.set_password(password)
    user.save(update_fields=["password"])
    password_validation.password_changed(password, user)
    audit_record(
        action=AuditEvent.Action.PASSWORD_RESET,
        actor=user,
        target=f"user {user.email}",
        details={"via": "emailed link"},
        request=request,
    )
    return user
