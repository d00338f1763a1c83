"""ASGI entry point. Refuses to load when FIELD_ENCRYPTION_KEY cannot read what is stored."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_asgi_application()

from credentials.encryption import encryption_key_ensure  # noqa: E402  (needs the apps loaded)

encryption_key_ensure(process="the web application")
