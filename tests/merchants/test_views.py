"""The dashboard, the merchant page, and signing in and out."""

import pytest
from django.urls import reverse
from django.utils import timezone

from credentials.models import LifecycleState, Mode, VerificationState
from tests.conftest import PASSWORD
from tests.factories import (
    CredentialFactory,
    MembershipFactory,
    MerchantFactory,
    UserFactory,
    default_role,
)
from tests.helpers import merchant_url, mode_card, queries_for

DASHBOARD = reverse("merchants:dashboard")
LOGIN = reverse("login")


# The dashboard


def test_dashboard_lists_only_the_users_merchants_with_their_role(
    merchant, other_merchant, owner, member_factory, client_for
):
    shop = MerchantFactory(name="Demo Tea Co", slug="demo-tea-co")
    MembershipFactory(user=owner, merchant=shop, role=default_role("support"))
    # Colleagues with other roles: the user's list shows each merchant once, with their role.
    member_factory(merchant, "developer")
    member_factory(shop, "owner")

    response = client_for(owner).get(DASHBOARD)

    assert response.status_code == 200
    listed = [(m.name, m.role_name) for m in response.context["merchants"]]
    assert listed == [("Demo Coffee Co", "Owner"), ("Demo Tea Co", "Support")]
    body = response.content.decode()
    assert "Your role: Owner" in body
    assert "Your role: Support" in body
    assert merchant_url("credentials:merchant", merchant) in body
    assert merchant_url("credentials:merchant", shop) in body
    assert "Demo Bakery Co" not in body
    assert merchant_url("credentials:merchant", other_merchant) not in body


def test_dashboard_shows_an_empty_state_to_a_user_without_membership(merchant, client_for):
    loner = UserFactory(email="loner@demo.test")

    response = client_for(loner).get(DASHBOARD)

    assert response.status_code == 200
    body = response.content.decode()
    assert "You are not a member of any merchant yet." in body
    assert "loner@demo.test" in body
    assert "Demo Coffee Co" not in body


def test_dashboard_redirects_an_anonymous_visitor_to_login(client):
    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response.url == f"{LOGIN}?next={DASHBOARD}"


def test_dashboard_query_count_does_not_grow_with_memberships(owner, client_for):
    client = client_for(owner)
    client.get(DASHBOARD)  # warm up per-process caches
    with_one = queries_for(client, DASHBOARD)
    roles = ["owner", "administrator", "developer", "support", "view-only"]
    for number in range(19):
        MembershipFactory(user=owner, role=default_role(roles[number % len(roles)]))

    with_twenty = queries_for(client, DASHBOARD)

    assert owner.memberships.count() == 20
    assert with_twenty == with_one


# The merchant page


@pytest.fixture
def current_keys(merchant, owner, member_factory):
    """A verified test key by the owner, a pending live key by a developer, and a test key
    they replaced."""
    developer = member_factory(merchant, "developer", email="dev@demo.test")
    replaced = CredentialFactory(
        merchant=merchant,
        mode=Mode.TEST,
        submitted_by=owner,
        secret=None,
        lifecycle_state=LifecycleState.SUPERSEDED,
        submitted_at=timezone.now() - timezone.timedelta(days=3),
    )
    test = CredentialFactory(
        merchant=merchant,
        mode=Mode.TEST,
        submitted_by=owner,
        verification_state=VerificationState.VERIFIED,
    )
    live = CredentialFactory(merchant=merchant, mode=Mode.LIVE, submitted_by=developer)
    return {"test": test, "live": live, "replaced": replaced}


def test_merchant_page_shows_each_modes_current_key_hint_submitter_and_state(
    merchant, owner_client, current_keys
):
    response = owner_client.get(merchant_url("credentials:merchant", merchant))

    assert response.status_code == 200
    body = response.content.decode()
    test_card, live_card = mode_card(body, "test"), mode_card(body, "live")
    assert current_keys["test"].secret_hint in test_card
    assert "owner@demo.test" in test_card
    assert "Verified" in test_card
    assert current_keys["live"].secret_hint in live_card
    assert "dev@demo.test" in live_card
    assert "Waiting to be verified" in live_card
    # The replaced key is not a current key (it appears only in the history below the cards).
    assert current_keys["replaced"].secret_hint not in test_card + live_card


def test_merchant_page_never_shows_a_secret(merchant, owner_client, current_keys):
    body = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    for key in (current_keys["test"], current_keys["live"]):
        assert key.secret not in body
        assert key.secret.split("_", 2)[2][:-4] not in body


def test_merchant_page_says_which_mode_has_no_key_yet(merchant, owner_client):
    body = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    assert "No test key yet." in mode_card(body, "test")
    assert "No live key yet." in mode_card(body, "live")


def test_merchant_page_is_404_for_a_member_of_another_merchant(
    merchant, other_owner, client_for, current_keys
):
    response = client_for(other_owner).get(merchant_url("credentials:merchant", merchant))

    assert response.status_code == 404
    assert current_keys["test"].secret_hint not in response.content.decode()


def test_owner_sees_the_submit_button(merchant, owner_client):
    body = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    assert "Submit keys" in body
    assert reverse("credentials:submit", kwargs={"slug": merchant.slug}) in body


def test_support_member_sees_keys_but_no_submit_button(
    merchant, member_factory, client_for, current_keys
):
    support = member_factory(merchant, "support")

    response = client_for(support).get(merchant_url("credentials:merchant", merchant))

    assert response.status_code == 200
    body = response.content.decode()
    assert current_keys["test"].secret_hint in body
    assert current_keys["live"].secret_hint in body
    assert "Submit keys" not in body
    assert reverse("credentials:submit", kwargs={"slug": merchant.slug}) not in body


def test_support_member_opens_a_key_page(merchant, member_factory, client_for, current_keys):
    support = member_factory(merchant, "support")

    response = client_for(support).get(current_keys["test"].get_absolute_url())

    assert response.status_code == 200


def test_view_only_member_sees_the_merchant_page_without_keys(
    merchant, member_factory, client_for, current_keys
):
    viewer = member_factory(merchant, "view-only")

    response = client_for(viewer).get(merchant_url("credentials:merchant", merchant))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Demo Coffee Co" in body
    assert "Stripe keys" not in body
    assert 'class="keys"' not in body
    assert current_keys["test"].secret_hint not in body
    assert current_keys["live"].secret_hint not in body
    assert "Submit keys" not in body


def test_view_only_member_gets_403_on_a_key_page(
    merchant, member_factory, client_for, current_keys
):
    viewer = member_factory(merchant, "view-only")

    response = client_for(viewer).get(current_keys["test"].get_absolute_url())

    assert response.status_code == 403
    assert current_keys["test"].secret_hint not in response.content.decode()


def test_view_only_member_of_another_merchant_gets_404_on_a_key_page(
    merchant, other_merchant, member_factory, client_for, current_keys
):
    outsider = member_factory(other_merchant, "view-only")

    response = client_for(outsider).get(current_keys["test"].get_absolute_url())

    assert response.status_code == 404


def test_merchant_page_query_count_does_not_grow_with_keys(merchant, owner, client_for):
    client = client_for(owner)
    CredentialFactory(merchant=merchant, submitted_by=owner)
    client.get(merchant_url("credentials:merchant", merchant))  # warm up per-process caches
    with_one = queries_for(client, merchant_url("credentials:merchant", merchant))
    submitters = [owner, *(UserFactory() for _ in range(4))]
    for number in range(19):
        CredentialFactory(
            merchant=merchant,
            mode=[Mode.TEST, Mode.LIVE][number % 2],
            submitted_by=submitters[number % len(submitters)],
        )

    with_twenty = queries_for(client, merchant_url("credentials:merchant", merchant))

    assert merchant.credentials.count() == 20
    assert with_twenty == with_one


# Signing in and out


def test_owner_signs_in_with_email_and_lands_on_the_dashboard(owner, client):
    response = client.post(LOGIN, {"username": "Owner@Demo.test", "password": PASSWORD})

    assert response.status_code == 302
    assert response.url == DASHBOARD
    assert client.get(DASHBOARD).status_code == 200


def test_sign_in_with_a_wrong_password_is_refused(owner, client):
    response = client.post(LOGIN, {"username": "owner@demo.test", "password": "wrong horse"})

    assert response.status_code == 200
    assert "That email address and password do not match an account" in (response.content.decode())
    assert client.get(DASHBOARD).status_code == 302


def test_sign_out_ends_the_session(owner_client):
    assert owner_client.get(DASHBOARD).status_code == 200

    response = owner_client.post(reverse("logout"))

    assert response.status_code == 302
    assert response.url == LOGIN
    after = owner_client.get(DASHBOARD)
    assert after.status_code == 302
    assert after.url == f"{LOGIN}?next={DASHBOARD}"


def test_sign_out_by_get_is_refused_and_keeps_the_session(owner_client):
    response = owner_client.get(reverse("logout"))

    assert response.status_code == 405
    assert owner_client.get(DASHBOARD).status_code == 200
