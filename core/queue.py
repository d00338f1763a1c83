"""Queueing Celery tasks by name, without failing the caller when the broker is down.

Callers record what must happen in the database first; a periodic sweep queues it again
later, so a broker outage delays work but never fails the request that caused it. Tasks are
named, not imported, so a lower layer can queue a higher one's task without importing it.
"""

import logging

from celery import current_app

logger = logging.getLogger(__name__)


def enqueue(task_name: str, *args, countdown: float | None = None) -> bool:
    """Queue `task_name` with `args` (ids only); return False instead of raising if the broker
    is unreachable."""
    try:
        current_app.send_task(task_name, args=args, countdown=countdown)
    except Exception as error:  # noqa: BLE001  any broker failure; the sweep recovers
        logger.warning(
            "Could not queue %s%s (%s); a periodic sweep will queue it again.",
            task_name,
            args,
            type(error).__name__,
        )
        return False
    return True
