"""Writes of merchant data, and opening a merchant for one of its members."""

from django.db import transaction
from django.http import Http404
from django.utils.text import slugify

from audit.models import AuditEvent
from audit.refusals import Refused, authorize, refusals_audited
from audit.services import audit_record
from core.validators import refuse_secret_text
from merchants.models import Merchant
from merchants.permissions import (
    EDIT_MERCHANT_PROFILE,
    HELPDESK_ADD_MERCHANTS,
    HELPDESK_EDIT_MERCHANTS,
)
from merchants.selectors import merchant_get_by_slug, merchant_get_for_member

PROFILE_FIELDS = ("contact_email", "contact_phone", "website", "country", "requested_integrations")
# What the helpdesk may change besides the profile: merchants change neither.
STAFF_FIELDS = ("name",)


@refusals_audited
def merchant_open(*, actor, slug: str, permission: str, request=None) -> Merchant:
    """Return the merchant `slug` for a page that needs `permission` there.

    Refuse (Refused) a member without the permission, and a non-member with `hidden` set, so
    the page answers 404 as for a merchant that does not exist. Both refusals are audited in
    that merchant's trail. A slug that names no merchant is a plain 404 (Http404): there is no
    trail to record it in.
    """
    try:
        merchant = merchant_get_for_member(user=actor, slug=slug)
    except Http404:  # not a member, or no such merchant: the same answer
        probed = merchant_get_by_slug(slug=slug)
        if probed is None:
            raise
        raise Refused(
            "Not a member of this merchant.",
            merchant=probed,
            permission=permission,
            hidden=True,
            action=AuditEvent.Action.ACCESS_DENIED,
        ) from None
    authorize(actor, permission, merchant)
    return merchant


@refusals_audited
@transaction.atomic
def merchant_create(
    *,
    name: str,
    actor,
    slug: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    website: str = "",
    country: str = "",
    requested_integrations: list[str] | None = None,
    first_owner_email: str = "",
    request=None,
) -> Merchant:
    """Create a merchant (the helpdesk, or the system for demo data). Its first Owner is
    added by `teams.services.merchant_create_with_owner`."""
    authorize(actor, HELPDESK_ADD_MERCHANTS)
    refuse_secret_text(name, slug, contact_email, contact_phone, website, country)
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
    audit_record(
        action=AuditEvent.Action.MERCHANT_CREATED,
        actor=actor,
        merchant=merchant,
        target=f"merchant {merchant.slug}",
        details={"first_owner": first_owner_email} if first_owner_email else {},
        request=request,
    )
    return merchant


@refusals_audited
@transaction.atomic
def merchant_update_profile(*, merchant: Merchant, actor, request=None, **changes) -> Merchant:
    """Change the merchant's contact details and requested integrations; the helpdesk may
    also rename it. Nothing is saved when a value is invalid (ValidationError)."""
    by = authorize(actor, EDIT_MERCHANT_PROFILE, merchant, staff_permission=HELPDESK_EDIT_MERCHANTS)
    refuse_secret_text(*map(str, changes.values()))
    editable = PROFILE_FIELDS + (STAFF_FIELDS if by == "staff" else ())
    unknown = set(changes) - set(editable)
    if unknown:
        raise Refused(
            f"These fields cannot be changed here: {', '.join(sorted(unknown))}.",
            merchant=merchant,
        )
    merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
    changed = {}
    for field, value in changes.items():
        # As stored (the country's code rather than its Country object), for the audit trail.
        current = Merchant._meta.get_field(field).get_prep_value(getattr(merchant, field))
        if current != value:
            changed[field] = {"from": current, "to": value}
            setattr(merchant, field, value)
    if not changed:
        return merchant
    merchant.full_clean()
    merchant.save(update_fields=list(changed))
    audit_record(
        action=AuditEvent.Action.MERCHANT_PROFILE_CHANGED,
        actor=actor,
        merchant=merchant,
        target="profile",
        details=changed,
        request=request,
    )
    return merchant
