"""Reads of merchant data, always scoped to the acting member."""

from django.db.models import QuerySet
from django.http import Http404

from merchants.models import Merchant
from teams.models import Membership


def memberships_for_user(*, user) -> QuerySet[Membership]:
    """Return the user's memberships with their merchant and role, merchants by name."""
    return (
        Membership.objects.filter(user=user)
        .select_related("merchant", "role")
        .order_by("merchant__name", "merchant__pk")
    )


def merchant_get_for_member(*, user, slug: str) -> Merchant:
    """Return the merchant `slug` if `user` is one of its members.

    Raise Http404 otherwise, whether the merchant does not exist or belongs to others: a 403
    would confirm that another tenant exists.
    """
    if not user.is_authenticated:
        raise Http404("No such merchant.")
    try:
        return Merchant.objects.get(slug=slug, memberships__user=user)
    except Merchant.DoesNotExist:
        raise Http404("No such merchant.") from None
