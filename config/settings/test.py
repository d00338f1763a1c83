"""Settings for the test suite.

Keys are made up per run; PostgreSQL and Redis are used when DATABASE_URL / REDIS_URL say so.
"""

import os

from cryptography.fernet import Fernet

# An .env left by `make run` must not steer the tests (its DEMO_PASSWORD, DATABASE_URL or
# REDIS_URL would): only the real environment does.
os.environ.setdefault("KEYHOUSE_ENV_FILE", os.devnull)
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-" + Fernet.generate_key().decode())
os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
os.environ.setdefault("CREDENTIAL_FINGERPRINT_KEY", Fernet.generate_key().decode())

from core.broker import transport_for

from .base import *  # noqa: F403
from .base import DATABASES, env

# Without DATABASE_URL: an in-memory database, never the development one under var/.
if "DATABASE_URL" not in os.environ:
    DATABASES["default"] = env.db_url_config("sqlite://:memory:")

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
HELPDESK_EMAIL = "helpdesk@keyhouse.test"
SITE_URL = "http://testserver"
STRIPE_API_BASE = "http://127.0.0.1:9"  # a closed port until a test starts the fake Stripe
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests never publish to a developer's embedded broker (a running `make run` worker would
# pick the tasks up): Redis when configured, else kombu's in-memory transport. A queue of
# their own keeps test tasks apart from anything else on that Redis.
CELERY_BROKER_URL = os.environ.get("REDIS_URL") or "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"socket_connect_timeout": 2, "socket_timeout": 5} if os.environ.get("REDIS_URL") else {}
)
CELERY_BROKER_TRANSPORT = transport_for(CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = f"keyhouse-test-{os.getpid()}"
CELERY_TASK_ALWAYS_EAGER = False
VERIFY_RETRY_BASE_SECONDS = 0.05
EMAIL_RETRY_BASE_SECONDS = 0.05
STRIPE_TIMEOUT_SECONDS = 2.0
STRIPE_MAX_NETWORK_RETRIES = 1
# Rate counters per test process; a test that wants Redis's sets CACHES itself.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
WEBHOOK_TIMEOUT_SECONDS = 2.0
WEBHOOK_RETRY_BASE_SECONDS = 0.05
# Closed ports until a test starts the fake Kashier (one server per mode, like the real hosts).
KASHIER_API_BASE_TEST = "http://127.0.0.1:9"
KASHIER_API_BASE_LIVE = "http://127.0.0.1:9"
KASHIER_TIMEOUT_SECONDS = 2.0
# Most tests submit made-up secret keys; the policy tests set warn (the default) and refuse.
STRIPE_SECRET_KEY_POLICY = "allow"  # noqa: S105  a policy name, not a secret
# The Chromium the browser tests drive (tests/browser/): Debian's package unless set.
BROWSER_EXECUTABLE = os.environ.get("BROWSER_EXECUTABLE", "/usr/bin/chromium")
