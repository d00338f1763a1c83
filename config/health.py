"""`GET /healthz`: does the app reach its database and its broker, and can it read its
stored secrets with the configured FIELD_ENCRYPTION_KEY?"""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from config.celery_app import app as celery_app
from credentials.encryption import encryption_canary_decrypts

BROKER_TIMEOUT_SECONDS = 2.0

logger = logging.getLogger(__name__)


def database_answers() -> bool:
    """Return True if the database runs a query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError as exc:
        logger.warning("Health check: the database did not answer (%s).", type(exc).__name__)
        return False


def broker_answers() -> bool:
    """Return True if the Celery broker accepts a connection, trying once."""
    try:
        with celery_app.connection_for_write(
            connect_timeout=BROKER_TIMEOUT_SECONDS,
            # Redis takes its timeouts from the transport options, not from connect_timeout;
            # without them an unreachable (not refusing) host blocks the probe for minutes.
            transport_options={
                "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
                "socket_timeout": BROKER_TIMEOUT_SECONDS,
            },
        ) as conn:
            # One attempt: a probe reports the broker's state; retrying would only add kombu's
            # back-off sleep (2 s and more) to every failing answer.
            conn.ensure_connection(max_retries=0)
            return True
    except Exception as exc:  # noqa: BLE001  any failure to connect means "does not answer"
        logger.warning("Health check: the broker did not answer (%s).", type(exc).__name__)
        return False


@never_cache
@require_safe
def healthz(request):
    """Return 200 when the database and the broker answer and the encryption keys read the
    stored canary, else 503, with each answer in JSON."""
    checks = {
        "database": database_answers(),
        "broker": broker_answers(),
        # Nothing to read yet (a database not migrated) is not a wrong key.
        "encryption": encryption_canary_decrypts() is not False,
    }
    healthy = all(checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )
