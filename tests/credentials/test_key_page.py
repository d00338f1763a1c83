"""One key's page: what it says about the key's use, the receipt right after submitting, the
status it follows while Stripe has not answered, and rolling the key from it.

Each allowed case sits next to its denied one (403) and its other-tenant one (404).
"""

import json
import re

import pytest

from credentials.models import LifecycleState, Mode, VerificationState
from credentials.services.verification import credential_verify
from teams.permissions import SUBMIT_KEYS, VIEW_MERCHANT
from tests.factories import CredentialFactory, MembershipFactory, RoleFactory, fake_key
from tests.helpers import merchant_url, page_html, page_text, reload

WAITING = (VerificationState.PENDING, VerificationState.VERIFYING)


def key_url(credential) -> str:
    return merchant_url("credentials:detail", credential.merchant, pk=credential.pk)


def status_url(credential) -> str:
    return merchant_url("credentials:status", credential.merchant, pk=credential.pk)


def submit_url(merchant) -> str:
    return merchant_url("credentials:submit", merchant)


def submitted(client, merchant, secret: str, *, replaces=None):
    """Post keys of `secret`'s mode through the submit form (rolling `replaces`)."""
    mode = "live" if "_live_" in secret else "test"
    query = f"?replaces={replaces.pk}" if replaces else ""
    return client.post(
        submit_url(merchant) + query,
        {
            "publishable_key": fake_key(f"pk_{mode}_"),
            "secret_key": secret,
            "requested_integrations": ["online_payments"],
            "note": "",
        },
    )


@pytest.fixture
def pending(merchant, owner):
    return CredentialFactory(merchant=merchant, submitted_by=owner)


@pytest.fixture
def verified(merchant, owner):
    return CredentialFactory(
        merchant=merchant, submitted_by=owner, verification_state=VerificationState.VERIFIED
    )


# The receipt and the outcome ------------------------------------------------------------


@pytest.mark.parametrize("state", WAITING)
def test_the_receipt_shows_right_after_submitting_while_stripe_has_not_answered(
    owner_client, pending, state
):
    pending.verification_state = state
    pending.save(update_fields=["verification_state"])

    text = page_text(owner_client.get(key_url(pending) + "?submitted=1"))

    assert "Keys received" in text
    assert "will now be verified with Stripe" in text


@pytest.mark.parametrize(
    "state",
    [VerificationState.VERIFIED, VerificationState.REJECTED, VerificationState.UNREACHABLE],
)
def test_the_receipt_gives_way_to_the_outcome_once_stripe_answered(owner_client, pending, state):
    pending.verification_state = state
    pending.save(update_fields=["verification_state"])

    response = owner_client.get(key_url(pending) + "?submitted=1")

    text = page_text(response)
    assert "Keys received" not in text
    assert "will now be verified" not in text
    assert 'class="card success"' not in page_html(response)
    assert f"Key {pending.secret_hint}" in text


def test_the_receipt_is_not_shown_when_the_page_is_opened_later(owner_client, pending):
    assert "Keys received" not in page_text(owner_client.get(key_url(pending)))


@pytest.mark.parametrize(
    ("state", "lifecycle", "label"),
    [
        (VerificationState.VERIFIED, LifecycleState.ACTIVE, "Active"),
        (VerificationState.REJECTED, LifecycleState.ACTIVE, "Not in use (Stripe rejected it)"),
        (
            VerificationState.UNREACHABLE,
            LifecycleState.ACTIVE,
            "Not in use yet (Stripe could not be reached)",
        ),
        (VerificationState.PENDING, LifecycleState.ACTIVE, "Not in use yet (waiting for Stripe)"),
        (VerificationState.VERIFIED, LifecycleState.REVOKED, "Revoked"),
        (VerificationState.NOT_VERIFIED, LifecycleState.SUPERSEDED, "Replaced by a newer key"),
    ],
)
def test_the_key_page_says_whether_the_key_is_in_use(
    owner_client, merchant, owner, state, lifecycle, label
):
    retired = lifecycle != LifecycleState.ACTIVE
    credential = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        verification_state=state,
        lifecycle_state=lifecycle,
        **({"secret": None} if retired else {}),
    )

    text = page_text(owner_client.get(key_url(credential)))

    assert f"Status {label}" in text


def test_a_rejected_key_is_offered_a_replacement_not_a_compromise_report(
    owner_client, merchant, owner
):
    rejected = CredentialFactory(
        merchant=merchant, submitted_by=owner, verification_state=VerificationState.REJECTED
    )

    response = owner_client.get(key_url(rejected))

    assert "Report compromised" not in page_text(response)
    assert f"?replaces={rejected.pk}" in page_html(response)
    assert "Submit a new test key" in page_text(response)


# Following the verification ------------------------------------------------------------


def test_a_waiting_key_page_follows_its_status_with_a_script_and_offers_a_refresh_link(
    owner_client, pending
):
    html = page_html(owner_client.get(key_url(pending) + "?submitted=1"))

    block = re.search(r'<div id="key-status"([^>]*)>', html).group(1)
    assert f'data-status-url="{status_url(pending)}"' in block
    assert "data-waiting" in block
    assert "credentials/js/key-status" in html
    assert re.search(r'<a href="[^"]*\?submitted=1">Refresh</a>', html)
    # No inline script: the strict CSP would block it.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_a_decided_key_page_no_longer_follows_its_status(owner_client, verified):
    html = page_html(owner_client.get(key_url(verified)))

    assert "data-waiting" not in html
    assert ">Refresh</a>" not in html


def test_the_status_says_waiting_then_the_outcome_without_any_key_material(
    owner_client, pending, fake_stripe
):
    waiting = owner_client.get(status_url(pending))

    assert waiting.status_code == 200
    assert waiting["Content-Type"] == "application/json"
    assert "no-store" in waiting["Cache-Control"]
    assert waiting.json() == {
        "provider": "Stripe",
        "verification_state": "pending",
        "verification_label": "Waiting to be verified",
        "status": "waiting",
        "status_label": "Not in use yet (waiting for Stripe)",
        "waiting": True,
    }

    credential_verify(credential_id=pending.pk)
    decided = owner_client.get(status_url(pending))

    assert decided.json()["verification_state"] == "verified"
    assert decided.json()["waiting"] is False
    assert decided.json()["status_label"] == "Active"
    body = decided.content.decode()
    for material in (reload(pending).secret, pending.public_key, pending.secret_hint):
        assert material not in body
    assert set(json.loads(body)) == {
        "provider",
        "verification_state",
        "verification_label",
        "status",
        "status_label",
        "waiting",
    }


def test_the_status_of_a_retired_key_is_not_waiting(owner_client, merchant, owner):
    revoked = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        lifecycle_state=LifecycleState.REVOKED,
        secret=None,
        verification_state=VerificationState.NOT_VERIFIED,
    )

    assert owner_client.get(status_url(revoked)).json()["waiting"] is False


def test_the_status_is_refused_to_a_member_who_may_not_view_keys(
    pending, merchant, member_factory, client_for
):
    response = client_for(member_factory(merchant, "view-only")).get(status_url(pending))

    assert response.status_code == 403


def test_the_status_of_another_merchants_key_is_not_found(
    owner_client, merchant, other_merchant, other_owner
):
    theirs = CredentialFactory(merchant=other_merchant, submitted_by=other_owner)

    foreign = owner_client.get(status_url(theirs))
    under_ours = owner_client.get(merchant_url("credentials:status", merchant, pk=theirs.pk))

    assert foreign.status_code == 404
    assert under_ours.status_code == 404


def test_the_status_answers_only_get(owner_client, pending):
    assert owner_client.post(status_url(pending)).status_code == 405


# Rolling a key ----------------------------------------------------------------------------


def test_each_key_in_use_offers_roll_key_on_the_merchant_page_and_its_own_page(
    owner_client, merchant, verified
):
    roll = f"{submit_url(merchant)}?replaces={verified.pk}"

    overview = page_html(owner_client.get(merchant.get_absolute_url()))
    own_page = page_html(owner_client.get(key_url(verified)))

    assert f'href="{roll}">Roll key</a>' in overview
    assert f'href="{roll}">Roll key</a>' in own_page


def test_members_who_may_not_submit_are_not_offered_roll_key(
    merchant, verified, member_factory, client_for
):
    client = client_for(member_factory(merchant, "support"))

    assert "Roll key" not in page_text(client.get(merchant.get_absolute_url()))
    assert "Roll key" not in page_text(client.get(key_url(verified)))


def test_the_roll_form_says_which_key_it_replaces_and_in_which_mode(
    owner_client, merchant, verified
):
    response = owner_client.get(f"{submit_url(merchant)}?replaces={verified.pk}")

    text = page_text(response)
    assert response.status_code == 200
    assert f"Roll the test key {verified.secret_hint}" in text
    assert f"These keys replace the Stripe test key {verified.secret_hint}" in text
    assert "which stays in use until the new one is verified; then it is retired and erased" in text
    assert "Paste test keys" in text


def test_the_roll_form_ignores_another_merchants_key_and_a_retired_one(
    owner_client, merchant, owner, other_merchant, other_owner
):
    theirs = CredentialFactory(merchant=other_merchant, submitted_by=other_owner)
    retired = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        lifecycle_state=LifecycleState.REVOKED,
        secret=None,
        verification_state=VerificationState.NOT_VERIFIED,
    )

    for key in (theirs, retired):
        response = owner_client.get(f"{submit_url(merchant)}?replaces={key.pk}")
        assert response.status_code == 200
        assert "replace" not in page_text(response)
        assert key.secret_hint not in page_text(response)


def test_rolling_a_key_submits_its_replacement_and_the_old_key_stays_until_verified(
    owner_client, merchant, verified, fake_stripe
):
    new_secret = fake_key("sk_test_")

    response = submitted(owner_client, merchant, new_secret, replaces=verified)

    assert response.status_code == 302
    new = merchant.credentials.get(lifecycle_state=LifecycleState.ACTIVE, pk__gt=verified.pk)
    assert response.url == key_url(new) + "?submitted=1"
    assert reload(verified).lifecycle_state == LifecycleState.ACTIVE
    card = page_text(owner_client.get(merchant.get_absolute_url()))
    assert (
        f"It replaces {verified.secret_hint} once Stripe accepts it; until then "
        f"{verified.secret_hint} stays in use."
    ) in card

    credential_verify(credential_id=new.pk)

    assert reload(verified).replaced_by == new


def test_rolling_a_test_key_with_live_keys_is_refused_and_nothing_is_stored(
    owner_client, merchant, verified
):
    response = submitted(owner_client, merchant, fake_key("sk_live_"), replaces=verified)

    assert response.status_code == 200
    assert (
        f"You are rolling the test key {verified.secret_hint}, but this is a live key."
        in page_text(response)
    )
    assert merchant.credentials.count() == 1
    assert not merchant.credentials.filter(mode=Mode.LIVE).exists()


# Item 2: submitting always leads to a page the submitter may open -----------------------


def test_a_member_whose_old_role_submits_without_view_keys_gets_a_receipt_not_a_refusal(
    merchant, client_for, fake_stripe
):
    # A custom role made before the team rules asked for "View keys" with "Submit".
    role = RoleFactory(merchant=merchant, permissions=[VIEW_MERCHANT, SUBMIT_KEYS])
    client = client_for(MembershipFactory(merchant=merchant, role=role).user)

    response = submitted(client, merchant, fake_key("sk_test_"))

    assert response.status_code == 302
    assert response.url == merchant.get_absolute_url()
    page = client.get(response.url)
    assert page.status_code == 200
    assert "will now be verified with Stripe" in page_text(page)
