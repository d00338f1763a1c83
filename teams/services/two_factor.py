"""Two-factor sign-in: setting up and removing one's own TOTP device, a team's requirement,
and the demo's devices.

Setting up and removing a device is a person acting on their own account: no merchant
permission is involved, so these do not ask `authorize()`; the rules they keep (staff always
sign in with a code, a team's requirement) refuse with `Refused`, audited once.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from audit.refusals import Refused, authorize, refusals_audited
from audit.services import audit_record
from merchants.models import Merchant
from teams import two_factor
from teams.permissions import EDIT_MERCHANT_PROFILE, HELPDESK_MANAGE_USERS
from teams.rules import is_owner

DEVICE_NAME = "Authenticator app"


def _audit_device(*, action: str, actor, user, request) -> None:
    audit_record(
        action=AuditEvent.Action.USER_CHANGED,
        actor=actor,
        target=f"user {user.email}",
        details={"changed": ["two_factor"], "two_factor": action},
        request=request,
    )


def _merchants_requiring(user):
    return Merchant.objects.filter(memberships__user=user, require_two_factor=True).order_by("name")


@refusals_audited
@transaction.atomic
def two_factor_enrolment_start(*, actor) -> TOTPDevice:
    """Return the TOTP device `actor` is setting up, with a new random key the first time.

    The same device (and key) comes back until its first code confirms it, so a page shown
    twice shows the same QR code. Refuse (Refused) an account that already has a device: it
    removes that one first, with a code from it.
    """
    if two_factor.has_device(actor):
        raise Refused("Your account already has an authenticator app set up.")
    pending = two_factor.device_pending(actor)
    if pending is not None:
        return pending
    return TOTPDevice.objects.create(user=actor, name=DEVICE_NAME, confirmed=False)


@refusals_audited
def two_factor_enrolment_confirm(*, actor, otp_token: str, request=None) -> TOTPDevice:
    """Confirm the device `actor` is setting up with a code from it; from then on the account
    signs in with a code. A wrong code is refused (ValidationError) and the device stays
    unconfirmed. Audited."""
    pending = two_factor.device_pending(actor)
    if pending is None:
        raise ValidationError("Start again: there is no authenticator app being set up.")
    refusal = two_factor.code_refusal(user=actor, otp_token=otp_token, device=pending)
    if refusal:
        raise ValidationError(refusal)
    with transaction.atomic():
        pending.confirmed = True
        pending.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=actor).exclude(pk=pending.pk).delete()
        _audit_device(action="enrolled", actor=actor, user=actor, request=request)
    return pending


@refusals_audited
def two_factor_remove(*, actor, otp_token: str, request=None) -> None:
    """Remove `actor`'s TOTP device, proven with a current code from it. Audited.

    Refuse (Refused) staff, who always sign in to the admin with a code, and a member of a
    team that requires two-factor sign-in.
    """
    if actor.is_staff:
        raise Refused("Staff accounts always sign in with a code: the device cannot be removed.")
    requiring = list(_merchants_requiring(actor).values_list("name", flat=True))
    if requiring:
        raise Refused(
            f"{', '.join(requiring)} requires two-factor sign-in: the device cannot be removed "
            "while you are a member."
        )
    refusal = two_factor.code_refusal(user=actor, otp_token=otp_token)
    if refusal:
        raise ValidationError(refusal)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=actor).delete()
        _audit_device(action="removed", actor=actor, user=actor, request=request)


@refusals_audited
@transaction.atomic
def merchant_require_two_factor(
    *, merchant: Merchant, required: bool, actor, request=None
) -> Merchant:
    """Require (or stop requiring) every member of `merchant` to sign in with a TOTP code.

    Only an Owner may (Refused otherwise), and only with a device of their own when turning it
    on (ValidationError), so the Owner is not the first one locked out. Audited in the
    merchant's trail.
    """
    authorize(actor, EDIT_MERCHANT_PROFILE, merchant)
    if not is_owner(actor, merchant):
        raise Refused(
            "Only an Owner can change whether the team must sign in with a code.",
            merchant=merchant,
        )
    if required and not two_factor.has_device(actor):
        raise ValidationError(
            "Set up an authenticator app for your own account first, then require it of the team."
        )
    merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
    if merchant.require_two_factor == required:
        return merchant
    audit_record(
        action=AuditEvent.Action.MERCHANT_PROFILE_CHANGED,
        actor=actor,
        merchant=merchant,
        target="two-factor sign-in",
        details={"require_two_factor": {"from": merchant.require_two_factor, "to": required}},
        request=request,
    )
    merchant.require_two_factor = required
    merchant.save(update_fields=["require_two_factor"])
    return merchant


@refusals_audited
@transaction.atomic
def two_factor_device_install(*, user, key: bytes, actor, request=None) -> TOTPDevice:
    """Give `user` one confirmed TOTP device with `key` (the raw bytes), replacing any other:
    for demo accounts, whose key is printed or set by DEMO_TOTP_SECRET. Audited.

    Only the system (a management command) or staff who may manage accounts may.
    """
    authorize(actor, HELPDESK_MANAGE_USERS)
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, key=key.hex(), confirmed=True)
    _audit_device(action="installed", actor=actor, user=user, request=request)
    return device
