"""Settings for `make run` and `python manage.py …` on a developer's machine.

`.env` and `var/` are created by `core.envfile.local_state_ensure`, which `manage.py`, the Celery
processes and `make run` call before these settings are read: importing settings writes
nothing.
"""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
