"""Staff sessions end: STAFF_SESSION_MAX_AGE after signing in, or STAFF_SESSION_IDLE after the
last request, whichever comes first. A helpdesk session opens every merchant's keys; a browser
left signed in must not stay that way. Merchant users keep Django's session defaults.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.utils import timezone
from django.utils.timesince import timeuntil

# Session keys: when this staff session was signed in, and when it was last used (POSIX time).
SIGNED_IN_AT = "staff_session_signed_in_at"
LAST_SEEN_AT = "staff_session_last_seen_at"
# The last-seen time is written at most this often, so that not every request writes the
# session; idle time is measured to within it.
LAST_SEEN_RESOLUTION = 60


def _in_words(seconds: float) -> str:
    """Return a duration as people say it: "30 minutes", "12 hours"."""
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=seconds), now).replace("\xa0", " ")


class StaffSessionMiddleware:
    """Sign out a staff user whose session is too old or idle, with a message saying why.

    The request then goes on signed out, so the page asked for sends them to sign in, where
    the message shows. Place after the authentication and message middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        signed_in_before = user.is_authenticated
        if signed_in_before and user.is_staff:
            self._check(request)
        response = self.get_response(request)
        # Signed in by this request (the sign-in pages): the session's clock starts now.
        user = request.user
        if not signed_in_before and user.is_authenticated and user.is_staff:
            now = timezone.now().timestamp()
            request.session[SIGNED_IN_AT] = request.session[LAST_SEEN_AT] = now
        return response

    def _check(self, request):
        session = request.session
        now = timezone.now().timestamp()
        # A session signed in before these checks existed starts its clock at its next request.
        signed_in_at = session.setdefault(SIGNED_IN_AT, now)
        last_seen_at = session.get(LAST_SEEN_AT, now)
        if now - signed_in_at >= settings.STAFF_SESSION_MAX_AGE:
            reason = (
                f"Staff sessions last at most {_in_words(settings.STAFF_SESSION_MAX_AGE)}: "
                "you were signed out. Sign in again to continue."
            )
        elif now - last_seen_at >= settings.STAFF_SESSION_IDLE:
            reason = (
                f"You were signed out after {_in_words(settings.STAFF_SESSION_IDLE)} without "
                "activity. Sign in again to continue."
            )
        else:
            if now - last_seen_at >= LAST_SEEN_RESOLUTION or LAST_SEEN_AT not in session:
                session[LAST_SEEN_AT] = now
            return
        logout(request)
        messages.info(request, reason)
