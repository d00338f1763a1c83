"""Create the demo helpdesk user and two demo merchants with their owners. Idempotent."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from merchants.models import Integration, Merchant
from teams.helpdesk import HELPDESK_GROUP, HELPDESK_LEAD_GROUP, helpdesk_groups_ensure
from teams.services import merchant_create_with_owner

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
        "and merchants. Safe to run again. Passwords come from DEMO_PASSWORD when set."
    )

    def handle(self, *args, **options):
        self.password = settings.DEMO_PASSWORD or secrets.token_urlsafe(9)
        self.reset_passwords = bool(settings.DEMO_PASSWORD)
        self.logins: list[tuple[str, str]] = []
        with transaction.atomic():
            groups = helpdesk_groups_ensure()
            helpdesk = self._user(HELPDESK_EMAIL, full_name="Hana Helpdesk", is_staff=True)
            helpdesk.groups.add(groups[HELPDESK_GROUP])
            lead = self._user(HELPDESK_LEAD_EMAIL, full_name="Lee Lead", is_staff=True)
            lead.groups.add(groups[HELPDESK_LEAD_GROUP])
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

    def _print_summary(self):
        site = settings.SITE_URL
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        self.stdout.write(f"  Merchant portal: {site}/accounts/login/")
        self.stdout.write(f"  Helpdesk admin:  {site}/admin/")
        for email, password in self.logins:
            self.stdout.write(f"  {email:<24} password: {password}")
