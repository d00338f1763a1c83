"""The Celery application, configured from Django settings (the `CELERY_` namespace).

`config/__init__.py` imports this module, so every process that loads Django settings has this
app as Celery's current app: the apps' tasks (`@shared_task`) and `core.queue.enqueue` bind to
it without importing `config`, which sits above them.
"""

import logging
import os

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init
from django.db import close_old_connections

from core.envfile import local_state_ensure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("keyhouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    """Treat each task as Django treats a request: keep its thread's database connection
    while it is younger than CONN_MAX_AGE and healthy, replace it otherwise.

    Celery's Django fixup would instead close it before and after every task, a new
    PostgreSQL connection (and server process) per task, unless CELERY_DB_REUSE_MAX is set,
    which the settings do. Tasks run eagerly (in tests) are left alone, as the fixup does.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()


@worker_init.connect
@beat_init.connect
def _local_state(sender=None, **kwargs) -> None:
    """Give a worker or beat started by hand on a fresh checkout its `.env` and `var/`, as
    `manage.py` does (only with the local settings)."""
    local_state_ensure()


@worker_init.connect
@beat_init.connect
def _refuse_a_wrong_encryption_key(sender=None, **kwargs) -> None:
    """Stop a worker or beat whose FIELD_ENCRYPTION_KEY cannot read what is stored.

    SystemExit, not an exception: Celery logs and ignores exceptions raised by signal
    handlers, and the process would start anyway.
    """
    # Imported here: this module loads before Django's apps, whose models this needs.
    from credentials.encryption import EncryptionKeyMismatch, encryption_key_ensure

    process = "beat" if type(sender).__name__ == "Service" else "the worker"
    try:
        encryption_key_ensure(process=process)
    except EncryptionKeyMismatch as mismatch:
        logging.getLogger(__name__).critical("%s", mismatch)
        raise SystemExit(1) from None
