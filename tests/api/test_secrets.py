"""GET /api/v1/merchants/{slug}/credentials/{provider}/{mode}/secret/: the secrets of a
merchant's active verified key, never stored by the caller's caches, each fetch in the
merchant's audit trail."""

import pytest
from django.urls import reverse

from api.exceptions import MissingScope
from api.services import credential_secret_fetch
from audit.models import AuditEvent
from credentials.models import LifecycleState, Mode, Provider, VerificationState
from credentials.providers import PROVIDERS
from integrations.scopes import Scope
from integrations.services.tokens import token_authenticate
from tests.api.helpers import (
    api_client,
    error_of,
    kashier_key,
    secret_url,
    stripe_key,
)
from tests.helpers import assert_no_secret, page_text

FETCHED = AuditEvent.Action.SECRET_FETCHED
CALLER_IP = "203.0.113.9"


@pytest.fixture
def client(integrator):
    return api_client(integrator[1], REMOTE_ADDR=CALLER_IP)


def fetched_events():
    return AuditEvent.objects.filter(action=FETCHED)


def test_returns_a_stripe_keys_secret_with_its_id_hint_and_publishable_key(client, merchant):
    key = stripe_key(merchant)

    response = client.get(secret_url(merchant.slug))

    assert response.status_code == 200
    assert response.json() == {
        "id": key.pk,
        "provider": "stripe",
        "mode": "test",
        "hint": key.secret_hint,
        "secret_key": key.secret,
        "publishable_key": key.public_key,
    }


def test_returns_a_kashier_keys_secret_key_payment_api_key_and_merchant_id(client, merchant):
    key = kashier_key(merchant, mode=Mode.LIVE)

    response = client.get(secret_url(merchant.slug, Provider.KASHIER, Mode.LIVE))

    assert response.status_code == 200
    assert response.json() == {
        "id": key.pk,
        "provider": "kashier",
        "mode": "live",
        "hint": key.secret_hint,
        "secret_key": key.secret,
        "payment_api_key": key.extra_secret,
        "merchant_id": "MID-1-2",
    }


@pytest.mark.parametrize("provider", list(PROVIDERS.values()), ids=str)
def test_every_provider_names_its_values_in_the_answer(provider):
    assert "public_key" in provider.api_names
    # A provider with a second secret names it, so the integration receives it.
    assert ("extra_secret" in provider.api_names) == bool(provider.extra_secret_label)


def test_the_answer_is_never_stored_by_a_cache(client, merchant):
    stripe_key(merchant)

    response = client.get(secret_url(merchant.slug))

    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives


def test_each_fetch_writes_one_audit_event_naming_the_account_the_hint_and_the_address(
    client, merchant
):
    key = stripe_key(merchant)

    client.get(secret_url(merchant.slug))

    (event,) = fetched_events()
    assert event.merchant == merchant
    assert event.actor is None
    assert event.target == f"test key {key.secret_hint}"
    assert event.details == {
        "service_account": "pos-backend",
        "hint": key.secret_hint,
        "credential": key.pk,
    }
    assert event.ip == CALLER_IP
    assert_no_secret(f"{event.target} {event.details}", key.secret)

    client.get(secret_url(merchant.slug))
    assert fetched_events().count() == 2, "every fetch, not only the first"


def test_behind_trusted_proxies_the_audit_names_the_address_they_saw(
    integrator, merchant, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    stripe_key(merchant)

    api_client(integrator[1], REMOTE_ADDR="10.0.0.2").get(
        secret_url(merchant.slug), headers={"x-forwarded-for": "192.0.2.1, 198.51.100.23"}
    )

    assert fetched_events().get().ip == "198.51.100.23"


def test_the_merchants_audit_trail_shows_the_fetch(client, merchant, owner_client):
    key = stripe_key(merchant)
    client.get(secret_url(merchant.slug))

    trail = page_text(owner_client.get(reverse("teams:audit", kwargs={"slug": merchant.slug})))

    assert "Secret fetched through the API" in trail
    assert key.secret_hint in trail
    assert CALLER_IP in trail
    assert "Service account pos-backend" in trail
    assert_no_secret(trail, key.secret)


def test_the_keys_page_in_the_portal_names_the_account_that_fetched_it(
    client, merchant, owner_client
):
    key = stripe_key(merchant)
    client.get(secret_url(merchant.slug))

    page = page_text(owner_client.get(key.get_absolute_url()))

    assert "pos-backend" in page
    assert_no_secret(page, key.secret)


def test_the_helpdesk_sees_the_fetch_with_the_account_in_the_admin(
    client, merchant, helpdesk_user, client_for
):
    key = stripe_key(merchant)
    client.get(secret_url(merchant.slug))
    event = fetched_events().get()

    page = client_for(helpdesk_user).get(reverse("admin:audit_auditevent_change", args=[event.pk]))

    assert page.status_code == 200
    text = page_text(page)
    assert "pos-backend" in text
    assert key.secret_hint in text
    assert_no_secret(text, key.secret)


@pytest.mark.parametrize(
    "state",
    [
        VerificationState.PENDING,
        VerificationState.VERIFYING,
        VerificationState.REJECTED,
        VerificationState.UNREACHABLE,
    ],
)
def test_a_key_its_provider_has_not_verified_is_not_given(client, merchant, state):
    stripe_key(merchant, state=state)

    response = client.get(secret_url(merchant.slug))

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert not fetched_events().exists()


def test_a_revoked_key_is_not_given(client, merchant):
    stripe_key(merchant, lifecycle_state=LifecycleState.REVOKED, secret=None)

    assert client.get(secret_url(merchant.slug)).status_code == 404


def test_a_superseded_keys_secret_is_never_given_only_its_successors(client, merchant):
    old = stripe_key(merchant, lifecycle_state=LifecycleState.SUPERSEDED, secret=None)
    new = stripe_key(merchant)

    response = client.get(secret_url(merchant.slug))

    assert response.json()["id"] == new.pk
    assert response.json()["secret_key"] == new.secret
    assert old.secret_hint not in response.content.decode()


def test_while_a_roll_is_verified_the_newest_verified_key_is_given(client, merchant):
    stripe_key(merchant)
    newer = stripe_key(merchant)
    stripe_key(merchant, state=VerificationState.PENDING)

    response = client.get(secret_url(merchant.slug))

    assert response.json()["id"] == newer.pk


def test_a_key_of_the_other_mode_or_provider_is_not_given(client, merchant):
    stripe_key(merchant, mode=Mode.TEST)

    live = client.get(secret_url(merchant.slug, Provider.STRIPE, Mode.LIVE))
    kashier = client.get(secret_url(merchant.slug, Provider.KASHIER, Mode.TEST))

    assert live.status_code == kashier.status_code == 404


def test_no_key_a_merchant_not_served_and_no_merchant_all_read_the_same(
    client, merchant, other_merchant
):
    stripe_key(other_merchant)

    no_key = client.get(secret_url(merchant.slug))
    not_served = client.get(secret_url(other_merchant.slug))
    missing = client.get(secret_url("no-such-merchant"))

    assert no_key.status_code == not_served.status_code == missing.status_code == 404
    assert no_key.content == not_served.content == missing.content
    assert not fetched_events().exists()


@pytest.mark.parametrize(
    ("provider", "mode", "code", "names"),
    [
        ("paypal", "test", "unknown_provider", "stripe, kashier"),
        ("Stripe", "test", "unknown_provider", "stripe, kashier"),
        ("stripe", "sandbox", "unknown_mode", "test, live"),
    ],
)
def test_an_unknown_provider_or_mode_is_refused_naming_the_known_ones(
    client, merchant, provider, mode, code, names
):
    stripe_key(merchant)

    response = client.get(secret_url(merchant.slug, provider, mode))

    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == code
    assert names in error["message"]


def test_without_the_secrets_scope_nothing_is_given_nor_audited(service_account, merchant):
    stripe_key(merchant)
    _, token = service_account(
        merchants=[merchant], scopes=[Scope.MERCHANTS_READ, Scope.CREDENTIALS_READ]
    )

    response = api_client(token).get(secret_url(merchant.slug))

    assert response.status_code == 403
    assert error_of(response)["code"] == "missing_scope"
    assert not fetched_events().exists()


def test_the_service_itself_refuses_an_account_without_the_secrets_scope(service_account, merchant):
    stripe_key(merchant)
    _, token = service_account(merchants=[merchant], scopes=[Scope.CREDENTIALS_READ])

    with pytest.raises(MissingScope):
        credential_secret_fetch(
            caller=token_authenticate(token),
            merchant_slug=merchant.slug,
            provider=Provider.STRIPE,
            mode=Mode.TEST,
            ip=None,
        )
    assert not fetched_events().exists()


def test_a_fetch_runs_a_bounded_number_of_queries(client, merchant, django_assert_max_num_queries):
    for _ in range(5):
        stripe_key(merchant, state=VerificationState.REJECTED)
    stripe_key(merchant)
    client.get(secret_url(merchant.slug))  # the token's first use is recorded once

    # The token, the merchant, the key, its secrets, the audit event (and the savepoint).
    with django_assert_max_num_queries(7):
        assert client.get(secret_url(merchant.slug)).status_code == 200
