"""Celery tasks of the helpdesk side: thin, they take ids and call a service."""

from config.celery_app import app
from merchants import services


@app.task(ignore_result=True)
def send_email(email_id: int) -> None:
    services.email_send(email_id=email_id)


@app.task(ignore_result=True)
def emails_send_due() -> None:
    services.emails_send_due()


@app.task(ignore_result=True)
def followups_send_due() -> None:
    services.followups_send_due()
