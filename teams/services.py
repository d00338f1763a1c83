"""Writes of users and memberships."""

from django.db import transaction

from teams.models import Membership, Role


@transaction.atomic
def membership_create(*, user, merchant, role: Role, actor) -> Membership:
    """Add `user` to `merchant`'s team with `role`.

    The role must be a default role or one of this merchant's own custom roles.
    """
    if role.merchant_id not in (None, merchant.pk):
        raise ValueError("A custom role of another merchant cannot be given here.")
    membership = Membership(user=user, merchant=merchant, role=role)
    membership.full_clean()
    membership.save()
    return membership
