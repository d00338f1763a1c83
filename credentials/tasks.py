"""Celery tasks for credentials: thin, they take ids (never a key) and call a service.

Nothing secret goes in or out: arguments are ids, return values are None (Celery logs
them), and the services raise nothing that carries a key.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from credentials.services import checking, helpdesk, rechecks, stale, verification

# A database that went away (a restart, a failover) is usually back within seconds.
DATABASE_RETRY_SECONDS = 5


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=None)
def verify_credential(self, credential_id: int, known: dict | None = None) -> None:
    try:
        result = verification.credential_verify(
            credential_id=credential_id,
            known=checking.KnownAnswer.from_task_argument(known) if known else None,
        )
    except checking.AnswerNotRecorded as failed:
        # Stripe answered; only recording failed. The retry records that answer.
        raise self.retry(
            kwargs={"credential_id": credential_id, "known": failed.known.as_task_argument()},
            countdown=DATABASE_RETRY_SECONDS,
        ) from None
    except (OperationalError, InterfaceError):
        # Failed before Stripe was asked (claiming the key): simply try again.
        raise self.retry(countdown=DATABASE_RETRY_SECONDS) from None
    if result.retry_in is not None:
        # A short countdown (seconds to minutes): safe on Redis, unlike a day-long one. If
        # this publish fails, the stale sweep queues the key again.
        raise self.retry(countdown=result.retry_in)


@shared_task(ignore_result=True)
def verifications_requeue_stale() -> None:
    stale.verifications_requeue_stale()


@shared_task(ignore_result=True)
def reverifications_queue_due() -> None:
    rechecks.reverifications_queue_due()


@shared_task(ignore_result=True, acks_late=True)
def reverify_credential(credential_id: int) -> None:
    rechecks.credential_reverify(credential_id=credential_id)


@shared_task(ignore_result=True)
def followups_send_due() -> None:
    helpdesk.followups_send_due()
