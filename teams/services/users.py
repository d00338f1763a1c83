"""Accounts changed by platform staff in the admin: audited, within what the actor holds.

Merchants' own people join through invitations (`invitations`); this is the helpdesk's and
the platform administrators' door to accounts (helpdesk agents, fixing a merchant user's
address). Who may grant what: only a superuser makes staff or superusers or changes groups and
direct permissions, so no staff member grants more than they hold.
"""

from django.db import transaction

from audit.models import AuditEvent
from audit.refusals import Refused, authorize, refusals_audited
from audit.services import audit_record
from teams.models import User
from teams.permissions import HELPDESK_ADD_USERS, HELPDESK_MANAGE_USERS

# Fields only a superuser may set: they decide what an account may do in the admin.
PRIVILEGE_FIELDS = frozenset({"is_staff", "is_superuser", "groups", "user_permissions"})
# Changed, but never written to the audit trail by value.
UNLOGGED_VALUES = frozenset({"password", "password1", "password2"})


@refusals_audited
@transaction.atomic
def user_save_by_staff(*, user: User, changed: list[str], actor, request=None) -> User:
    """Save `user` as edited in the admin (a new account when it has no id yet) and audit
    which fields changed. Refuse (Refused) a change of privileges by anyone but a
    superuser; nothing is saved then.

    Groups and direct permissions are saved by the caller after this (the admin's
    `save_related`), inside the same transaction.
    """
    creating = user.pk is None
    authorize(actor, HELPDESK_ADD_USERS if creating else HELPDESK_MANAGE_USERS)
    privileges = PRIVILEGE_FIELDS & set(changed)
    if privileges and not actor.is_superuser:
        raise Refused(
            "Only a superuser may change staff status, superuser status, groups or "
            f"permissions ({', '.join(sorted(privileges))})."
        )
    locks_self_out = not user.is_active or (actor.is_superuser and not user.is_superuser)
    if not creating and user.pk == actor.pk and locks_self_out:
        raise Refused("You cannot remove your own superuser status or deactivate yourself.")
    user.full_clean(exclude={"password"})
    user.save()
    audit_record(
        action=AuditEvent.Action.USER_CREATED if creating else AuditEvent.Action.USER_CHANGED,
        actor=actor,
        target=f"user {user.email}",
        details={
            "changed": sorted(
                "password" if field in UNLOGGED_VALUES else field for field in set(changed)
            )
        },
        request=request,
    )
    return user
