"""The Celery application, configured from Django settings (the `CELERY_` namespace).

Tasks are declared with `@app.task` on this app (not `shared_task`), so that importing a tasks
module in the web process always binds to this configuration.
"""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

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
    from django.db import close_old_connections

    close_old_connections()


def enqueue(task_name: str, *args, countdown: float | None = None) -> bool:
    """Queue `task_name` with `args` (ids only); return False instead of raising if the broker
    is unreachable.

    Callers record what must happen in the database first; a sweep queues it again later, so
    a broker outage delays work but never fails the request that caused it.
    """
    import logging

    try:
        app.send_task(task_name, args=args, countdown=countdown)
    except Exception as error:  # noqa: BLE001  any broker failure; the sweep recovers
        logging.getLogger(__name__).warning(
            "Could not queue %s%s (%s); a periodic sweep will queue it again.",
            task_name,
            args,
            type(error).__name__,
        )
        return False
    return True
