"""The webhook delivery log in the admin (issue #13): what was sent where and how it went,
read-only, never a signing secret, and "Send again" for superusers only, audited.

Deliveries are written by the real services against a real receiver on 127.0.0.1
(`tests/webhook_receiver.py`); the broker is replaced by a recorder.
"""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config import celery_app
from credentials.services.events import credential_event
from integrations.models import WebhookDelivery
from integrations.scopes import EventType, Scope
from integrations.services.accounts import service_account_create
from integrations.services.delivery import delivery_send
from integrations.services.events import DELIVER_TASK
from tests.factories import CredentialFactory, MerchantFactory
from tests.helpers import page_html, page_text, queries_for, reload
from tests.webhook_receiver import Reply, WebhookReceiver

State = WebhookDelivery.State
DELIVERIES = reverse("admin:integrations_webhookdelivery_changelist")
EVENTS = reverse("admin:integrations_webhookevent_changelist")
SAVE_BUTTONS = ('name="_save"', 'name="_continue"', 'name="_addanother"')


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


@pytest.fixture(autouse=True)
def broker(monkeypatch):
    """Record what would be published to the broker, as (task name, args)."""
    queued = []

    def send_task(name, args=None, kwargs=None, **options):
        queued.append((name, tuple(args or ())))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return queued


@pytest.fixture
def signing_secret(receiver):
    """The signing secret of an endpoint (the receiver) of an account serving every merchant."""
    _, _, secret = service_account_create(
        name="billing-service",
        scopes=[Scope.CREDENTIALS_READ],
        all_merchants=True,
        webhook_url=receiver.url,
        actor=None,
    )
    return secret


@pytest.fixture
def emit(signing_secret, owner):
    """Return a function writing an event about a new key of `merchant`; it returns the
    delivery to the receiver."""

    def make(merchant, event_type=EventType.SUBMITTED) -> WebhookDelivery:
        credential = CredentialFactory(merchant=merchant, submitted_by=owner)
        credential_event(credential, event_type)
        return WebhookDelivery.objects.latest("pk")

    return make


@pytest.fixture
def given_up(emit, merchant, receiver, settings):
    """A delivery the receiver answered 500 until it was given up."""
    settings.WEBHOOK_GIVE_UP_AFTER = 0
    receiver.script(Reply(500))
    delivery = emit(merchant)
    delivery_send(delivery.pk)
    delivery = reload(delivery)
    assert delivery.state == State.FAILED
    return delivery


@pytest.fixture
def superuser_client(superuser, client_for):
    return client_for(superuser)


@pytest.fixture
def viewing_agent(helpdesk_user):
    """A helpdesk agent who may read the delivery log (no helpdesk group gives it: granted here
    to prove that reading it is not sending again)."""
    helpdesk_user.user_permissions.add(
        Permission.objects.get(codename="view_webhookdelivery"),
        Permission.objects.get(codename="view_webhookevent"),
    )
    return helpdesk_user


def change_url(delivery) -> str:
    return reverse("admin:integrations_webhookdelivery_change", args=[delivery.pk])


def event_url(event) -> str:
    return reverse("admin:integrations_webhookevent_change", args=[event.pk])


def listed(response) -> list[int]:
    assert response.status_code == 200
    return [obj.pk for obj in response.context["cl"].result_list]


def offered_actions(response) -> set[str]:
    action_form = response.context["action_form"]
    if action_form is None:
        return set()
    return {name for name, _label in action_form.fields["action"].choices if name}


def resend_selected(client, deliveries):
    return client.post(
        DELIVERIES,
        {"action": "resend_selected", "_selected_action": [d.pk for d in deliveries]},
        follow=True,
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_no_signing_secret(text: str, secret: str) -> None:
    token = secret.removeprefix("whsec_")
    assert secret not in text
    assert not [token[i : i + 12] for i in range(len(token) - 11) if token[i : i + 12] in text]


# The log


def test_log_lists_each_delivery_with_its_event_merchant_endpoint_and_outcome(
    superuser_client, given_up, receiver, merchant
):
    response = superuser_client.get(DELIVERIES)

    assert listed(response) == [given_up.pk]
    text = page_text(response)
    for shown in (
        "credential.submitted",
        merchant.slug,
        receiver.url,
        "Given up (retries exhausted)",
        "Gave up: no 2xx answer in 0 seconds (1 attempt); the last: HTTP 500",
        "500",
    ):
        assert shown in text, shown


def test_delivery_page_shows_why_it_was_given_up_and_offers_no_save(
    superuser_client, given_up, receiver
):
    response = superuser_client.get(change_url(given_up))

    assert response.status_code == 200
    text = page_text(response)
    assert "Gave up: no 2xx answer" in text
    assert "billing-service" in text
    assert receiver.url in text
    assert not [button for button in SAVE_BUTTONS if button in page_html(response)]


def test_event_page_shows_what_the_endpoints_receive_and_its_deliveries(
    superuser_client, given_up, receiver
):
    response = superuser_client.get(event_url(given_up.event))

    assert response.status_code == 200
    text = page_text(response)
    assert f'"id": "{given_up.event.event_id}"' in text
    assert '"type": "credential.submitted"' in text
    assert receiver.url in text
    assert "Given up (retries exhausted)" in text


def test_no_admin_page_of_the_log_shows_the_signing_secret(
    superuser_client, given_up, signing_secret
):
    pages = [DELIVERIES, change_url(given_up), EVENTS, event_url(given_up.event)]

    for page in pages:
        response = superuser_client.get(page)
        assert response.status_code == 200, page
        assert_no_signing_secret(page_html(response), signing_secret)


def test_log_pages_never_decrypt_the_signing_secret(superuser_client, given_up):
    # Ciphertext no key opens: a page that decrypted it would fail.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_webhookendpoint SET signing_secret = %s",
            ["gAAAAABnot-a-token-of-ours"],
        )

    for page in [DELIVERIES, change_url(given_up), EVENTS, event_url(given_up.event)]:
        assert superuser_client.get(page).status_code == 200, page


def test_log_refuses_a_filter_on_the_signing_secret(superuser_client, given_up):
    response = superuser_client.get(f"{DELIVERIES}?endpoint__signing_secret__startswith=g")

    assert response.status_code == 400


def test_log_filters_by_state_and_event_type(superuser_client, emit, merchant, given_up):
    verified = emit(merchant, EventType.VERIFIED)

    assert listed(superuser_client.get(DELIVERIES, {"state__exact": "failed"})) == [given_up.pk]
    assert listed(superuser_client.get(DELIVERIES, {"state__exact": "pending"})) == [verified.pk]
    assert listed(
        superuser_client.get(DELIVERIES, {"event__type__exact": "credential.verified"})
    ) == [verified.pk]


def test_log_finds_deliveries_by_event_id_and_by_merchant_slug(
    superuser_client, emit, merchant, other_merchant
):
    ours = emit(merchant)
    theirs = emit(other_merchant)

    assert listed(superuser_client.get(DELIVERIES, {"q": ours.event.event_id})) == [ours.pk]
    assert listed(superuser_client.get(DELIVERIES, {"q": other_merchant.slug})) == [theirs.pk]


def test_log_runs_as_many_queries_for_thirty_deliveries_as_for_one(superuser_client, emit):
    emit(MerchantFactory())
    superuser_client.get(DELIVERIES)  # the session's first request records when it was seen
    with_one = queries_for(superuser_client, DELIVERIES)
    for _ in range(29):
        emit(MerchantFactory())

    with_thirty = queries_for(superuser_client, DELIVERIES)

    assert WebhookDelivery.objects.count() == 30
    assert with_thirty == with_one


def test_log_is_read_only(superuser_client, given_up):
    before = WebhookDelivery.objects.filter(pk=given_up.pk).values().get()

    response = superuser_client.post(change_url(given_up), {"state": "delivered"})

    assert response.status_code == 403
    assert WebhookDelivery.objects.filter(pk=given_up.pk).values().get() == before
    assert (
        superuser_client.get(reverse("admin:integrations_webhookdelivery_add")).status_code == 403
    )


# Sending again


def test_send_again_delivers_a_given_up_event_and_is_audited(
    superuser_client, superuser, given_up, receiver, broker, django_capture_on_commit_callbacks
):
    receiver.script(Reply(200))
    broker.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = resend_selected(superuser_client, [given_up])

    assert messages_of(response) == ["1 event is being sent again; its outcome will show here."]
    assert broker == [(DELIVER_TASK, (given_up.pk,))]
    assert reload(given_up).state == State.PENDING
    resent = AuditEvent.objects.get(action=AuditEvent.Action.WEBHOOK_RESENT)
    assert resent.actor == superuser
    assert resent.target == f"webhook_delivery:{given_up.pk}"
    assert resent.details["was"] == State.FAILED

    delivery_send(given_up.pk)  # the worker runs the queued task

    delivered = reload(given_up)
    assert (delivered.state, delivered.last_status, delivered.attempts) == (
        State.DELIVERED,
        200,
        2,
    )
    assert delivered.delivered_at <= timezone.now()
    assert "Delivered" in page_text(superuser_client.get(DELIVERIES))


def test_send_again_says_why_a_delivery_to_a_switched_off_endpoint_is_not_sent(
    superuser_client, given_up, broker
):
    given_up.endpoint.active = False
    given_up.endpoint.save(update_fields=["active"])
    broker.clear()

    response = resend_selected(superuser_client, [given_up])

    assert messages_of(response) == [
        f"{given_up.event.event_id}: It cannot be sent again: the endpoint was switched off."
    ]
    assert broker == []
    assert reload(given_up).state == State.FAILED
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.WEBHOOK_RESENT).exists()


def test_send_again_is_offered_to_a_superuser(superuser_client, given_up):
    assert "resend_selected" in offered_actions(superuser_client.get(DELIVERIES))


def test_a_helpdesk_agent_who_may_read_the_log_may_not_send_again(
    client_for, viewing_agent, given_up, broker
):
    client = client_for(viewing_agent)
    broker.clear()

    listing = client.get(DELIVERIES)
    forged = resend_selected(client, [given_up])

    assert listed(listing) == [given_up.pk]
    assert "resend_selected" not in offered_actions(listing)
    assert forged.status_code == 200
    assert broker == []
    assert reload(given_up).state == State.FAILED
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.WEBHOOK_RESENT).exists()


def test_a_helpdesk_agent_without_the_permission_does_not_see_the_log(
    client_for, helpdesk_user, given_up
):
    client = client_for(helpdesk_user)

    assert client.get(DELIVERIES).status_code == 403
    assert client.get(change_url(given_up)).status_code == 403
    assert resend_selected(client, [given_up]).status_code == 403
    assert reload(given_up).state == State.FAILED


def test_a_merchant_member_is_sent_to_the_admin_sign_in(owner_client, given_up):
    response = owner_client.post(
        DELIVERIES, {"action": "resend_selected", "_selected_action": [given_up.pk]}
    )

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert reload(given_up).state == State.FAILED
