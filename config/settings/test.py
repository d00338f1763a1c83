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
CELERY_TASK_ALWAYS_EAGER = False
