"""Settings of every process of a fault-injection run: production's, read from the environment
the run gives each process (tests/faults/processes.py), with two changes so that a run takes
minutes:

- the beat schedule's once-a-minute sweeps (due mail, stale verifications, refusal windows)
  run every FAULTS_SWEEP_EVERY seconds, so that what they recover is seen within seconds;
- static files are served without a manifest, so the web starts without `collectstatic`.
"""

from config.settings.production import *  # noqa: F403
from config.settings.production import CELERY_BEAT_SCHEDULE, STORAGES, env

MINUTE_SWEEPS = ("emails-send-due", "verifications-requeue-stale", "refusal-windows-close")
SWEEP_EVERY = env.float("FAULTS_SWEEP_EVERY", default=2.0)

CELERY_BEAT_SCHEDULE = {
    name: {**entry, "schedule": SWEEP_EVERY} if name in MINUTE_SWEEPS else entry
    for name, entry in CELERY_BEAT_SCHEDULE.items()
}
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
