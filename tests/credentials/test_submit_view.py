"""Submitting keys through the portal: the happy path and what the page shows."""

import pytest
from django.urls import reverse

from credentials.models import Credential, VerificationState
from tests.factories import fake_key


def submit_url(merchant):
    return reverse("credentials:submit", kwargs={"slug": merchant.slug})


@pytest.fixture
def keys():
    return {"publishable_key": fake_key("pk_test_"), "secret_key": fake_key("sk_test_")}


def post_keys(client, merchant, **fields):
    data = {"requested_integrations": ["online_payments"], "note": "", **fields}
    return client.post(submit_url(merchant), data)


def test_owner_submits_keys_and_sees_only_the_hint(owner_client, merchant, keys):
    response = post_keys(owner_client, merchant, **keys)

    credential = Credential.objects.get()
    assert response.status_code == 302
    assert response.url == credential.get_absolute_url() + "?submitted=1"
    page = owner_client.get(response.url)
    body = page.content.decode()
    assert "Keys received" in body
    assert f"sk_test_…{keys['secret_key'][-4:]}" in body
    assert keys["secret_key"] not in body
    assert credential.secret == keys["secret_key"]
    assert credential.verification_state == VerificationState.PENDING
    assert credential.mode == "test"
    assert credential.submitted_by.email == "owner@demo.test"
