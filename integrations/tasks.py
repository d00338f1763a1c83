"""Celery tasks of the webhook outbox: thin, they take ids (never a secret) and call a service.

Nothing secret goes in or out: the argument is a delivery id, the return value is None (Celery
logs it), and the services raise nothing that carries a signing secret.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from integrations.services import delivery, redelivery

# A database that went away (a restart, a failover) is usually back within seconds.
DATABASE_RETRY_SECONDS = 5


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=3)
def deliver_webhook(self, delivery_id: int) -> None:
    try:
        delivery.delivery_send(delivery_id)
    except (OperationalError, InterfaceError):
        # Failed claiming or recording; a claim left behind goes stale and the sweep sends it.
        raise self.retry(countdown=DATABASE_RETRY_SECONDS) from None


@shared_task(ignore_result=True)
def webhooks_send_due() -> None:
    redelivery.deliveries_send_due()
