"""Celery tasks of the outbox: thin, they take ids and call a service."""

from celery import shared_task

from mail import services


@shared_task(ignore_result=True)
def send_email(email_id: int) -> None:
    services.email_send(email_id=email_id)


@shared_task(ignore_result=True)
def emails_send_due() -> None:
    services.emails_send_due()
