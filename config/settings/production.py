"""Settings for production: every secret comes from the environment, with no default."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import FIELD_ENCRYPTION_KEY, MIDDLEWARE, SECRET_KEY, env, env_list

# Unset raises ImproperlyConfigured through env(); an empty value (`HELPDESK_EMAIL=`) would
# otherwise slip through as if it were a setting.
for _name in (
    "DJANGO_SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "CREDENTIAL_FINGERPRINT_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "HELPDESK_EMAIL",
    "SITE_URL",
):
    if not env.str(_name).strip():
        raise ImproperlyConfigured(f"Set the {_name} environment variable: it is empty.")

DEBUG = False
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
HELPDESK_EMAIL = env("HELPDESK_EMAIL")
SITE_URL = env("SITE_URL").rstrip("/")

if SECRET_KEY in FIELD_ENCRYPTION_KEY:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY must differ from DJANGO_SECRET_KEY: a leaked Django secret would "
        "otherwise expose every stored key. Generate one with `python -m core.envfile --key`."
    )
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 random characters.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Load balancers probe the app itself over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[SITE_URL])
# WhiteNoise serves the collected static files right after the security middleware.
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
