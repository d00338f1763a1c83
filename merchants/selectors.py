"""Reads of merchants, always scoped to the acting member.

Membership is asked through the relation's name (`memberships__user`), so this app needs
nothing from teams, which sits above it.
"""

from django.db.models import F, QuerySet
from django.http import Http404

from merchants.models import Merchant


def merchant_list_for_member(*, user) -> QuerySet[Merchant]:
    """Return the merchants `user` belongs to, by name, each with `role_name`: their role."""
    return (
        Merchant.objects.filter(memberships__user=user)
        .annotate(role_name=F("memberships__role__name"))
        .order_by("name", "pk")
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
    except (Merchant.DoesNotExist, ValueError):
        raise Http404("No such merchant.") from None


def merchant_get_by_slug(*, slug: str) -> Merchant | None:
    """Return the merchant `slug` whoever asks, or None: only to say whose audit trail records
    a refused attempt, never to show it."""
    return Merchant.objects.filter(slug=slug).first()
