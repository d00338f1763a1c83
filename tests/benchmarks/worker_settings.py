"""Settings for the pipeline benchmark's worker process: the test settings, pointed at what the
benchmark started (its test database, queue, fake Stripe and SMTP sink).

The keys that the test settings make up per run come from the benchmark's own environment,
which the worker process inherits, so both sides encrypt and fingerprint alike.
"""

import os

from config.settings.test import *  # noqa: F403
from config.settings.test import DATABASES

DATABASES["default"]["NAME"] = os.environ["BENCH_DATABASE_NAME"]
CELERY_TASK_DEFAULT_QUEUE = os.environ["BENCH_QUEUE"]
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
STRIPE_API_BASE = os.environ["BENCH_STRIPE_API_BASE"]
EMAIL_BACKEND = "mail.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["BENCH_EMAIL_PORT"])
EMAIL_HOST_USER = ""
EMAIL_HOST_PASSWORD = ""
EMAIL_USE_TLS = False
EMAIL_USE_SSL = False
EMAIL_TIMEOUT = 5
# The synthetic task of the Celery ceiling benchmark.
CELERY_IMPORTS = ["tests.benchmarks.ceiling"]
