"""GET /api/v1/merchants/{slug}/credentials/: every key of a merchant the account serves, its
public facts only (never a secret, nor any part of one)."""

import pytest
from django.utils import timezone

from credentials.models import LifecycleState, Mode, VerificationState
from credentials.public import credential_public_facts
from tests.api.helpers import (
    api_client,
    credentials_url,
    error_of,
    kashier_key,
    stripe_key,
)
from tests.helpers import assert_no_secret, queries_for


def listed(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    return response.json()["results"]


def test_lists_every_key_of_the_merchant_newest_first_with_its_public_facts(
    integrator_client, merchant, other_merchant
):
    old = stripe_key(
        merchant,
        lifecycle_state=LifecycleState.SUPERSEDED,
        secret=None,
        checked_at=timezone.now(),
        account_id="acct_1",
        livemode=False,
    )
    current = stripe_key(
        merchant,
        missing_permissions=["rak_charge_write"],
        verification_code="verified_restricted",
    )
    revoked = stripe_key(
        merchant, mode=Mode.LIVE, lifecycle_state=LifecycleState.REVOKED, secret=None
    )
    kashier = kashier_key(merchant, state=VerificationState.PENDING)
    stripe_key(other_merchant)

    rows = listed(integrator_client.get(credentials_url(merchant.slug)))

    expected = [kashier, revoked, current, old]
    assert [row["id"] for row in rows] == [credential.pk for credential in expected]
    assert rows == [credential_public_facts(credential) for credential in expected]
    assert rows[2]["missing_permissions"] == ["rak_charge_write"]
    assert rows[3]["lifecycle_state"] == "superseded"


def test_a_merchant_without_keys_has_an_empty_list(integrator_client, merchant):
    assert listed(integrator_client.get(credentials_url(merchant.slug))) == []


def test_no_secret_nor_any_part_of_one_is_in_the_list(integrator_client, merchant):
    stripe = stripe_key(merchant)
    stripe_live = stripe_key(merchant, mode=Mode.LIVE, state=VerificationState.PENDING)
    kashier = kashier_key(merchant)
    secrets = [stripe.secret, stripe_live.secret, kashier.secret, kashier.extra_secret]

    response = integrator_client.get(credentials_url(merchant.slug))

    assert response.status_code == 200
    text = response.content.decode()
    for secret in secrets:
        assert_no_secret(text, secret)
    for row in response.json()["results"]:
        assert not {"secret", "extra_secret", "secret_key", "payment_api_key"} & set(row)


def test_another_merchants_keys_read_as_a_merchant_that_does_not_exist(
    integrator_client, other_merchant
):
    stripe_key(other_merchant)

    not_served = integrator_client.get(credentials_url(other_merchant.slug))
    missing = integrator_client.get(credentials_url("no-such-merchant"))

    assert not_served.status_code == 404
    assert error_of(not_served)["code"] == "not_found"
    assert not_served.content == missing.content


def test_pages_of_keys_follow_each_other_newest_first(integrator, merchant):
    _, token = integrator
    client = api_client(token)
    keys = [stripe_key(merchant, state=VerificationState.REJECTED) for _ in range(5)]

    first = client.get(credentials_url(merchant.slug), {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()

    ids = [row["id"] for page in (first, second, third) for row in page["results"]]
    assert ids == [key.pk for key in reversed(keys)]
    assert third["next"] is None
    assert client.get(second["previous"]).json() == first


@pytest.mark.parametrize("cursor", ["cD1hYmM=", "cD0xLjU="])  # p=abc, p=1.5
def test_a_cursor_whose_position_is_no_key_id_is_refused(integrator_client, merchant, cursor):
    response = integrator_client.get(credentials_url(merchant.slug), {"cursor": cursor})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cursor"


def test_the_number_of_queries_does_not_grow_with_keys(
    integrator, merchant, django_assert_max_num_queries
):
    _, token = integrator
    client = api_client(token)
    stripe_key(merchant)
    client.get(credentials_url(merchant.slug))  # the token's first use is recorded once
    baseline = queries_for(client, credentials_url(merchant.slug))

    for _ in range(10):
        stripe_key(merchant, state=VerificationState.REJECTED)
        kashier_key(merchant, state=VerificationState.PENDING)

    with django_assert_max_num_queries(baseline):
        assert len(listed(client.get(credentials_url(merchant.slug)))) == 21
