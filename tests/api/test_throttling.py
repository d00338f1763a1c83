"""The API's rate: counted per service account in the cache (Redis when there is one), a 429
with Retry-After beyond it, and nothing counted against an account for calls it was refused."""

import os
import uuid

import pytest
import redis

from api.throttling import ServiceAccountRateThrottle
from integrations.scopes import Scope
from tests.api.helpers import api_client, credentials_url, error_of, merchants_url

RATE = 3


@pytest.fixture
def tiny_rate(settings):
    rest_framework = dict(settings.REST_FRAMEWORK)
    rest_framework["DEFAULT_THROTTLE_RATES"] = {"service_account": f"{RATE}/minute"}
    settings.REST_FRAMEWORK = rest_framework


def use_up(client, address=None) -> None:
    for _ in range(RATE):
        assert client.get(address or merchants_url()).status_code == 200


def assert_throttled(response) -> int:
    """Assert a 429 with the API's error and Retry-After; return the seconds to wait."""
    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "throttled"
    assert "Retry-After" in error["message"]
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    return wait


def test_the_call_beyond_the_rate_is_refused_with_retry_after(tiny_rate, integrator):
    client = api_client(integrator[1])
    use_up(client)

    response = client.get(merchants_url())

    wait = assert_throttled(response)
    assert f"wait {wait} seconds" in error_of(response)["message"]


def test_another_account_is_not_slowed_by_the_first(tiny_rate, integrator, service_account):
    use_up(api_client(integrator[1]))
    _, other_token = service_account()

    assert api_client(other_token).get(merchants_url()).status_code == 200


def test_the_rate_is_per_account_not_per_address_nor_per_endpoint(tiny_rate, integrator, merchant):
    token = integrator[1]
    api_client(token, REMOTE_ADDR="203.0.113.1").get(merchants_url())
    api_client(token, REMOTE_ADDR="203.0.113.2").get(credentials_url(merchant.slug))
    api_client(token, REMOTE_ADDR="203.0.113.3").get(merchants_url())

    assert_throttled(api_client(token, REMOTE_ADDR="203.0.113.4").get(merchants_url()))


def test_the_next_period_is_answered_again(tiny_rate, integrator, monkeypatch):
    client = api_client(integrator[1])
    use_up(client)
    wait = assert_throttled(client.get(merchants_url()))

    later = ServiceAccountRateThrottle.timer() + wait
    monkeypatch.setattr(ServiceAccountRateThrottle, "timer", lambda self: later)

    assert client.get(merchants_url()).status_code == 200


def test_refused_calls_are_not_counted_against_the_account(tiny_rate, service_account, merchant):
    _, token = service_account(
        merchants=[merchant], scopes=[Scope.MERCHANTS_READ], allowed_ips=["203.0.113.0/24"]
    )
    inside = api_client(token, REMOTE_ADDR="203.0.113.7")
    for _ in range(RATE + 2):
        # From an address it does not allow, without the scope, with a mistyped token.
        assert api_client(token, REMOTE_ADDR="198.51.100.7").get(merchants_url()).status_code == 403
        assert inside.get(credentials_url(merchant.slug)).status_code == 403
        assert (
            api_client(token[:-2], REMOTE_ADDR="203.0.113.7").get(merchants_url()).status_code
            == 401
        )

    use_up(inside)
    assert_throttled(inside.get(merchants_url()))


@pytest.mark.redis
def test_with_redis_the_count_is_kept_there_for_every_process(tiny_rate, integrator, settings):
    prefix = f"keyhouse-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": prefix,
        }
    }
    account, token = integrator
    client = api_client(token)
    server = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        use_up(client)

        (key,) = server.keys(f"{prefix}:*")
        assert f"throttle_service_account_{account.pk}:".encode() in key
        assert int(server.get(key)) == RATE
        assert 0 < server.ttl(key) <= 61
        assert_throttled(client.get(merchants_url()))
    finally:
        for key in server.scan_iter(f"{prefix}:*"):
            server.delete(key)
        server.close()
