"""GET /api/v1/merchants/: the merchants a service account serves, with where each stands,
in cursor pages."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from credentials.models import LifecycleState, Mode, VerificationState
from credentials.selectors import OnboardingStatus
from merchants.models import Integration
from tests.api.helpers import api_client, error_of, kashier_key, merchants_url, stripe_key
from tests.factories import MerchantFactory
from tests.helpers import merchant_url, queries_for

PENDING = VerificationState.PENDING
VERIFIED = VerificationState.VERIFIED
REJECTED = VerificationState.REJECTED


def listed(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    return response.json()["results"]


def all_pages(client, address: str) -> list[dict]:
    """Return the rows of every page, following the `next` links from `address`."""
    rows = []
    while address:
        body = client.get(address).json()
        rows.extend(body["results"])
        address = body["next"]
    return rows


def test_lists_the_merchants_the_account_serves_and_no_other(
    integrator_client, merchant, other_merchant
):
    merchant.requested_integrations = [Integration.SUBSCRIPTIONS, Integration.ONLINE_PAYMENTS]
    merchant.save(update_fields=["requested_integrations"])

    rows = listed(integrator_client.get(merchants_url()))

    assert rows == [
        {
            "slug": "demo-coffee-co",
            "name": "Demo Coffee Co",
            "onboarding_status": "awaiting_keys",
            "onboarding_status_label": "Awaiting keys",
            "requested_integrations": ["online_payments", "subscriptions"],
        }
    ]


def test_an_account_serving_all_merchants_lists_every_one_even_those_added_later(
    service_account, merchant, other_merchant
):
    _, token = service_account(all_merchants=True)
    MerchantFactory(slug="opened-today")

    rows = listed(api_client(token).get(merchants_url()))

    assert [row["slug"] for row in rows] == ["demo-coffee-co", "demo-bakery-co", "opened-today"]


def test_an_account_serving_nobody_gets_an_empty_list(service_account, merchant):
    _, token = service_account()

    assert listed(api_client(token).get(merchants_url())) == []


def test_unknown_requested_integrations_are_left_out(integrator_client, merchant):
    merchant.requested_integrations = ["online_payments", "teleportation"]
    merchant.save(update_fields=["requested_integrations"])

    (row,) = listed(integrator_client.get(merchants_url()))

    assert row["requested_integrations"] == ["online_payments"]


def _superseded(merchant, **fields):
    return stripe_key(merchant, lifecycle_state=LifecycleState.SUPERSEDED, secret=None, **fields)


def _revoked(merchant, **fields):
    return stripe_key(merchant, lifecycle_state=LifecycleState.REVOKED, secret=None, **fields)


def _ago(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)


# Each: the keys a merchant has, and the status its page in the portal shows for them.
SCENARIOS = {
    "no keys": (lambda m: None, OnboardingStatus.AWAITING_KEYS),
    "a pending key": (lambda m: stripe_key(m, state=PENDING), OnboardingStatus.KEYS_SUBMITTED),
    "a verified key": (lambda m: stripe_key(m), OnboardingStatus.VERIFIED),
    "a rejected key": (lambda m: stripe_key(m, state=REJECTED), OnboardingStatus.NEEDS_ATTENTION),
    "verified and acknowledged": (
        lambda m: stripe_key(m, acknowledged_at=timezone.now()),
        OnboardingStatus.ENABLED,
    ),
    "a rejected roll beside the key in use": (
        lambda m: (
            stripe_key(m, submitted_at=_ago(60)),
            stripe_key(m, state=REJECTED, submitted_at=_ago(1)),
        ),
        OnboardingStatus.VERIFIED,
    ),
    "a pending roll beside the key in use": (
        lambda m: (
            stripe_key(m, submitted_at=_ago(60)),
            stripe_key(m, state=PENDING, submitted_at=_ago(1)),
        ),
        OnboardingStatus.KEYS_SUBMITTED,
    ),
    "a revoked key and nothing since": (lambda m: _revoked(m), OnboardingStatus.NEEDS_ATTENTION),
    "a superseded key and its verified successor": (
        lambda m: (_superseded(m, submitted_at=_ago(60)), stripe_key(m)),
        OnboardingStatus.VERIFIED,
    ),
    "a verified Kashier key only": (lambda m: kashier_key(m), OnboardingStatus.VERIFIED),
    "Kashier verified, Stripe rejected in live": (
        lambda m: (kashier_key(m), stripe_key(m, mode=Mode.LIVE, state=REJECTED)),
        OnboardingStatus.NEEDS_ATTENTION,
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_onboarding_status_is_the_one_the_merchants_page_shows(
    integrator_client, merchant, owner_client, scenario
):
    build, expected = SCENARIOS[scenario]
    build(merchant)

    (row,) = listed(integrator_client.get(merchants_url()))
    page = owner_client.get(merchant_url("credentials:merchant", merchant))

    assert (row["onboarding_status"], row["onboarding_status_label"]) == expected
    assert page.context["onboarding_status"] == expected


@pytest.fixture
def many_merchants(service_account):
    """(token, slugs) of an account serving every merchant, seven of them, oldest first."""
    slugs = [MerchantFactory(slug=f"shop-{n}").slug for n in range(7)]
    _, token = service_account(all_merchants=True)
    return token, slugs


def test_pages_follow_each_other_by_cursor_without_gaps_or_repeats(many_merchants):
    token, slugs = many_merchants
    client = api_client(token)

    first = client.get(merchants_url(), {"page_size": 3}).json()
    rows = all_pages(client, merchants_url() + "?page_size=3")

    assert len(first["results"]) == 3
    assert first["previous"] is None
    assert "cursor" in parse_qs(urlsplit(first["next"]).query)
    assert [row["slug"] for row in rows] == slugs


def test_the_page_size_comes_from_the_settings(many_merchants, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "PAGE_SIZE": 2}
    token, slugs = many_merchants
    client = api_client(token)

    first = client.get(merchants_url()).json()
    rows = all_pages(client, merchants_url())

    assert len(first["results"]) == 2
    assert [row["slug"] for row in rows] == slugs


def test_a_merchant_added_between_pages_is_neither_skipped_nor_repeated(many_merchants):
    token, slugs = many_merchants
    client = api_client(token)
    first = client.get(merchants_url(), {"page_size": 4}).json()

    MerchantFactory(slug="latecomer")
    rest = all_pages(client, first["next"])

    assert [row["slug"] for row in first["results"] + rest] == [*slugs, "latecomer"]


@pytest.mark.parametrize("page_size", ["0", "201", "-1", "two", "1.5", "٣"])
def test_a_page_size_out_of_range_is_refused_saying_the_range(integrator_client, page_size):
    response = integrator_client.get(merchants_url(), {"page_size": page_size})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_page_size"
    assert "1 to 200" in error["message"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "cD1hYmM=",  # p=abc: a position that is no id
        "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ==",  # p=99999999999999999999999999: too big
        "cD0lMDA=",  # p=%00
        "bz0tNQ==",  # o=-5
    ],
)
def test_a_cursor_not_made_by_the_api_is_refused(integrator_client, cursor):
    response = integrator_client.get(merchants_url(), {"cursor": cursor})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cursor"


def test_the_number_of_queries_does_not_grow_with_merchants_or_keys(
    service_account, django_assert_max_num_queries
):
    def merchant_with_keys():
        shop = MerchantFactory()
        stripe_key(shop, submitted_at=_ago(5))
        stripe_key(shop, state=PENDING)
        _revoked(shop, mode=Mode.LIVE)
        kashier_key(shop)

    merchant_with_keys()
    _, token = service_account(all_merchants=True)
    client = api_client(token)
    client.get(merchants_url())  # the token's first use is recorded once
    baseline = queries_for(client, merchants_url())

    for _ in range(10):
        merchant_with_keys()

    with django_assert_max_num_queries(baseline):
        assert len(listed(client.get(merchants_url()))) == 11
