"""Faults on the real pipeline: the broker down at submission, a task delivered twice, and a
mail server that refuses and then accepts. Each time, nothing is lost and nothing is doubled.

A worker killed in the middle of a verification is not simulated here: the stale sweep that
recovers it is covered by the service tests.
"""

import logging
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery_app import app as celery_app
from core.queue import enqueue
from credentials.models import Credential, VerificationState
from credentials.services.notifications import credential_topic
from credentials.services.stale import verifications_requeue_stale
from credentials.services.submission import VERIFY_TASK
from mail.models import OutgoingEmail
from tests.e2e.leaks import Secret
from tests.e2e.waiting import wait_until
from tests.factories import CredentialFactory, fake_key

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# Nothing listens on the discard port: connections are refused at once.
UNREACHABLE_BROKER_URL = "redis://127.0.0.1:9/0"


@contextmanager
def broker_unreachable():
    """Within this block, publishing fails as it does with Redis down.

    Only publishing is redirected, to a connection of its own (no pooled connection to the
    real Redis is involved); the running worker keeps consuming, as a worker on another
    machine would once the broker is back.
    """
    publish = celery_app.send_task

    def send_task_to_unreachable_broker(*args, **kwargs):
        with celery_app.connection_for_write(UNREACHABLE_BROKER_URL) as connection:
            return publish(*args, connection=connection, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(celery_app, "send_task", send_task_to_unreachable_broker)
        yield


def account_requests(fake_stripe, secret) -> int:
    return sum(request.path == "/v1/account" for request in fake_stripe.requests_for(secret))


def test_a_submission_while_the_broker_is_down_succeeds_and_the_sweep_verifies_it_once(
    submit_keys,
    merchant,
    owner,
    fake_stripe,
    smtp_sink,
    celery_worker,
    caplog,
):
    publishable, secret = fake_key("pk_test_"), Secret(fake_key("sk_test_"))

    with caplog.at_level(logging.WARNING, logger="core.queue"), broker_unreachable():
        response = submit_keys(publishable_key=publishable, secret_key=secret)

    assert response.status_code == 302
    assert any(
        record.getMessage().startswith(f"Could not queue {VERIFY_TASK}")
        for record in caplog.records
    ), "The publish did not fail: the broker was reachable after all."
    credential = Credential.objects.get(merchant=merchant)
    assert credential.verification_state == VerificationState.PENDING
    celery_worker.wait_until_idle()
    assert account_requests(fake_stripe, secret) == 0
    assert smtp_sink.received == []

    # The broker is back, and the key has been pending for longer than VERIFY_STALE_AFTER.
    # The clock is moved by dating the submission back, not by the sweep's `now`: the sweep
    # stamps the next attempt with its `now`, and a worker on the real clock would take a
    # future stamp as "not due yet" and leave the key alone.
    stale_since = timezone.now() - timedelta(seconds=settings.VERIFY_STALE_AFTER + 1)
    Credential.objects.filter(pk=credential.pk).update(
        submitted_at=stale_since, verification_next_attempt_at=stale_since
    )
    assert verifications_requeue_stale() == 1

    wait_until(
        lambda: smtp_sink.received_by(settings.HELPDESK_EMAIL),
        what="the helpdesk's mail about the recovered submission",
    )
    celery_worker.wait_until_idle()

    credential.refresh_from_db()
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.verification_attempts == 1
    assert account_requests(fake_stripe, secret) == 1
    assert len(smtp_sink.received_by(settings.HELPDESK_EMAIL)) == 1
    assert len(smtp_sink.received_by(owner.email)) == 1


def test_a_verification_queued_twice_asks_stripe_once_and_mails_each_side_once(
    merchant, owner, fake_stripe, smtp_sink, celery_worker
):
    secret = Secret(fake_key("sk_test_"))
    credential = CredentialFactory(merchant=merchant, submitted_by=owner, secret_value=secret)

    # Both deliveries are taken at once: the worker runs two tasks in parallel.
    assert enqueue(VERIFY_TASK, credential.pk)
    assert enqueue(VERIFY_TASK, credential.pk)

    wait_until(
        lambda: len(celery_worker.runs(VERIFY_TASK)) == 2, what="both verification tasks to run"
    )
    wait_until(lambda: len(smtp_sink.received) >= 2, what="the merchant's and helpdesk's mail")
    celery_worker.wait_until_idle()

    assert [run[2] for run in celery_worker.runs(VERIFY_TASK)] == ["SUCCESS", "SUCCESS"]
    credential.refresh_from_db()
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.verification_attempts == 1
    assert account_requests(fake_stripe, secret) == 1
    assert len(smtp_sink.received_by(owner.email)) == 1
    assert len(smtp_sink.received_by(settings.HELPDESK_EMAIL)) == 1
    assert OutgoingEmail.objects.filter(topic=credential_topic(credential.pk)).count() == 2


def test_a_mail_the_server_refuses_is_sent_once_later_and_never_marked_sent_before(
    submit_keys, owner, smtp_sink, celery_worker
):
    smtp_sink.refuse_next()  # "451 Try again later" for the first message, whichever it is

    response = submit_keys(
        publishable_key=fake_key("pk_test_"), secret_key=Secret(fake_key("sk_test_"))
    )
    assert response.status_code == 302

    wait_until(
        lambda: OutgoingEmail.objects.exclude(last_error="").exists(),
        what="the refused mail to be recorded as failed",
    )
    wait_until(lambda: len(smtp_sink.received) == 1, what="the other mail to be delivered")
    celery_worker.wait_until_idle()

    refused = OutgoingEmail.objects.exclude(last_error="").get()
    assert smtp_sink.refused == 1
    assert refused.state == OutgoingEmail.State.PENDING
    assert refused.sent_at is None
    assert refused.attempts == 1
    assert refused.last_error == "SMTPDataError"
    (delivered,) = smtp_sink.received
    assert refused.to[0] not in delivered.recipients

    # The periodic sweep, once the retry is due, through the worker.
    wait_until(
        lambda: OutgoingEmail.objects.filter(
            pk=refused.pk, next_attempt_at__lte=timezone.now()
        ).exists(),
        what="the refused mail's retry to fall due",
    )
    assert enqueue("mail.tasks.emails_send_due")

    wait_until(lambda: len(smtp_sink.received) == 2, what="the refused mail to be sent again")
    celery_worker.wait_until_idle()

    assert len(smtp_sink.received_by(owner.email)) == 1
    assert len(smtp_sink.received_by(settings.HELPDESK_EMAIL)) == 1
    refused.refresh_from_db()
    assert refused.state == OutgoingEmail.State.SENT
    assert refused.sent_at is not None
    assert refused.attempts == 2
    assert refused.last_error == ""
