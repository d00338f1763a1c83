"""Create the demo helpdesk user and two demo merchants with their owners. Idempotent."""

import base64
import binascii
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from merchants.models import Integration, Merchant
from teams import two_factor
from teams.helpdesk import HELPDESK_GROUP, HELPDESK_LEAD_GROUP, helpdesk_groups_ensure
from teams.services import merchant_create_with_owner
from teams.services.two_factor import two_factor_device_install

HELPDESK_EMAIL = "helpdesk@demo.test"
HELPDESK_LEAD_EMAIL = "lead@demo.test"
DEMO_MERCHANTS = (
    {
        "name": "Demo Coffee Co",
        "slug": "demo-coffee-co",
        "owner": "owner@demo.test",
        "contact_email": "owner@demo.test",
        "contact_phone": "+44 20 7946 0000",
        "website": "https://coffee.demo.test",
        "country": "GB",
        "requested_integrations": [Integration.ONLINE_PAYMENTS, Integration.IN_PERSON],
    },
    {
        "name": "Demo Bakery Co",
        "slug": "demo-bakery-co",
        "owner": "other-owner@demo.test",
        "contact_email": "other-owner@demo.test",
        "contact_phone": "+49 30 901820",
        "website": "https://bakery.demo.test",
        "country": "DE",
        "requested_integrations": [Integration.SUBSCRIPTIONS, Integration.INVOICING],
    },
)


class Command(BaseCommand):
    help = (
        "Create the demo users (helpdesk@demo.test, lead@demo.test, owner@demo.test, "
        "other-owner@demo.test) "
        "and merchants. Safe to run again. Passwords come from DEMO_PASSWORD when set; the "
        "staff's two-factor key (their admin sign-in code) from DEMO_TOTP_SECRET (base32)."
    )

    def handle(self, *args, **options):
        self.password = settings.DEMO_PASSWORD or secrets.token_urlsafe(9)
        self.reset_passwords = bool(settings.DEMO_PASSWORD)
        self.logins: list[tuple[str, str]] = []
        self.totp_key = demo_totp_key(settings.DEMO_TOTP_SECRET) or secrets.token_bytes(20)
        self.reset_totp = bool(settings.DEMO_TOTP_SECRET)
        self.devices: list[tuple[str, object]] = []
        with transaction.atomic():
            groups = helpdesk_groups_ensure()
            helpdesk = self._user(HELPDESK_EMAIL, full_name="Hana Helpdesk", is_staff=True)
            helpdesk.groups.add(groups[HELPDESK_GROUP])
            lead = self._user(HELPDESK_LEAD_EMAIL, full_name="Lee Lead", is_staff=True)
            lead.groups.add(groups[HELPDESK_LEAD_GROUP])
            for staff in (helpdesk, lead):
                self._totp_device(staff)
            for spec in DEMO_MERCHANTS:
                spec = dict(spec)
                owner = self._user(spec.pop("owner"), full_name=f"Owner of {spec['name']}")
                if not Merchant.objects.filter(slug=spec["slug"]).exists():
                    merchant_create_with_owner(owner=owner, actor=None, **spec)
        self._print_summary()

    def _user(self, email, *, full_name, is_staff=False):
        User = get_user_model()
        user, created = User.objects.get_or_create(
            email=email, defaults={"full_name": full_name, "is_staff": is_staff}
        )
        if created or self.reset_passwords:
            user.set_password(self.password)
            user.save(update_fields=["password"])
            self.logins.append((email, self.password))
        else:
            self.logins.append((email, "(unchanged; set DEMO_PASSWORD to reset)"))
        return user

    def _totp_device(self, user):
        device = two_factor.device_confirmed(user)
        if device is None or self.reset_totp:
            device = two_factor_device_install(user=user, key=self.totp_key, actor=None)
            self.devices.append((user.email, device))
        else:
            self.devices.append((user.email, None))

    def _print_summary(self):
        site = settings.SITE_URL
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        self.stdout.write(f"  Merchant portal: {site}/accounts/login/")
        self.stdout.write(f"  Helpdesk admin:  {site}/admin/")
        for email, password in self.logins:
            self.stdout.write(f"  {email:<24} password: {password}")
        self.stdout.write("  Staff sign in to the admin with a code from an authenticator app:")
        for email, device in self.devices:
            if device is None:
                self.stdout.write(
                    f"  {email:<24} TOTP key: (unchanged; set DEMO_TOTP_SECRET to reset)"
                )
                continue
            self.stdout.write(f"  {email:<24} TOTP key: {two_factor.key_base32(device)}")
            self.stdout.write(f"  {'':<24} {device.config_url}")


def demo_totp_key(value: str) -> bytes | None:
    """Return the raw key written in base32 (spaces and lower case allowed), None when empty.

    Refuse (CommandError) anything else: a demo whose printed code never works is worse.
    """
    compact = "".join(value.split()).upper().rstrip("=")
    if not compact:
        return None
    try:
        key = base64.b32decode(compact + "=" * (-len(compact) % 8))
    except binascii.Error:
        raise CommandError(
            "DEMO_TOTP_SECRET is not a base32 key (letters A-Z and digits 2-7)."
        ) from None
    if len(key) < 10:
        raise CommandError("DEMO_TOTP_SECRET is too short: use at least 16 base32 characters.")
    return key
