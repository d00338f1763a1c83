"""`manage.py create_service_account`: parse, call `service_account_create` as the system,
print the token (and the webhook signing secret) once."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.durations import parse_duration_seconds
from integrations.scopes import EventType, Scope
from integrations.services.accounts import service_account_create
from merchants.models import Merchant


class Command(BaseCommand):
    help = (
        "Create a service account for one of the integrator's systems and print its API token "
        "(and its webhook signing secret) once. Example: create_service_account demo-pos "
        "--scope secrets:read --scope merchants:read --all-merchants"
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Lower-case letters, digits and dashes (demo-pos).")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            default=[],
            metavar="SCOPE",
            help=f"What it may read; repeat for more: {', '.join(Scope.values)}.",
        )
        parser.add_argument(
            "--merchant",
            action="append",
            dest="merchants",
            default=[],
            metavar="SLUG",
            help="A merchant it serves, by slug; repeat for more.",
        )
        parser.add_argument(
            "--all-merchants",
            action="store_true",
            help="Serve every merchant, present and future (instead of --merchant).",
        )
        parser.add_argument(
            "--webhook-url", default="", help="Where to send signed events (optional)."
        )
        parser.add_argument(
            "--event",
            action="append",
            dest="events",
            default=[],
            metavar="TYPE",
            help=f"An event type to send there; repeat for more; none: every type "
            f"({', '.join(EventType.values)}).",
        )
        parser.add_argument(
            "--expires-in", default="", help="Stop working after this long (90d, 12h)."
        )
        parser.add_argument(
            "--allow-ip",
            action="append",
            dest="allowed_ips",
            default=[],
            metavar="NET",
            help="An address or network calls may come from (203.0.113.0/24); repeat for "
            "more; none: any.",
        )
        parser.add_argument("--description", default="", help="What this system is.")

    def handle(self, *args, **options):
        merchants = self._merchants(options["merchants"], all_merchants=options["all_merchants"])
        if options["events"] and not options["webhook_url"]:
            raise CommandError("--event needs --webhook-url: events are sent to an endpoint.")
        try:
            account, token, signing_secret = service_account_create(
                name=options["name"],
                scopes=options["scopes"],
                merchants=merchants,
                all_merchants=options["all_merchants"],
                expires_at=self._expires_at(options["expires_in"]),
                allowed_ips=options["allowed_ips"],
                description=options["description"],
                webhook_url=options["webhook_url"],
                event_types=options["events"],
                actor=None,
            )
        except ValidationError as refusal:
            raise CommandError(" ".join(refusal.messages)) from None
        self._print(account, token, signing_secret)

    def _merchants(self, slugs: list[str], *, all_merchants: bool) -> list[Merchant]:
        if slugs and all_merchants:
            raise CommandError("Give either --merchant SLUG (one or more) or --all-merchants.")
        if not slugs and not all_merchants:
            raise CommandError(
                "Say which merchants it serves: --merchant SLUG (repeat for more) or "
                "--all-merchants."
            )
        merchants = list(Merchant.objects.filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {merchant.slug for merchant in merchants})
        if unknown:
            raise CommandError(
                f"No merchant with the slug {', '.join(unknown)}: check the spelling in the "
                "admin's Merchants list."
            )
        return merchants

    def _expires_at(self, expires_in: str):
        if not expires_in:
            return None
        try:
            seconds = parse_duration_seconds(expires_in)
        except ValueError as error:
            raise CommandError(f"--expires-in: {error}") from None
        return timezone.now() + timedelta(seconds=seconds)

    def _print(self, account, token: str, signing_secret: str) -> None:
        write = self.stdout.write
        write(self.style.SUCCESS(f"Service account {account.name} created."))
        write(f"  Scopes:    {', '.join(account.scopes)}")
        serves = (
            "every merchant"
            if account.all_merchants
            else ", ".join(account.merchants.order_by("slug").values_list("slug", flat=True))
        )
        write(f"  Merchants: {serves}")
        if account.expires_at:
            write(f"  Expires:   {account.expires_at.isoformat(timespec='seconds')}")
        write("")
        write(f"  API token:      {token}")
        if signing_secret:
            write(f"  Signing secret: {signing_secret}")
        write("")
        write(
            self.style.WARNING(
                "  Copy them now: they are not shown again (Keyhouse keeps only a hash of the "
                "token). Lost? Roll the token in the admin."
            )
        )
        write("")
        write("  Try it:")
        write(f'  curl -H "Authorization: Bearer {token}" {settings.SITE_URL}/api/v1/merchants/')
