"""Writes of merchant data."""

from django.db import transaction
from django.utils.text import slugify

from merchants.models import Merchant
from teams.models import Role
from teams.permissions import OWNER
from teams.services import membership_create


@transaction.atomic
def merchant_create(
    *,
    name: str,
    owner,
    actor,
    slug: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    website: str = "",
    country: str = "",
    requested_integrations: list[str] | None = None,
) -> Merchant:
    """Create a merchant with `owner` as its first Owner."""
    merchant = Merchant(
        name=name,
        slug=slug or slugify(name),
        contact_email=contact_email,
        contact_phone=contact_phone,
        website=website,
        country=country,
        requested_integrations=list(requested_integrations or []),
    )
    merchant.full_clean()
    merchant.save()
    membership_create(
        user=owner, merchant=merchant, role=Role.objects.defaults().get(slug=OWNER), actor=actor
    )
    return merchant
