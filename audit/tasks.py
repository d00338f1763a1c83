"""Celery tasks of the audit trail: thin, they call a service."""

from celery import shared_task

from audit.refusals import refusal_windows_close


@shared_task(ignore_result=True)
def refusal_windows_close_due() -> None:
    """Sum up the refusal windows that are over (see `audit.refusals`)."""
    refusal_windows_close()
