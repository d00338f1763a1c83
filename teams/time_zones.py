"""Whose time zone a page or a mail is written in.

A person's zone is the `time_zone` of their account: chosen on the account page, or detected
from the browser on their first page after signing in (static/keyhouse/js/time-zone.js, once:
a choice is never overwritten by a detection). It is stored on the account rather than kept
per session so that mail, written by the worker where there is no session, uses it too.
Until it is known, staff read times in the helpdesk's zone (HELPDESK_TIME_ZONE) and everybody
else in UTC. Every time is written with its zone named (`core.moments`), so a guess is never
wrong, only less convenient.
"""

import zoneinfo
from contextlib import contextmanager

from django.conf import settings
from django.utils import timezone

from core.moments import is_time_zone
from teams.models import User


def helpdesk_time_zone() -> str:
    """Return the zone of mail to the helpdesk and of staff who have not chosen one."""
    return settings.HELPDESK_TIME_ZONE


def time_zone_of(user) -> str:
    """Return the zone `user` reads times in (an IANA name)."""
    chosen = getattr(user, "time_zone", "")
    if chosen and is_time_zone(chosen):
        return chosen
    if getattr(user, "is_staff", False):
        return helpdesk_time_zone()
    return settings.TIME_ZONE


def time_zone_for_addresses(addresses, *, fallback: str = "") -> str:
    """Return the zone to write a mail to `addresses` in: the helpdesk's for mail to the
    helpdesk, else the zone the recipients' accounts share.

    One mail goes to everyone listed, so it can have one zone only: when the recipients with an
    account disagree, or none has one (a contact address without an account), it is
    `fallback`, or UTC. Registered with the outbox (`mail.compose.time_zone_of_recipients`).
    """
    addresses = {address.lower() for address in addresses}
    if addresses and addresses == {settings.HELPDESK_EMAIL.lower()}:
        return helpdesk_time_zone()
    zones = set(
        User.objects.filter(email__in=addresses)
        .exclude(time_zone="")
        .values_list("time_zone", flat=True)
    )
    return _shared_zone(zones, fallback)


def time_zone_for_account(user, *, fallback: str = "") -> str:
    """Return the zone to write a mail to `user` alone in: what `time_zone_for_addresses`
    returns for their address, from the account the caller has already loaded (no query)."""
    if user.email.lower() == settings.HELPDESK_EMAIL.lower():
        return helpdesk_time_zone()
    return _shared_zone({user.time_zone} - {""}, fallback)


def _shared_zone(zones: set[str], fallback: str) -> str:
    if len(zones) == 1 and is_time_zone(zone := next(iter(zones))):
        return zone
    return fallback or settings.TIME_ZONE


@contextmanager
def time_zone_active(name: str):
    """Write the times rendered inside the block in zone `name`."""
    with timezone.override(zoneinfo.ZoneInfo(name)):
        yield


class TimeZoneMiddleware:
    """Activate the signed-in person's zone for the request (`time_zone_of`).

    Must come after AuthenticationMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            timezone.deactivate()
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(time_zone_of(user)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
