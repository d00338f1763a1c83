"""How a moment is written for people: one format in the portal, the admin and every mail.

A date and time in the zone that is active (the reader's: `teams.time_zones`), with the zone
named, such as "5 Mar 2026, 14:05 CET" or "5 Mar 2026, 14:05 UTC". The admin writes datetimes
with Django's DATETIME_FORMAT, which the project's format module (`config.formats`) sets to
the same string, so a time reads the same on every page and in every mail.
"""

import zoneinfo
from datetime import date, datetime
from functools import cache

from django.utils import timezone
from django.utils.dateformat import format as format_date

MOMENT_FORMAT = "j M Y, H:i T"
DAY_FORMAT = "j M Y"


def moment_display(value) -> str:
    """Return `value` (a datetime, a date or None) as people read it, in the active zone.

    An aware datetime is converted to the active zone and ends with that zone's name; a date
    has no time and no zone; None is "" (so that a template's `|default:"never"` applies).
    """
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return format_date(value, MOMENT_FORMAT)
    if isinstance(value, date):
        return format_date(value, DAY_FORMAT)
    return str(value)


@cache
def time_zone_names() -> frozenset[str]:
    """Return the IANA names of the time zones this machine knows ("Europe/Berlin")."""
    return frozenset(zoneinfo.available_timezones())


def is_time_zone(name: str) -> bool:
    """Return True if `name` is a time zone this machine knows."""
    return name in time_zone_names()
