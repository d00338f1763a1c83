"""Asking Stripe about a key: the real stripe SDK against the fake Stripe server over HTTP.

Every answer in DESIGN.md's Verify table is played by the fake server; every failure must come
out as our own KeyRefused or StripeUnavailable code, with nothing of the key or of Stripe's
message in the exception, its text or the exceptions it was raised from.
"""

import dataclasses
import socket

import pytest

from credentials.providers.stripe_client import (
    AccountFacts,
    KeyRefused,
    StripeUnavailable,
    stripe_account_facts,
)
from tests.factories import fake_key
from tests.fake_stripe import Reply, account_reply, error_reply, load_fixture, masked

# What Stripe says in its error bodies (some of it echoes the masked key).
STRIPE_MESSAGES = [
    spec["body"]["error"]["message"]
    for name, spec in load_fixture("errors").items()
    if not name.startswith("_")
]


def exception_chain(error: BaseException) -> list[BaseException]:
    """Return `error` and every exception it was raised from or while handling."""
    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def assert_says_nothing_of(error: BaseException, key: str) -> None:
    """Assert that the exception and its chain show neither the key nor Stripe's message."""
    assert error.__cause__ is None
    assert error.__context__ is None
    for link in exception_chain(error):
        for text in (str(link), repr(link), *map(str, link.args)):
            assert key not in text
            assert masked(key) not in text
            assert key[-12:] not in text
            for message in STRIPE_MESSAGES:
                assert message not in text
            assert "API Key provided" not in text


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on (bound, read, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Accounts that answer


def test_valid_test_key_returns_the_account_facts(fake_stripe):
    key = fake_key("sk_test_")
    fake_stripe.account(
        key,
        id="acct_1TestDemoCoffee",
        display_name="Demo Coffee Co",
        country="GB",
        charges_enabled=True,
        payouts_enabled=False,
        details_submitted=True,
    )

    facts = stripe_account_facts(key)

    assert facts == AccountFacts(
        account_id="acct_1TestDemoCoffee",
        display_name="Demo Coffee Co",
        country="GB",
        charges_enabled=True,
        payouts_enabled=False,
        details_submitted=True,
        livemode=False,
        limited_permissions=False,
    )
    assert [(r.method, r.path) for r in fake_stripe.requests_for(key)] == [("GET", "/v1/account")]


def test_valid_live_key_returns_the_account_facts_in_live_mode(fake_stripe):
    key = fake_key("sk_live_")
    fake_stripe.account(
        key,
        id="acct_1LiveDemoCoffee",
        display_name="Demo Coffee Co (live)",
        country="DE",
        charges_enabled=False,
        payouts_enabled=True,
        details_submitted=False,
    )

    facts = stripe_account_facts(key)

    assert facts.account_id == "acct_1LiveDemoCoffee"
    assert facts.display_name == "Demo Coffee Co (live)"
    assert facts.country == "DE"
    assert facts.charges_enabled is False
    assert facts.payouts_enabled is True
    assert facts.details_submitted is False
    assert facts.livemode is True
    assert facts.limited_permissions is False


def test_account_without_dashboard_name_falls_back_to_the_business_name(fake_stripe):
    key = fake_key("sk_test_")
    fake_stripe.account(
        key, display_name=None, business_profile={"name": "Demo Coffee Trading Ltd"}
    )

    assert stripe_account_facts(key).display_name == "Demo Coffee Trading Ltd"


def test_restricted_key_without_account_access_but_with_balance_is_usable_with_limited_permissions(
    fake_stripe,
):
    key = fake_key("rk_live_")
    fake_stripe.restricted_without_account_access(key, balance_ok=True)

    facts = stripe_account_facts(key)

    assert facts == AccountFacts(livemode=True, limited_permissions=True)
    assert [r.path for r in fake_stripe.requests_for(key)] == ["/v1/account", "/v1/balance"]


# Keys that Stripe refuses


@pytest.mark.parametrize(
    ("case", "code"),
    [("invalid_api_key", "invalid_api_key"), ("expired_api_key", "api_key_expired")],
)
def test_key_answered_with_401_is_refused_with_our_own_code(fake_stripe, case, code):
    key = fake_key("sk_live_")
    fake_stripe.reject(key, case)

    with pytest.raises(KeyRefused) as raised:
        stripe_account_facts(key)

    assert raised.value.code == code
    assert str(raised.value) == code
    assert_says_nothing_of(raised.value, key)


def test_unknown_key_is_refused_by_the_fake_server_default_as_invalid(fake_stripe):
    key = fake_key("sk_test_", 28) + "bad0"

    with pytest.raises(KeyRefused) as raised:
        stripe_account_facts(key)

    assert raised.value.code == "invalid_api_key"
    assert_says_nothing_of(raised.value, key)


def test_restricted_key_without_account_or_balance_access_is_refused(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted_without_account_access(key, balance_ok=False)

    with pytest.raises(KeyRefused) as raised:
        stripe_account_facts(key)

    assert raised.value.code == "insufficient_permissions"
    assert_says_nothing_of(raised.value, key)
    assert [r.path for r in fake_stripe.requests_for(key)] == ["/v1/account", "/v1/balance"]


# Stripe unavailable


def test_rate_limit_is_not_retried_by_the_sdk_and_the_next_call_succeeds(fake_stripe):
    key = fake_key("sk_test_")
    fake_stripe.on(key, "/v1/account", [error_reply("rate_limited", key), account_reply(key)])

    with pytest.raises(StripeUnavailable) as raised:
        stripe_account_facts(key)
    assert raised.value.code == "rate_limited"
    assert_says_nothing_of(raised.value, key)
    assert len(fake_stripe.requests_for(key)) == 1

    facts = stripe_account_facts(key)

    assert facts.account_id.startswith("acct_")
    assert len(fake_stripe.requests_for(key)) == 2


def test_server_error_is_retried_by_the_sdk_within_one_call(fake_stripe):
    key = fake_key("sk_test_")
    fake_stripe.on(key, "/v1/account", [error_reply("api_error", key), account_reply(key)])

    facts = stripe_account_facts(key)

    assert facts.account_id.startswith("acct_")
    assert len(fake_stripe.requests_for(key)) == 2


def test_persistent_server_error_makes_stripe_unavailable(fake_stripe, settings):
    key = fake_key("sk_test_")
    fake_stripe.on(key, "/v1/account", error_reply("api_error", key))

    with pytest.raises(StripeUnavailable) as raised:
        stripe_account_facts(key)

    assert raised.value.code == "stripe_error"
    assert_says_nothing_of(raised.value, key)
    # One try and the SDK's own retries, no more.
    assert len(fake_stripe.requests_for(key)) == 1 + settings.STRIPE_MAX_NETWORK_RETRIES


def test_answer_slower_than_the_timeout_makes_stripe_unavailable(fake_stripe, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 0.3
    key = fake_key("sk_test_")
    slow = dataclasses.replace(account_reply(key), delay=settings.STRIPE_TIMEOUT_SECONDS + 0.7)
    fake_stripe.on(key, "/v1/account", slow)

    with pytest.raises(StripeUnavailable) as raised:
        stripe_account_facts(key)

    assert raised.value.code == "timed_out"
    assert_says_nothing_of(raised.value, key)


def test_refused_connection_makes_stripe_unavailable(settings):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    key = fake_key("sk_live_")

    with pytest.raises(StripeUnavailable) as raised:
        stripe_account_facts(key)

    assert raised.value.code == "connection_failed"
    assert_says_nothing_of(raised.value, key)


def test_unexpected_answer_is_treated_as_unavailable_not_as_a_refusal(fake_stripe):
    key = fake_key("sk_test_")
    fake_stripe.on(
        key,
        "/v1/account",
        Reply(
            404, {"error": {"message": f"No such thing for {key}", "type": "invalid_request_error"}}
        ),
    )

    with pytest.raises(StripeUnavailable) as raised:
        stripe_account_facts(key)

    assert raised.value.code == "unexpected_404"
    assert_says_nothing_of(raised.value, key)


# Proxies: read from the environment once, when the client for Stripe's address is made.


@pytest.fixture
def fresh_http_client():
    """The shared HTTP client is made again for the test, and forgotten after it."""
    from credentials.providers import stripe_client

    stripe_client._http_client.cache_clear()
    yield
    stripe_client._http_client.cache_clear()


def test_a_proxy_in_the_environment_carries_the_requests_to_stripe(
    fake_stripe, settings, monkeypatch, fresh_http_client, secret
):
    # The fake Stripe plays the proxy: a request through a proxy names the whole address.
    settings.STRIPE_API_BASE = "http://api.stripe.invalid"
    monkeypatch.setenv("HTTP_PROXY", fake_stripe.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    with pytest.raises((KeyRefused, StripeUnavailable)):
        stripe_account_facts(secret)

    assert fake_stripe.requests[0].path == "http://api.stripe.invalid/v1/account"


def test_a_host_named_in_no_proxy_is_asked_directly(
    fake_stripe, monkeypatch, fresh_http_client, secret
):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fake_stripe.account(secret)

    assert stripe_account_facts(secret).account_id

    assert [request.path for request in fake_stripe.requests] == ["/v1/account"]
