"""Who may call the API: a service account's bearer token, from an address it allows, with the
scope the call needs, for a merchant it serves. Every endpoint, each way of being refused,
next to the call that is answered."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import ServiceToken
from integrations.scopes import Scope
from integrations.services.accounts import service_account_revoke, service_token_roll
from tests.api.helpers import (
    api_client,
    credentials_url,
    error_of,
    merchants_url,
    secret_url,
    stripe_key,
)

SLUG = "demo-coffee-co"  # the `merchant` fixture's
ENDPOINTS = {
    "merchants": (lambda slug: merchants_url(), Scope.MERCHANTS_READ),
    "credentials": (credentials_url, Scope.CREDENTIALS_READ),
    "secret": (secret_url, Scope.SECRETS_READ),
}
MERCHANT_ENDPOINTS = ["credentials", "secret"]
# Shaped like a token (kh_, a key id, a secret) but issued to nobody.
UNKNOWN_TOKEN = "kh_abcdefghij_" + "A" * 43


def address(endpoint: str, slug: str = SLUG) -> str:
    return ENDPOINTS[endpoint][0](slug)


@pytest.fixture(autouse=True)
def verified_keys(merchant, other_merchant):
    """A verified Stripe test key at both merchants: the secret endpoint has one to give."""
    return stripe_key(merchant), stripe_key(other_merchant)


def assert_unauthenticated(response, code: str):
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == code


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_call_with_the_accounts_token_is_answered(integrator_client, endpoint):
    response = integrator_client.get(address(endpoint))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_call_without_a_token_is_refused_and_told_how_to_send_one(db, endpoint):
    response = api_client().get(address(endpoint))

    assert_unauthenticated(response, "not_authenticated")
    assert "Authorization: Bearer" in error_of(response)["message"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "header",
    ["Token x", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Bearer one two", "kh_x"],
)
def test_a_malformed_authorization_header_is_refused_and_shown_the_right_form(
    integrator, endpoint, header
):
    response = api_client().get(address(endpoint), headers={"authorization": header})

    assert_unauthenticated(response, "malformed_authorization")
    assert "Bearer <token>" in error_of(response)["message"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_unknown_token_and_a_mistyped_one_are_refused_alike(integrator, endpoint):
    _, token = integrator
    mistyped = token[:-1] + ("A" if token[-1] != "A" else "B")

    unknown = api_client(UNKNOWN_TOKEN).get(address(endpoint))
    typo = api_client(mistyped).get(address(endpoint))

    assert_unauthenticated(unknown, "invalid_token")
    assert_unauthenticated(typo, "invalid_token")
    assert unknown.json() == typo.json()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_revoked_account_is_refused(integrator, endpoint):
    account, token = integrator
    service_account_revoke(account=account, actor=None)

    response = api_client(token).get(address(endpoint))

    assert_unauthenticated(response, "token_revoked")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_revoked_token_is_refused_while_the_account_lives(integrator, endpoint):
    account, token = integrator
    account.tokens.update(revoked_at=timezone.now())

    response = api_client(token).get(address(endpoint))

    assert_unauthenticated(response, "token_revoked")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_expired_account_is_refused_and_told_to_have_it_renewed(
    service_account, merchant, endpoint
):
    _, token = service_account(
        merchants=[merchant], expires_at=timezone.now() - timedelta(minutes=1)
    )

    response = api_client(token).get(address(endpoint))

    assert_unauthenticated(response, "account_expired")
    assert "renewed" in error_of(response)["message"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_rolled_token_works_within_its_grace_period_beside_the_new_one(integrator, endpoint):
    account, old_token = integrator
    new_token = service_token_roll(account=account, grace=timedelta(hours=1), actor=None)

    assert api_client(old_token).get(address(endpoint)).status_code == 200
    assert api_client(new_token).get(address(endpoint)).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_rolled_token_is_refused_after_its_grace_period_and_the_new_one_works(
    integrator, endpoint
):
    account, old_token = integrator
    new_token = service_token_roll(account=account, grace=timedelta(hours=1), actor=None)
    # The hour has passed.
    ServiceToken.objects.filter(account=account, valid_until__isnull=False).update(
        valid_until=timezone.now() - timedelta(seconds=1)
    )

    old = api_client(old_token).get(address(endpoint))
    new = api_client(new_token).get(address(endpoint))

    assert_unauthenticated(old, "token_expired")
    assert "use the new token" in error_of(old)["message"]
    assert new.status_code == 200


@pytest.fixture
def fenced(service_account, merchant):
    """(account, token) of a service account that may call from 203.0.113.0/24 only."""
    return service_account(merchants=[merchant], allowed_ips=["203.0.113.0/24"])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_call_from_an_allowed_address_is_answered_and_from_another_refused(fenced, endpoint):
    _, token = fenced

    inside = api_client(token, REMOTE_ADDR="203.0.113.7").get(address(endpoint))
    outside = api_client(token, REMOTE_ADDR="198.51.100.7").get(address(endpoint))

    assert inside.status_code == 200
    assert outside.status_code == 403
    error = error_of(outside)
    assert error["code"] == "ip_not_allowed"
    assert "198.51.100.7" in error["message"]
    assert "203.0.113" not in error["message"], "the allowed addresses are not told"


def test_behind_trusted_proxies_the_address_they_saw_is_checked(fenced, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _, token = fenced
    client = api_client(token, REMOTE_ADDR="10.0.0.2")  # the proxy

    # The proxy appends the address it was reached from; what stands left of it was
    # written by the caller.
    allowed = client.get(merchants_url(), headers={"x-forwarded-for": "203.0.113.7"})
    spoofed = client.get(merchants_url(), headers={"x-forwarded-for": "203.0.113.7, 198.51.100.7"})

    assert allowed.status_code == 200
    assert spoofed.status_code == 403
    assert error_of(spoofed)["code"] == "ip_not_allowed"


def test_without_trusted_proxies_a_forwarded_address_is_not_believed(fenced, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    _, token = fenced

    response = api_client(token, REMOTE_ADDR="198.51.100.7").get(
        merchants_url(), headers={"x-forwarded-for": "203.0.113.7"}
    )

    assert response.status_code == 403
    assert error_of(response)["code"] == "ip_not_allowed"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_call_without_its_scope_is_refused_naming_the_scope(service_account, merchant, endpoint):
    needed = ENDPOINTS[endpoint][1]
    _, token = service_account(
        merchants=[merchant], scopes=[scope for scope in Scope.values if scope != needed]
    )

    response = api_client(token).get(address(endpoint))

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "missing_scope"
    assert needed in error["message"]


@pytest.mark.parametrize("endpoint", MERCHANT_ENDPOINTS)
def test_a_merchant_not_served_reads_exactly_like_one_that_does_not_exist(
    integrator_client, other_merchant, endpoint
):
    own = integrator_client.get(address(endpoint))
    not_served = integrator_client.get(address(endpoint, other_merchant.slug))
    missing = integrator_client.get(address(endpoint, "no-such-merchant"))

    assert own.status_code == 200
    assert not_served.status_code == missing.status_code == 404
    assert error_of(not_served)["code"] == "not_found"
    assert not_served.content == missing.content


@pytest.mark.parametrize("endpoint", MERCHANT_ENDPOINTS)
def test_an_account_serving_all_merchants_reaches_every_one(
    service_account, other_merchant, endpoint
):
    _, token = service_account(all_merchants=True)

    response = api_client(token).get(address(endpoint, other_merchant.slug))

    assert response.status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_signed_in_session_opens_nothing(owner_client, endpoint):
    response = owner_client.get(address(endpoint))

    assert_unauthenticated(response, "not_authenticated")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_api_is_read_only_and_needs_no_csrf_token(integrator, endpoint):
    _, token = integrator
    client = api_client(token, enforce_csrf_checks=True)

    response = client.post(address(endpoint), {}, content_type="application/json")

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_a_call_leaves_the_caller_anonymous_and_starts_no_session(integrator_client):
    response = integrator_client.get(merchants_url())

    assert response.status_code == 200
    assert response.wsgi_request.user.is_anonymous
    assert "sessionid" not in response.cookies
    assert "csrftoken" not in response.cookies


def test_an_address_the_api_does_not_have_is_a_json_404(integrator_client):
    for path in ("/api/v1/nothing/", "/api/v1/merchants", "/api/v2/merchants/"):
        response = integrator_client.get(path)

        assert response.status_code == 404
        assert error_of(response)["code"] == "no_such_address"
