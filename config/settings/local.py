"""Settings for `make run` and `python manage.py …` on a developer's machine.

`.env` and `var/` are created by `core.envfile.local_state_ensure`, which `manage.py`, the Celery
processes and `make run` call before these settings are read: importing settings writes
nothing.

DEBUG is off unless DJANGO_DEBUG=true: the portal holds real keys even on a laptop, and a debug
page is easy to share by accident (`core.error_reports` hides secrets on it all the same).
WhiteNoise serves the static files straight from the apps, as runserver does only in DEBUG.
"""

from .base import *  # noqa: F403
from .base import MIDDLEWARE, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)

MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
# From each app's static/ folder as they are edited: no collectstatic on a developer's machine.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
