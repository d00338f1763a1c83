"""The Celery application, configured from Django settings (the `CELERY_` namespace).

Tasks are declared with `@app.task` on this app (not `shared_task`), so that importing a tasks
module in the web process always binds to this configuration.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("keyhouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
