"""Webhook delivery (issue #13): what the integrator's endpoint receives, signed as Stripe signs
its own, and the outbox's guarantees: sent after commit, retried with back-off, never marked
delivered before a 2xx, sent once even by two workers, given up after the window, swept when a
task was lost, and never sent to a revoked account or a switched-off endpoint.

The endpoint is a real HTTP server on 127.0.0.1 (`tests/webhook_receiver.py`); keys go through
the real credential services and are verified against the fake Stripe and Kashier. The broker,
the only thing that leaves the process, is replaced by a recorder, and `run_worker` plays the
worker: it runs the webhook tasks that were queued.
"""

import hashlib
import hmac
import inspect
import json
import logging
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from audit.models import AuditEvent
from audit.refusals import Refused
from config import celery_app
from credentials.models import Credential, VerificationState
from credentials.providers import provider_for
from credentials.services.events import credential_event
from credentials.services.lifecycle import credential_revoke
from credentials.services.submission import credential_submit
from credentials.services.verification import credential_verify
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.scopes import EventType, Scope
from integrations.services.accounts import service_account_create, service_account_revoke
from integrations.services.delivery import (
    DeliveryOutcome,
    deliveries_cancel,
    delivery_send,
    webhook_sign,
)
from integrations.services.events import DELIVER_TASK
from integrations.services.redelivery import deliveries_send_due, delivery_resend
from integrations.tasks import deliver_webhook, webhooks_send_due
from tests.factories import CredentialFactory, fake_key
from tests.fake_kashier import MERCHANT_ID, fake_payment_api_key, fake_secret_key
from tests.helpers import assert_no_secret, reload
from tests.webhook_receiver import PATH, Reply, WebhookReceiver

State = WebhookDelivery.State
# How far a signature's timestamp may be from the receiver's clock, as Stripe's libraries allow.
TOLERANCE_SECONDS = 300


def signature_valid(header: str, body: bytes, secret: str, *, now: float | None = None) -> bool:
    """Check a `Keyhouse-Signature` header as an integrator would, written apart from the code
    under test: HMAC-SHA256 of "<t>.<raw body>" with the signing secret, equal to `v1`, and
    `t` within TOLERANCE_SECONDS of now."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    fresh = abs((now or time.time()) - timestamp) <= TOLERANCE_SECONDS
    return fresh and hmac.compare_digest(expected, fields["v1"])


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def broker(monkeypatch):
    """Record what would be published to the broker, as (task name, args)."""
    queued = []

    def send_task(name, args=None, kwargs=None, **options):
        queued.append((name, tuple(args or ())))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return queued


@pytest.fixture
def run_worker(broker):
    """Return a function that runs the webhook tasks queued so far, in order, as the worker
    does; it returns how many it ran."""

    def run() -> int:
        tasks = [args for name, args in broker if name == DELIVER_TASK]
        broker[:] = [task for task in broker if task[0] != DELIVER_TASK]
        for args in tasks:
            deliver_webhook(*args)
        return len(tasks)

    return run


@pytest.fixture
def endpoint(receiver, merchant):
    """A service account serving `merchant`, its endpoint the receiver; with its signing
    secret as `endpoint.secret`."""
    account, _, secret = service_account_create(
        name="pos-backend",
        scopes=[Scope.CREDENTIALS_READ],
        merchants=[merchant],
        webhook_url=receiver.url,
        actor=None,
    )
    endpoint = account.endpoints.get()
    endpoint.secret = secret
    return endpoint


@pytest.fixture
def emit(merchant, owner, django_capture_on_commit_callbacks):
    """Return a function writing a `credential.submitted` event about a new key of `merchant`
    as a service would (its sends queued after commit); it returns the delivery."""

    def make(event_type=EventType.SUBMITTED) -> WebhookDelivery:
        credential = CredentialFactory(merchant=merchant, submitted_by=owner)
        with django_capture_on_commit_callbacks(execute=True):
            credential_event(credential, event_type)
        return WebhookDelivery.objects.latest("pk")

    return make


def send_when_due(delivery: WebhookDelivery) -> DeliveryOutcome:
    """Wait for the delivery's back-off to pass, then make the next attempt as a worker."""
    wait = (reload(delivery).next_attempt_at - timezone.now()).total_seconds()
    if wait > 0:
        time.sleep(wait + 0.01)
    return delivery_send(delivery.pk)


# What the endpoint receives


def test_signature_is_checked_by_an_independent_hmac_over_the_raw_body_received(
    endpoint, receiver, emit, run_worker
):
    emit()
    run_worker()

    [request] = receiver.received
    header = request.header("Keyhouse-Signature")
    assert signature_valid(header, request.body, endpoint.secret)
    timestamp = int(dict(part.split("=", 1) for part in header.split(","))["t"])
    assert abs(time.time() - timestamp) < 60


def test_a_tampered_body_or_another_secret_fails_the_signature_check(
    endpoint, receiver, emit, run_worker
):
    emit()
    run_worker()

    [request] = receiver.received
    header = request.header("Keyhouse-Signature")
    tampered = request.body.replace(b'"credential.submitted"', b'"credential.verified"')
    assert tampered != request.body
    assert not signature_valid(header, tampered, endpoint.secret)
    assert not signature_valid(header, request.body + b" ", endpoint.secret)
    assert not signature_valid(header, request.body, "whsec_" + "x" * 43)


def test_an_old_signature_fails_the_timestamp_check():
    body = b'{"id":"evt_1"}'
    old = int(time.time()) - TOLERANCE_SECONDS - 60

    assert signature_valid(webhook_sign("whsec_k", int(time.time()), body), body, "whsec_k")
    assert not signature_valid(webhook_sign("whsec_k", old, body), body, "whsec_k")


def test_request_is_a_json_post_naming_the_event_and_the_sender(
    endpoint, receiver, emit, run_worker
):
    delivery = emit()
    run_worker()

    [request] = receiver.received
    assert request.method == "POST"
    assert request.path == PATH
    assert request.header("Content-Type") == "application/json"
    assert request.header("User-Agent") == "Keyhouse-Webhooks/1"
    assert request.header("Keyhouse-Event-Id") == delivery.event.event_id
    assert request.json()["id"] == delivery.event.event_id


def test_body_is_exactly_id_type_created_and_data_with_the_merchant_and_the_key(
    endpoint, receiver, emit, run_worker, merchant
):
    delivery = emit()
    run_worker()

    body = receiver.received[0].json()
    assert set(body) == {"id", "type", "created", "data"}
    assert set(body["data"]) == {"merchant", "credential"}
    assert body["type"] == "credential.submitted"
    assert body["created"] == int(delivery.event.created_at.timestamp())
    assert body["data"]["merchant"] == {"slug": merchant.slug, "name": merchant.name}
    credential = Credential.objects.get(pk=body["data"]["credential"]["id"])
    assert body["data"]["credential"]["hint"] == credential.secret_hint


# A whole key's life, for each provider: in order, and never a secret


def submitted_keys(provider: str, mode: str = "test") -> tuple[object, dict]:
    """Return keys as the provider's form accepts them, and their form data."""
    if provider == "stripe":
        data = {"publishable_key": fake_key(f"pk_{mode}_"), "secret_key": fake_key(f"sk_{mode}_")}
    else:
        data = {
            "merchant_id": MERCHANT_ID,
            "secret_key": fake_secret_key(),
            "payment_api_key": fake_payment_api_key(),
            "mode": mode,
        }
    spec = provider_for(provider)
    form = spec.form_class(data={**data, "requested_integrations": ["online_payments"]})
    assert form.is_valid(), form.errors
    return spec.submitted_keys(form.cleaned_data), data


@pytest.mark.parametrize("provider", ["stripe", "kashier"])
def test_a_keys_whole_life_reaches_the_endpoint_in_order_and_never_a_secret(
    provider,
    endpoint,
    receiver,
    merchant,
    owner,
    fake_stripe,
    fake_kashier,
    run_worker,
    django_capture_on_commit_callbacks,
):
    secrets_sent = []

    def submit() -> Credential:
        keys, data = submitted_keys(provider)
        secrets_sent.extend(value for name, value in data.items() if "key" in name)
        if provider == "kashier":
            fake_kashier["test"].accept(keys.secret)
        with django_capture_on_commit_callbacks(execute=True):
            credential = credential_submit(
                merchant=merchant,
                keys=keys,
                requested_integrations=["online_payments"],
                note="",
                actor=owner,
            )
        run_worker()
        return credential

    def verify(credential: Credential) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            result = credential_verify(credential_id=credential.pk)
        assert result.state == VerificationState.VERIFIED
        run_worker()

    first = submit()
    verify(first)
    second = submit()  # the roll: a newer key of the same provider and mode
    verify(second)
    with django_capture_on_commit_callbacks(execute=True):
        credential_revoke(credential=second, actor=owner, reason="Pasted into a public chat")
    run_worker()

    received = [request.json() for request in receiver.received]
    assert [(body["type"], body["data"]["credential"]["id"]) for body in received] == [
        ("credential.submitted", first.pk),
        ("credential.verified", first.pk),
        ("credential.submitted", second.pk),
        ("credential.verified", second.pk),
        ("credential.superseded", first.pk),
        ("credential.revoked", second.pk),
    ]
    assert all(
        signature_valid(r.header("Keyhouse-Signature"), r.body, endpoint.secret)
        for r in receiver.received
    )
    everything = "\n".join(r.body.decode() + json.dumps(r.headers) for r in receiver.received)
    for secret in secrets_sent:
        if secret.startswith("pk_"):
            continue  # a publishable key is public by design
        assert_no_secret(everything, secret)
    assert endpoint.secret not in everything
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {State.DELIVERED}


# Retries, and never delivered before a 2xx


def test_a_500_and_a_timeout_are_retried_until_a_2xx_delivers_it_once(
    endpoint, receiver, emit, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.2
    receiver.script(Reply(500), Reply(200, delay=1.0), Reply(503), Reply(200))
    delivery = emit()
    gaps, errors = [], []

    for _ in range(3):
        assert send_when_due(delivery) == DeliveryOutcome.RETRYING
        row = reload(delivery)
        gaps.append((row.next_attempt_at - timezone.now()).total_seconds())
        errors.append((row.state, row.last_status, row.last_error, row.delivered_at))
    before_the_2xx = timezone.now()
    assert send_when_due(delivery) == DeliveryOutcome.DELIVERED

    assert errors == [
        (State.PENDING, 500, "HTTP 500", None),
        (State.PENDING, None, "timed out", None),
        (State.PENDING, 503, "HTTP 503", None),
    ]
    # Doubling from the base, half of each wait random: [0.1, 0.2], [0.2, 0.4], [0.4, 0.8].
    for attempt, gap in enumerate(gaps, start=1):
        full = 0.2 * 2 ** (attempt - 1)
        assert full / 2 - 0.05 <= gap <= full, (attempt, gaps)
    assert gaps[2] > gaps[0]
    row = reload(delivery)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        State.DELIVERED,
        4,
        200,
        "",
    )
    assert row.delivered_at >= before_the_2xx
    assert [request.answer.status for request in receiver.wait_for(4)] == [500, 200, 503, 200]


def test_a_delivered_event_is_not_sent_again_by_a_repeated_task_or_the_sweep(
    endpoint, receiver, emit, broker, run_worker
):
    delivery = emit()
    run_worker()

    assert delivery_send(delivery.pk) == DeliveryOutcome.SKIPPED
    assert deliveries_send_due(now=timezone.now() + timedelta(days=1)) == 0
    assert len(receiver.received) == 1
    assert reload(delivery).attempts == 1


def test_a_200_after_the_timeout_is_a_failed_attempt(endpoint, receiver, emit, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.script(Reply(200, delay=1.0))
    delivery = emit()

    assert delivery_send(delivery.pk) == DeliveryOutcome.RETRYING

    row = reload(delivery)
    assert (row.state, row.delivered_at, row.last_status, row.last_error) == (
        State.PENDING,
        None,
        None,
        "timed out",
    )
    assert [request.answer.status for request in receiver.received] == [200]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_other_client_errors_are_retried_too(endpoint, receiver, emit, status):
    # The receiver may be misconfigured for a while (a wrong secret, a route not live yet).
    receiver.script(Reply(status), Reply(200))
    delivery = emit()

    assert delivery_send(delivery.pk) == DeliveryOutcome.RETRYING
    assert (reload(delivery).last_status, reload(delivery).last_error) == (status, f"HTTP {status}")
    assert send_when_due(delivery) == DeliveryOutcome.DELIVERED


def test_a_redirect_is_not_followed_and_is_retried(endpoint, receiver, emit):
    receiver.script(Reply(301, headers=(("Location", receiver.url + "/moved"),)))
    delivery = emit()

    assert delivery_send(delivery.pk) == DeliveryOutcome.RETRYING

    assert [request.path for request in receiver.wait_for(1)] == [PATH]
    row = reload(delivery)
    assert (row.state, row.last_status) == (State.PENDING, 301)
    assert row.last_error == "HTTP 301: redirects are not followed"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_connection_is_retried_and_named(endpoint, emit):
    endpoint.url = f"http://127.0.0.1:{closed_port()}/hooks"
    endpoint.save(update_fields=["url"])
    delivery = emit()

    assert delivery_send(delivery.pk) == DeliveryOutcome.RETRYING

    row = reload(delivery)
    assert (row.state, row.attempts, row.last_status) == (State.PENDING, 1, None)
    assert row.last_error == "connection refused"


def test_last_error_and_logs_hold_neither_the_answer_nor_the_signing_secret(
    endpoint, receiver, emit, caplog
):
    leaky = fake_key("sk_live_")
    receiver.script(
        Reply(500, body=json.dumps({"error": f"bad {leaky} {endpoint.secret}"}).encode())
    )
    delivery = emit()

    with caplog.at_level(logging.DEBUG):
        delivery_send(delivery.pk)

    row = reload(delivery)
    assert row.last_error == "HTTP 500"
    for text in (caplog.text, row.last_error):
        assert endpoint.secret not in text
        assert leaky not in text
        assert "bad" not in text


# Giving up, and sending again


def test_a_delivery_is_given_up_after_the_window_and_sent_again_on_request(
    endpoint,
    receiver,
    emit,
    settings,
    superuser,
    broker,
    run_worker,
    django_capture_on_commit_callbacks,
):
    settings.WEBHOOK_GIVE_UP_AFTER = 1
    receiver.script(Reply(500))
    delivery = emit()

    outcomes = [send_when_due(delivery)]
    while outcomes[-1] == DeliveryOutcome.RETRYING and len(outcomes) < 50:
        outcomes.append(send_when_due(delivery))

    row = reload(delivery)
    assert outcomes[-1] == DeliveryOutcome.FAILED
    assert len(outcomes) >= 3
    assert row.state == State.FAILED
    assert row.last_error == (
        f"Gave up: no 2xx answer in 1 second ({len(outcomes)} attempts); the last: HTTP 500"
    )
    assert row.delivered_at is None
    # Given up means given up: neither a repeated task nor the sweep sends it.
    assert delivery_send(delivery.pk) == DeliveryOutcome.SKIPPED
    assert deliveries_send_due(now=timezone.now() + timedelta(days=1)) == 0
    sent_before = len(receiver.received)

    receiver.script(Reply(200))
    broker.clear()
    with django_capture_on_commit_callbacks(execute=True):
        delivery_resend(delivery=row, actor=superuser)
        assert broker == []  # queued once the resend is committed
    run_worker()

    row = reload(delivery)
    assert (row.state, row.last_status, row.last_error) == (State.DELIVERED, 200, "")
    assert len(receiver.received) == sent_before + 1
    resent = AuditEvent.objects.get(action=AuditEvent.Action.WEBHOOK_RESENT)
    assert resent.actor == superuser
    assert resent.target == f"webhook_delivery:{delivery.pk}"
    assert resent.details["was"] == State.FAILED
    assert resent.details["event"] == delivery.event.event_id


def test_a_delivered_event_can_be_sent_again_as_a_new_attempt(
    endpoint, receiver, emit, superuser, run_worker, django_capture_on_commit_callbacks
):
    delivery = emit()
    run_worker()

    with django_capture_on_commit_callbacks(execute=True):
        delivery_resend(delivery=reload(delivery), actor=superuser)
    run_worker()

    first, second = receiver.received
    assert first.body == second.body
    assert reload(delivery).attempts == 2
    assert reload(delivery).state == State.DELIVERED


def test_sending_again_is_refused_and_audited_for_a_helpdesk_agent(
    endpoint, receiver, emit, helpdesk_user, broker
):
    delivery = emit()
    broker.clear()

    with pytest.raises(Refused):
        delivery_resend(delivery=delivery, actor=helpdesk_user)

    assert broker == []
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.WEBHOOK_RESENT).exists()
    refusal = AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED)
    assert refusal.actor == helpdesk_user
    assert refusal.details["permission"] == "integrations.manage_service_accounts"


# No deliveries to a revoked account or a switched-off endpoint


def revoke_account(endpoint):
    service_account_revoke(account=endpoint.account, actor=None)


def switch_off(endpoint):
    endpoint.active = False
    endpoint.save(update_fields=["active"])


def stop_serving(endpoint):
    endpoint.account.merchants.clear()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (revoke_account, "Not sent: the service account was revoked."),
        (switch_off, "Not sent: the endpoint was switched off."),
        (stop_serving, "Not sent: the service account no longer serves this merchant."),
    ],
    ids=["account-revoked", "endpoint-off", "merchant-dropped"],
)
def test_waiting_deliveries_are_not_sent_once_the_endpoint_may_not_receive_them(
    endpoint, receiver, emit, run_worker, change, why
):
    delivery = emit()
    change(endpoint)

    run_worker()

    assert receiver.received == []
    row = reload(delivery)
    assert (row.state, row.attempts, row.last_error) == (State.FAILED, 0, why)


def test_a_revoked_account_gets_no_new_events_and_cannot_be_sent_old_ones_again(
    endpoint, receiver, emit, run_worker, superuser
):
    delivered = emit()
    run_worker()
    revoke_account(endpoint)

    emit()

    assert WebhookDelivery.objects.count() == 1
    with pytest.raises(ValidationError, match="the service account was revoked"):
        delivery_resend(delivery=delivered, actor=superuser)
    assert len(receiver.received) == 1


def test_deliveries_cancel_fails_the_waiting_ones_and_leaves_the_delivered_alone(
    endpoint, receiver, emit, run_worker
):
    delivered = emit()
    run_worker()
    waiting = emit()

    cancelled = deliveries_cancel(
        endpoints=WebhookEndpoint.objects.filter(pk=endpoint.pk),
        why="the endpoint was switched off",
    )

    assert cancelled == 1
    assert reload(delivered).state == State.DELIVERED
    row = reload(waiting)
    assert (row.state, row.last_error) == (State.FAILED, "Not sent: the endpoint was switched off.")
    run_worker()
    assert len(receiver.received) == 1


def test_a_signing_secret_that_cannot_be_decrypted_sends_nothing_and_is_retried(
    endpoint, receiver, emit
):
    delivery = emit()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_webhookendpoint SET signing_secret = %s WHERE id = %s",
            ["gAAAAABnot-a-token-of-ours", endpoint.pk],
        )

    assert delivery_send(delivery.pk) == DeliveryOutcome.RETRYING

    assert receiver.received == []
    row = reload(delivery)
    assert (row.state, row.last_status) == (State.PENDING, None)
    assert row.last_error == "signing secret cannot be decrypted (FIELD_ENCRYPTION_KEY)"


# The sweep


def test_sweep_sends_a_delivery_whose_task_was_lost(
    endpoint,
    receiver,
    merchant,
    owner,
    monkeypatch,
    run_worker,
    broker,
    django_capture_on_commit_callbacks,
):
    def broker_refuses(name, args=None, kwargs=None, **options):
        raise BrokerDown("Connection refused.")

    credential = CredentialFactory(merchant=merchant, submitted_by=owner)
    with monkeypatch.context() as down:
        down.setattr(celery_app, "send_task", broker_refuses)
        with django_capture_on_commit_callbacks(execute=True):
            credential_event(credential, EventType.SUBMITTED)
    delivery = WebhookDelivery.objects.get()

    assert deliveries_send_due() == 1
    assert broker == [(DELIVER_TASK, (delivery.pk,))]
    # Handed out: the next sweep does not queue it again while its task is on the way.
    assert deliveries_send_due() == 0
    run_worker()

    assert reload(delivery).state == State.DELIVERED
    assert len(receiver.received) == 1


def test_sweep_releases_a_claim_left_by_a_worker_that_died(
    endpoint, receiver, emit, settings, broker, run_worker
):
    delivery = emit()
    broker.clear()
    stale = timedelta(seconds=settings.WEBHOOK_STALE_AFTER)

    def claimed(ago: timedelta) -> None:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=State.SENDING, claimed_at=timezone.now() - ago, attempts=1
        )

    claimed(stale / 2)
    assert deliveries_send_due() == 0
    assert delivery_send(delivery.pk) == DeliveryOutcome.SKIPPED  # a fresh claim is respected
    claimed(stale + timedelta(seconds=1))
    assert deliveries_send_due() == 1
    row = reload(delivery)
    assert (row.state, row.last_error) == (
        State.PENDING,
        "No answer recorded: the worker sending it stopped",
    )
    run_worker()

    row = reload(delivery)
    assert (row.state, row.attempts) == (State.DELIVERED, 2)
    assert len(receiver.received) == 1


def test_sweep_sends_a_retry_when_it_is_due_and_not_before(
    endpoint, receiver, emit, settings, broker, run_worker
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 60
    receiver.script(Reply(500), Reply(200))
    delivery = emit()
    broker.clear()
    assert delivery_send(delivery.pk) == DeliveryOutcome.RETRYING
    due = reload(delivery).next_attempt_at

    assert deliveries_send_due() == 0
    assert delivery_send(delivery.pk) == DeliveryOutcome.SKIPPED  # a repeated task waits too
    assert 30 <= (due - timezone.now()).total_seconds() <= 60
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhooks_send_due() is None
    assert broker == [(DELIVER_TASK, (delivery.pk,))]
    run_worker()

    assert reload(delivery).state == State.DELIVERED
    assert [request.answer.status for request in receiver.received] == [500, 200]


# Tasks


def test_tasks_take_ids_only_and_return_nothing(endpoint, emit, broker):
    delivery = emit()

    assert list(inspect.signature(deliver_webhook.run).parameters) == ["delivery_id"]
    assert list(inspect.signature(webhooks_send_due.run).parameters) == []
    assert deliver_webhook(delivery.pk) is None
    assert deliver_webhook.acks_late
    assert deliver_webhook.ignore_result


def test_a_committed_event_queues_one_send_per_endpoint(endpoint, emit, broker):
    delivery = emit()

    assert broker == [(DELIVER_TASK, (delivery.pk,))]


# Two workers at once (PostgreSQL: threads need connections of their own to a shared database;
# serialized_rollback restores the rows the migrations wrote, which the flush after a
# transactional test empties)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_with_the_same_delivery_send_it_once(receiver, merchant, owner, broker):
    service_account_create(
        name="pos-backend",
        scopes=[Scope.CREDENTIALS_READ],
        merchants=[merchant],
        webhook_url=receiver.url,
        actor=None,
    )
    receiver.script(Reply(200, delay=0.3))
    credential = CredentialFactory(merchant=merchant, submitted_by=owner)
    credential_event(credential, EventType.SUBMITTED)  # autocommit: committed at once
    delivery = WebhookDelivery.objects.get()
    start = threading.Barrier(2)
    outcomes = []

    def worker():
        try:
            start.wait()
            outcomes.append(delivery_send(delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(outcomes) == sorted([DeliveryOutcome.DELIVERED, DeliveryOutcome.SKIPPED])
    assert len(receiver.received) == 1
    row = reload(delivery)
    assert (row.state, row.attempts) == (State.DELIVERED, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweeps_at_once_queue_a_lost_delivery_once(receiver, merchant, owner, broker):
    service_account_create(
        name="pos-backend",
        scopes=[Scope.CREDENTIALS_READ],
        merchants=[merchant],
        webhook_url=receiver.url,
        actor=None,
    )
    credential = CredentialFactory(merchant=merchant, submitted_by=owner)
    credential_event(credential, EventType.SUBMITTED)
    broker.clear()  # as if its task was lost
    start = threading.Barrier(2)
    counts = []

    def sweep():
        try:
            start.wait()
            counts.append(deliveries_send_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(counts) == [0, 1]
    assert len(broker) == 1
