"""Sign-in throttling (django-axes): whose failures count together, and the page a locked-out
person sees instead of the sign-in form, saying when to try again.

Failures count per typed address and client IP together (AXES_LOCKOUT_PARAMETERS), so an
attacker elsewhere cannot lock a merchant out of their own account. The lockout is audited
once, and its lifting, by `audit.signals`.
"""

import math
from datetime import timedelta

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.shortcuts import render
from django.utils import timezone

from audit.services import client_ip

LOCKED_OUT_TEMPLATE = "registration/locked_out.html"


def username_for_throttling(request, credentials=None) -> str:
    """Return the address typed, as sign-in matches it: case and surrounding spaces ignored.

    Sign-in finds the account whatever the capitals, so `Owner@Demo.test` must count against
    the same lockout as `owner@demo.test`.
    """
    typed = (credentials or {}).get("username")
    if typed is None and request is not None:
        typed = getattr(request, "POST", {}).get("username")
    return str(typed or "").strip().lower()


def lockout_ends_at(request, credentials=None):
    """Return when the lockout of this address and client IP ends: the failure that locked it
    plus the cool-off time (attempts during a lockout do not extend it)."""
    attempt_time = (
        AccessAttempt.objects.filter(
            username=username_for_throttling(request, credentials),
            ip_address=getattr(request, "axes_ip_address", None) or client_ip(request),
        )
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    return (attempt_time or timezone.now()) + get_cool_off(request)


def lockout_response(request, original_response=None, credentials=None):
    """Answer a locked-out sign-in (AXES_LOCKOUT_CALLABLE) with a page that says when to try
    again, as a time and in minutes, rounded up so that the time said is never too early."""
    ends = lockout_ends_at(request, credentials)
    minutes = max(1, math.ceil((ends - timezone.now()).total_seconds() / 60))
    # Up to the next whole minute: "after 14:35" must not be a minute early.
    if ends.second or ends.microsecond:
        ends = ends.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return render(
        request,
        LOCKED_OUT_TEMPLATE,
        {"try_again_at": ends, "minutes": minutes},
        status=429,
    )
