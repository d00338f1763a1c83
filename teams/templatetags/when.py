"""`{% load when %}{{ moment|when }}`: every date and time in templates, written one way.

The reader's zone is the active one (`teams.time_zones.TimeZoneMiddleware` for pages, the
recipient's for mails); see `core.moments` for the format.
"""

from django import template

from core.moments import moment_display

register = template.Library()


@register.filter(expects_localtime=False)
def when(value) -> str:
    """Return `value` as "5 Mar 2026, 14:05 CET", in the active time zone."""
    return moment_display(value)
