"""Celery tasks for credentials: ids in, None out, retries on outages, queued on commit.

The broker is the only thing stubbed (it is what leaves the process): `app.send_task` is
replaced by a recorder, or by one that fails as kombu does when the broker is down. Stripe is
the fake server, reached through the real SDK.
"""

import inspect
import logging
from datetime import timedelta

import pytest
from celery.signals import task_retry
from django.db import OperationalError as DatabaseOperationalError
from django.urls import reverse
from kombu.exceptions import OperationalError

from config import celery_app
from credentials.models import Credential, VerificationState
from credentials.services import stale, verification
from credentials.services.submission import VERIFY_TASK
from credentials.tasks import verifications_requeue_stale, verify_credential
from tests.factories import CredentialFactory, fake_key
from tests.fake_stripe import account_reply, error_reply
from tests.helpers import reload


@pytest.fixture
def sent_tasks(monkeypatch):
    """Record every task published to the broker as (name, args, kwargs)."""
    sent = []

    def send_task(name, args=None, kwargs=None, **options):
        sent.append((name, tuple(args or ()), kwargs or {}))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return sent


@pytest.fixture
def broker_down(monkeypatch):
    def send_task(name, args=None, kwargs=None, **options):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(celery_app, "send_task", send_task)


@pytest.fixture
def retries():
    """Record the Retry of every task retry (its `when` is the countdown asked for)."""
    recorded = []

    def record(sender=None, reason=None, **kwargs):
        recorded.append(reason)

    task_retry.connect(record, weak=False)
    yield recorded
    task_retry.disconnect(record)


@pytest.fixture
def credential(merchant, owner):
    key = fake_key("sk_test_")
    return CredentialFactory(merchant=merchant, secret_value=key, submitted_by=owner)


# What goes in and out


def test_tasks_take_ids_only():
    # `known` is Stripe's answer for a retry after the database failed: facts, never a key.
    assert list(inspect.signature(verify_credential.run).parameters) == [
        "credential_id",
        "known",
    ]
    assert list(inspect.signature(verifications_requeue_stale.run).parameters) == []


def test_a_database_failure_while_recording_is_retried_without_asking_stripe_again(
    fake_stripe, credential, monkeypatch, retries
):
    record = verification.locked_for_recording
    failures = [DatabaseOperationalError("the server closed the connection unexpectedly")]

    def flaky(credential_id, **questions):
        if failures:
            raise failures.pop()
        return record(credential_id, **questions)

    monkeypatch.setattr(verification, "locked_for_recording", flaky)

    result = verify_credential.apply(args=[credential.pk])

    assert result.successful()
    assert reload(credential).verification_state == VerificationState.VERIFIED
    assert len(fake_stripe.requests_for(credential.secret)) == 1  # asked once, recorded later
    [retry] = retries
    assert credential.secret not in repr(retry)


def test_a_database_failure_before_stripe_was_asked_is_retried(
    fake_stripe, credential, monkeypatch, retries
):
    claim = verification._claim_for_verification
    failures = [DatabaseOperationalError("could not connect to server")]

    def flaky(credential_id, now):
        if failures:
            raise failures.pop()
        return claim(credential_id, now)

    monkeypatch.setattr(verification, "_claim_for_verification", flaky)

    verify_credential.apply(args=[credential.pk])

    assert reload(credential).verification_state == VerificationState.VERIFIED
    assert len(retries) == 1


def test_verify_task_verifies_and_returns_none(fake_stripe, credential):
    result = verify_credential.apply(args=[credential.pk])

    assert result.successful()
    assert result.get() is None
    assert reload(credential).verification_state == VerificationState.VERIFIED


def test_verify_task_for_a_decided_credential_returns_none_and_asks_nothing(
    fake_stripe, credential
):
    Credential.objects.filter(pk=credential.pk).update(
        verification_state=VerificationState.VERIFIED
    )

    result = verify_credential.apply(args=[credential.pk])

    assert result.get() is None
    assert fake_stripe.requests == []


def test_requeue_task_returns_none_and_queues_stale_credentials(credential, settings, sent_tasks):
    Credential.objects.filter(pk=credential.pk).update(
        submitted_at=credential.submitted_at - timedelta(seconds=settings.VERIFY_STALE_AFTER + 1)
    )

    result = verifications_requeue_stale.apply()

    assert result.get() is None
    assert sent_tasks == [(VERIFY_TASK, (credential.pk,), {})]


# Retries


def test_verify_task_asks_celery_to_retry_after_a_transient_failure(
    fake_stripe, credential, settings, retries
):
    # A long back-off: the eager re-run that apply() makes at once finds the key not yet due.
    settings.VERIFY_RETRY_BASE_SECONDS = 60
    fake_stripe.on(credential.secret, "/v1/account", error_reply("rate_limited", credential.secret))

    result = verify_credential.apply(args=[credential.pk])

    assert result.get() is None
    [retry] = retries
    assert 30 <= retry.when <= 60
    assert credential.secret not in str(retry)
    credential = reload(credential)
    assert credential.verification_state == VerificationState.PENDING
    assert credential.verification_attempts == 1
    assert len(fake_stripe.requests_for(credential.secret)) == 1


def test_verify_task_retried_after_a_rate_limit_verifies_the_key(fake_stripe, credential, retries):
    key = credential.secret
    fake_stripe.on(key, "/v1/account", [error_reply("rate_limited", key), account_reply(key)])

    result = verify_credential.apply(args=[credential.pk])

    assert result.get() is None
    assert len(retries) == 1
    credential = reload(credential)
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.verification_attempts == 2


def test_verify_task_stops_retrying_after_the_last_attempt(
    fake_stripe, credential, settings, retries
):
    key = credential.secret
    fake_stripe.on(key, "/v1/account", error_reply("rate_limited", key))

    result = verify_credential.apply(args=[credential.pk])

    assert result.get() is None
    assert len(retries) == settings.VERIFY_MAX_ATTEMPTS - 1
    assert [retry.when for retry in retries] == sorted(retry.when for retry in retries)
    credential = reload(credential)
    assert credential.verification_state == VerificationState.UNREACHABLE
    assert credential.verification_attempts == settings.VERIFY_MAX_ATTEMPTS


# Queued from a submission


def submit(client, merchant, keys):
    return client.post(
        reverse("credentials:submit", kwargs={"slug": merchant.slug}),
        {
            "publishable_key": keys["publishable"],
            "secret_key": keys["secret"],
            "requested_integrations": ["online_payments"],
            "note": "",
        },
    )


@pytest.fixture
def keys():
    return {"publishable": fake_key("pk_live_"), "secret": fake_key("sk_live_")}


def test_submission_queues_one_verify_task_with_the_id_once_committed(
    owner_client, merchant, keys, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(owner_client, merchant, keys)
        assert sent_tasks == []  # not before the transaction commits

    credential = Credential.objects.get()
    assert response.status_code == 302
    assert sent_tasks == [(VERIFY_TASK, (credential.pk,), {})]


def test_submission_with_the_broker_down_still_succeeds_and_logs_no_secret(
    owner_client,
    merchant,
    keys,
    broker_down,
    caplog,
    settings,
    django_capture_on_commit_callbacks,
):
    with (
        caplog.at_level(logging.WARNING),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = submit(owner_client, merchant, keys)

    credential = Credential.objects.get()
    assert len(callbacks) == 1
    assert response.status_code == 302
    assert response.url == credential.get_absolute_url() + "?submitted=1"
    assert credential.verification_state == VerificationState.PENDING
    assert credential.secret == keys["secret"]
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert VERIFY_TASK in warning.getMessage()
    assert "OperationalError" in warning.getMessage()
    logged = caplog.text + "".join(map(str, warning.args or ())) + warning.getMessage()
    for value in (keys["secret"], keys["secret"][-16:], keys["publishable"]):
        assert value not in logged


def test_key_left_pending_by_a_broker_outage_is_queued_by_the_sweep(
    owner_client, merchant, keys, monkeypatch, settings, django_capture_on_commit_callbacks
):
    def broker_refuses(name, args=None, kwargs=None, **options):
        raise OperationalError("Connection refused.")

    monkeypatch.setattr(celery_app, "send_task", broker_refuses)
    with django_capture_on_commit_callbacks(execute=True):
        submit(owner_client, merchant, keys)
    credential = Credential.objects.get()
    sent = []
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args=None, **options: sent.append((name, args))
    )
    later = credential.submitted_at + timedelta(seconds=settings.VERIFY_STALE_AFTER + 1)

    assert stale.verifications_requeue_stale(now=later) == 1
    assert sent == [(VERIFY_TASK, (credential.pk,))]
