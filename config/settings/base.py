"""Settings shared by every environment.

Every value that differs between machines comes from the environment (or `.env`), with the
variable names of the settings contract in DESIGN.md. The environment always wins over `.env`.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from core.broker import transport_for
from core.durations import parse_duration_seconds
from core.moments import is_time_zone

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# `.env` beside manage.py, unless KEYHOUSE_ENV_FILE names another file: the test settings and
# the settings tests point it elsewhere, so that a developer's `.env` cannot steer them.
ENV_FILE = Path(os.environ.get("KEYHOUSE_ENV_FILE") or BASE_DIR / ".env")
# read_env() only fills variables that are not already set, so the real environment wins.
environ.Env.read_env(ENV_FILE, overwrite=False)


def env_list(name: str, default=environ.Env.NOTSET) -> list[str]:
    """Return the comma-separated variable `name` as a list, forgiving spaces after commas.

    django-environ keeps them, and `example.com, www.example.com` would otherwise allow a host
    named " www.example.com" that no request ever has.
    """
    return [item.strip() for item in env.list(name, default=default) if item.strip()]


def env_duration_seconds(name: str, *, default: str) -> float:
    """Return the duration in the variable `name`, refusing to start when it cannot be read."""
    try:
        return parse_duration_seconds(env(name, default=default))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    # The admin site asks staff for a TOTP code (teams.admin_site.KeyhouseAdminSite).
    "config.apps.KeyhouseAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "encrypted_model_fields",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_countries",
    "audit",
    "mail",
    "merchants",
    "teams",
    "integrations",
    "credentials",
    "api",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Response headers (see "Headers" below): outermost, so error pages get them too.
    "config.middleware.PrivatePagesMiddleware",
    "config.middleware.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): signed in with a TOTP code in this session.
    "django_otp.middleware.OTPMiddleware",
    # Times are written in the signed-in person's zone (teams.time_zones).
    "teams.time_zones.TimeZoneMiddleware",
    # Members of a team that requires two-factor sign-in enrol or give a code first.
    "teams.middleware.TeamTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "teams.context_processors.merchant_switcher",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'keyhouse.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: a worker otherwise reconnects for every task (Celery's Django
# fix-up closes a connection only when it is unusable or older than this).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "teams.User"
AUTHENTICATION_BACKENDS = [
    # Answers global permissions (the Django admin) and signs users in by email.
    "django.contrib.auth.backends.ModelBackend",
    # Answers has_perm(perm, merchant) from the member's role in that merchant.
    "teams.backends.MerchantRoleBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "merchants:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Datetimes in the admin read as everywhere else, "5 Mar 2026, 14:05 CET" (core.moments).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"


SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Headers, error reports and SQLite (issue #12, findings 4, 11 and 12).
# No inline script or style anywhere: the portal's and the admin overrides' code and styles
# are static files. `data:` images are the TOTP enrolment QR code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Powerful browser features no page uses: each allowed to no origin (config.middleware).
PERMISSIONS_POLICY = {"camera": [], "microphone": [], "geolocation": [], "payment": [], "usb": []}
# Debug pages and error mails hide passwords and anything shaped like a key, DEBUG on or off.
DEFAULT_EXCEPTION_REPORTER = "core.error_reports.SecretHidingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.error_reports.SecretHidingReporterFilter"
# SQLite (`make run`'s default database) shared by web and worker: readers never block the
# writer (WAL), and a transaction takes the write lock when it begins (IMMEDIATE), so a second
# writer waits up to `timeout` seconds instead of failing with "database is locked".
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

# Mail: console by default; smtp://host:port and friends through EMAIL_URL. `console` is accepted
# as written in the settings contract, besides django-environ's own `consolemail://`.
_EMAIL_ALIASES = {"console": "consolemail://", "console://": "consolemail://"}
_email_url = env("EMAIL_URL", default="console")
_email = env.email_url_config(_EMAIL_ALIASES.get(_email_url, _email_url))
if _email["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend":
    # Django's, keeping each thread's connection open between sends (mail/smtp.py).
    _email["EMAIL_BACKEND"] = "mail.smtp.EmailBackend"
vars().update(_email)
# How long a worker thread keeps its idle connection to the mail server for its next mail;
# 0 closes each connection once its mails are sent.
EMAIL_KEEP_OPEN_SECONDS = env.float("EMAIL_KEEP_OPEN_SECONDS", default=10.0)
# A mail server that stops answering must not hold a worker thread for ever (the threads
# pool enforces no task time limit): the send fails and is retried.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Keyhouse <keyhouse@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
HELPDESK_EMAIL = env("HELPDESK_EMAIL", default="helpdesk@keyhouse.invalid")
# The zone of times in mail to the helpdesk, and in the admin for staff who chose none.
HELPDESK_TIME_ZONE = env("HELPDESK_TIME_ZONE", default="UTC")
if not is_time_zone(HELPDESK_TIME_ZONE):
    raise ImproperlyConfigured(
        f"HELPDESK_TIME_ZONE: {HELPDESK_TIME_ZONE!r} is not a time zone (such as Europe/Berlin)."
    )
# Unset, the links point at this machine's web port: WEB_PORT, which `make run` gives every
# process (honcho renumbers PORT per process: the worker, which sends the mail, gets PORT+100),
# else PORT.
_WEB_PORT = env("WEB_PORT", default=env("PORT", default="8000"))
SITE_URL = env("SITE_URL", default=f"http://127.0.0.1:{_WEB_PORT}").rstrip("/")

# Invitation mails (first sends and resends), counted from the database: at most this many
# per merchant in any hour, and per invited address of one merchant in any 24 hours.
INVITATIONS_PER_MERCHANT_PER_HOUR = env.int("INVITATIONS_PER_MERCHANT_PER_HOUR", default=20)
INVITATION_MAILS_PER_ADDRESS_PER_DAY = env.int("INVITATION_MAILS_PER_ADDRESS_PER_DAY", default=3)

# Encryption at rest. The first key encrypts; every key decrypts (rotation).
FIELD_ENCRYPTION_KEY = env_list("FIELD_ENCRYPTION_KEY")
CREDENTIAL_FINGERPRINT_KEY = env("CREDENTIAL_FINGERPRINT_KEY")

# Stripe: resolved at call time so that tests and demos can point it at a local server.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# What happens to a Stripe secret key (sk_…), where Stripe recommends a restricted key (rk_…):
# allow it, warn (accept it, advise the merchant, flag it for the helpdesk) or refuse it.
STRIPE_SECRET_KEY_POLICY = env("STRIPE_SECRET_KEY_POLICY", default="warn").strip().lower()
if STRIPE_SECRET_KEY_POLICY not in ("allow", "warn", "refuse"):
    raise ImproperlyConfigured(
        f"STRIPE_SECRET_KEY_POLICY: {STRIPE_SECRET_KEY_POLICY!r} is not one of allow, warn, "
        "refuse (warn is the default)."
    )

# Kashier: one host per mode (a key's mode is known only by which host accepts it).
KASHIER_API_BASE_TEST = env("KASHIER_API_BASE_TEST", default="https://test-api.kashier.io").rstrip(
    "/"
)
KASHIER_API_BASE_LIVE = env("KASHIER_API_BASE_LIVE", default="https://api.kashier.io").rstrip("/")
KASHIER_TIMEOUT_SECONDS = env.float("KASHIER_TIMEOUT_SECONDS", default=10.0)

# Helpdesk follow-up.
FOLLOWUP_AFTER = env_duration_seconds("FOLLOWUP_AFTER", default="24h")
FOLLOWUP_CHECK_EVERY = env_duration_seconds("FOLLOWUP_CHECK_EVERY", default="60")

# Celery. The embedded default needs no server: kombu's filesystem transport under var/.
REDIS_URL = env("REDIS_URL", default="")
# "localhost" only names the embedded transport (kombu warns without a host); it is no server.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _BROKER_DIR = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "control_folder": str(_BROKER_DIR / "control"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Short socket timeouts: a submission must not hang when Redis is unreachable (the
        # key stays pending and a sweep enqueues it later).
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        # Longer than any countdown used (verification back-off is minutes), so Redis never
        # redelivers a task that is merely waiting for its time.
        "visibility_timeout": 3600,
    }
# kombu's transport for the URL's scheme, except Redis: kombu's Redis transport with one
# shared client for its acknowledgement bookkeeping (core.broker).
CELERY_BROKER_TRANSPORT = transport_for(CELERY_BROKER_URL)
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing gives up quickly: the database is the source of truth and sweeps re-enqueue.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TASK_DEFAULT_QUEUE = "keyhouse"
# Results are never stored: tasks return nothing worth keeping, and stored results are one
# more place where a secret could end up.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection around every task unless this is set;
# config.celery_app keeps CONN_MAX_AGE instead, as for requests.
CELERY_DB_REUSE_MAX = 1000

# Verification with Stripe: attempts and back-off (exponential with jitter) for answers that
# may change on a retry (429, 5xx, timeouts, refused connections).
VERIFY_MAX_ATTEMPTS = env.int("VERIFY_MAX_ATTEMPTS", default=5)
VERIFY_RETRY_BASE_SECONDS = env.float("VERIFY_RETRY_BASE_SECONDS", default=15.0)
# A key left pending or verifying this long (a lost task, a broker that was down) is queued
# again by the sweep; longer than a verification can take (the task time limit).
VERIFY_STALE_AFTER = env_duration_seconds("VERIFY_STALE_AFTER", default="150s")
# Re-verification of active keys: each verified key is checked again about every
# REVERIFY_EVERY (with jitter, so keys verified together drift apart); the sweep that queues
# due checks runs every REVERIFY_SWEEP_EVERY and spreads them over that interval.
REVERIFY_EVERY = env_duration_seconds("REVERIFY_EVERY", default="1d")
REVERIFY_SWEEP_EVERY = env_duration_seconds("REVERIFY_SWEEP_EVERY", default="10m")
# The most checks one sweep queues: 2,000 every 10 minutes is 288,000 a day, room for about
# three times the 100,000 active keys of a large installation (#15). Raise it beyond that.
REVERIFY_SWEEP_LIMIT = env.int("REVERIFY_SWEEP_LIMIT", default=2000)
# Mail that failed to send is tried again after this back-off, doubling up to an hour.
EMAIL_RETRY_BASE_SECONDS = env.float("EMAIL_RETRY_BASE_SECONDS", default=30.0)

# The one beat schedule. Periodic work is a sweep over the database, never a long countdown.
CELERY_BEAT_SCHEDULE = {
    "followups-send-due": {
        "task": "credentials.tasks.followups_send_due",
        "schedule": FOLLOWUP_CHECK_EVERY,
    },
    "emails-send-due": {"task": "mail.tasks.emails_send_due", "schedule": 60.0},
    "verifications-requeue-stale": {
        "task": "credentials.tasks.verifications_requeue_stale",
        "schedule": 60.0,
    },
    "reverifications-queue-due": {
        "task": "credentials.tasks.reverifications_queue_due",
        "schedule": REVERIFY_SWEEP_EVERY,
    },
}

# Refused access in the audit trail (issue #12, finding 10): refusals of one person on one
# merchant's route are recorded once per window; the rest are counted and summed up in one
# event when the window is over (by the next refusal, or by this sweep).
AUDIT_REFUSAL_WINDOW = env_duration_seconds("AUDIT_REFUSAL_WINDOW", default="10m")
CELERY_BEAT_SCHEDULE["refusal-windows-close"] = {
    "task": "audit.tasks.refusal_windows_close_due",
    "schedule": 60.0,
}

# Webhooks to the integrator's systems (integrations): each delivery is retried with doubling
# back-off from WEBHOOK_RETRY_BASE_SECONDS on timeouts, 5xx and connection errors, for up to
# WEBHOOK_GIVE_UP_AFTER; one attempt waits at most WEBHOOK_TIMEOUT_SECONDS for an answer.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
WEBHOOK_GIVE_UP_AFTER = env_duration_seconds("WEBHOOK_GIVE_UP_AFTER", default="3d")
# A delivery a worker claimed this long ago without finishing (it died) is sent again.
WEBHOOK_STALE_AFTER = env_duration_seconds("WEBHOOK_STALE_AFTER", default="120s")
CELERY_BEAT_SCHEDULE["webhooks-send-due"] = {
    "task": "integrations.tasks.webhooks_send_due",
    "schedule": 60.0,
}

# The integrator API (api): bearer tokens of service accounts only, JSON errors with a code
# and a message, cursor pagination, and a rate per service account.
API_RATE = env("API_RATE", default="600/minute")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ServiceTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.IsServiceAccount"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ServiceAccountRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"service_account": API_RATE},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Keyhouse integrator API",
    "DESCRIPTION": (
        "Verified provider keys for the integrator's own systems. Authenticate with "
        "`Authorization: Bearer kh_…` (a service account's token); every secret fetched is "
        "written to the merchant's audit trail."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# The API's rate counters: in Redis when there is one (shared by every web process), else in
# the process (the embedded default runs one web process).
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's request logger would print POST data of failing requests in some setups;
        # views that take keys are marked sensitive, and this keeps the noise level sane.
        "django.db.backends": {"level": "WARNING"},
        # The SDK logs response bodies at debug level; Stripe's errors echo a masked key.
        "stripe": {"level": "WARNING"},
        # At debug level a missing template variable is logged with the whole context, which
        # on the reveal page holds the secrets being shown.
        "django.template": {"level": "INFO"},
    },
}

# `manage.py seed_demo`: the demo users' password; generated and printed when unset.
DEMO_PASSWORD = env("DEMO_PASSWORD", default="")

# Two-factor sign-in (TOTP, django-otp): staff always, merchant users when they enrol or their
# team requires it. DEMO_TOTP_SECRET is the base32 key `seed_demo` gives the demo staff
# (generated and printed when unset). Device keys are never shown in the admin.
DEMO_TOTP_SECRET = env("DEMO_TOTP_SECRET", default="")
OTP_TOTP_ISSUER = "Keyhouse"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Sign-in throttling, password reset, staff sessions and the client's address (issue 12,
# findings 2, 8 and 11). django-axes locks a typed address and client IP together after
# AXES_FAILURE_LIMIT failed sign-ins, for AXES_COOLOFF_TIME from the failure that locked it;
# the page then says when to try again (teams.lockouts). Its backend comes first, so that a
# locked pair is refused before any password is checked; its middleware comes last, turning
# that refusal into the lockout page. The helpdesk lifts a lockout in the admin (audited).
INSTALLED_APPS = [*INSTALLED_APPS, "axes"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", *AUTHENTICATION_BACKENDS]
MIDDLEWARE = [
    *MIDDLEWARE,
    "teams.staff_sessions.StaffSessionMiddleware",
    "axes.middleware.AxesMiddleware",  # keep last
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
# Axes reads a float as hours.
AXES_COOLOFF_TIME = env_duration_seconds("AXES_COOLOFF_TIME", default="15m") / 3600
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "teams.lockouts.username_for_throttling"
AXES_CLIENT_IP_CALLABLE = "audit.services.client_ip"
AXES_LOCKOUT_CALLABLE = "teams.lockouts.lockout_response"
# Attempts while locked neither count nor extend the lockout: the time on the page holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A successful sign-in clears the earlier failures of its address and IP.
AXES_RESET_ON_SUCCESS = True
# Axes keeps failed attempts' form data for its admin: never a CSRF token or a TOTP code.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken", "otp_token"]
# Sign-ins are in the audit trail already.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Axes logs every sign-in at INFO; failures and lockouts (WARNING) are worth a log line.
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
# How many proxies of ours stand in front of the app, each appending to X-Forwarded-For
# (audit.services.client_ip). 0: the header is ignored and REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# A password reset link works this long, and once.
PASSWORD_RESET_TIMEOUT = int(env_duration_seconds("PASSWORD_RESET_TIMEOUT", default="1h"))
# Staff are signed out this long after signing in, or after this long without a request
# (teams.staff_sessions). Merchant users' sessions keep Django's defaults.
STAFF_SESSION_MAX_AGE = env_duration_seconds("STAFF_SESSION_MAX_AGE", default="12h")
STAFF_SESSION_IDLE = env_duration_seconds("STAFF_SESSION_IDLE", default="30m")
