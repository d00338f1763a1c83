"""`manage.py seed_demo`: the demo helpdesk user and two demo merchants with their owners."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from merchants.models import Merchant
from teams import two_factor
from teams.helpdesk import HELPDESK_GROUP
from teams.models import Membership
from tests.helpers import totp_code

DEMO_PASSWORD = "demo-password-for-tests"
DEMO_EMAILS = (
    "helpdesk@demo.test",
    "lead@demo.test",
    "owner@demo.test",
    "other-owner@demo.test",
)


def seed_demo():
    """Run the command and return what it printed."""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_password(output, email):
    match = re.search(rf"^\s+{re.escape(email)}\s+password: (\S+)$", output, re.MULTILINE)
    assert match, f"no password printed for {email}:\n{output}"
    return match[1]


def admin_login(client, email, password, otp_token=""):
    return client.post(
        reverse("admin:login"),
        {
            "username": email,
            "password": password,
            "otp_token": otp_token,
            "next": reverse("admin:index"),
        },
    )


@pytest.fixture
def demo_password(settings):
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    return DEMO_PASSWORD


@pytest.fixture
def no_demo_password(settings):
    settings.DEMO_PASSWORD = ""


def signs_in(username, password):
    """Return whether `username` and `password` sign a fresh client in.

    The sign-in throttling backend (django-axes) needs the request a sign-in comes with.
    """
    return Client().login(request=HttpRequest(), username=username, password=password)


def owner_membership(email):
    return Membership.objects.select_related("merchant", "role").get(user__email=email)


# What it creates.


def test_creates_the_helpdesk_user_as_staff_in_the_helpdesk_group(db, demo_password):
    seed_demo()

    helpdesk = get_user_model().objects.get(email="helpdesk@demo.test")
    assert helpdesk.is_staff
    assert not helpdesk.is_superuser
    assert list(helpdesk.groups.values_list("name", flat=True)) == [HELPDESK_GROUP]
    assert not helpdesk.memberships.exists()


def test_creates_owner_as_owner_of_demo_coffee_co(db, demo_password):
    seed_demo()

    membership = owner_membership("owner@demo.test")
    assert membership.merchant.name == "Demo Coffee Co"
    assert membership.role.is_owner
    assert not membership.user.is_staff


def test_creates_other_owner_as_owner_of_demo_bakery_co(db, demo_password):
    seed_demo()

    membership = owner_membership("other-owner@demo.test")
    assert membership.merchant.name == "Demo Bakery Co"
    assert membership.role.is_owner
    assert not membership.user.is_staff


def test_each_demo_merchant_has_exactly_its_own_owner(db, demo_password):
    seed_demo()

    coffee = Merchant.objects.get(name="Demo Coffee Co")
    bakery = Merchant.objects.get(name="Demo Bakery Co")
    assert [m.user.email for m in coffee.memberships.select_related("user")] == ["owner@demo.test"]
    assert [m.user.email for m in bakery.memberships.select_related("user")] == [
        "other-owner@demo.test"
    ]


def test_running_twice_creates_nothing_twice(db, demo_password):
    seed_demo()
    counts = (
        get_user_model().objects.count(),
        Merchant.objects.count(),
        Membership.objects.count(),
        Group.objects.count(),
        get_user_model().groups.through.objects.count(),
    )

    seed_demo()

    assert (
        get_user_model().objects.count(),
        Merchant.objects.count(),
        Membership.objects.count(),
        Group.objects.count(),
        get_user_model().groups.through.objects.count(),
    ) == counts
    assert counts[:3] == (4, 2, 2)


# Signing in.


@pytest.mark.parametrize("email", DEMO_EMAILS)
def test_demo_users_sign_in_with_demo_password(db, demo_password, email):
    seed_demo()

    assert signs_in(email, DEMO_PASSWORD)


@pytest.mark.parametrize("email", DEMO_EMAILS)
def test_demo_users_cannot_sign_in_with_another_password(db, demo_password, email):
    seed_demo()

    assert not signs_in(email, "not-the-demo-password")


@pytest.mark.parametrize("typed", ["Owner@Demo.test", "OWNER@DEMO.TEST", "owner@demo.test"])
def test_sign_in_is_by_email_in_any_case(db, demo_password, typed):
    seed_demo()

    assert signs_in(typed, DEMO_PASSWORD)


def test_owner_signs_in_through_the_portal_login_page_with_capitals(db, demo_password):
    seed_demo()
    client = Client()

    response = client.post(
        reverse("login"), {"username": "Owner@Demo.test", "password": DEMO_PASSWORD}
    )

    assert response.status_code == 302
    assert response.url == reverse("merchants:dashboard")
    assert client.session["_auth_user_id"] == str(
        get_user_model().objects.get(email="owner@demo.test").pk
    )


def test_rerunning_with_demo_password_resets_the_passwords(db, settings, no_demo_password):
    seed_demo()
    settings.DEMO_PASSWORD = DEMO_PASSWORD

    seed_demo()

    for email in DEMO_EMAILS:
        assert signs_in(email, DEMO_PASSWORD), email


# The helpdesk in the admin.


def test_helpdesk_user_signs_in_to_the_admin_and_sees_the_credentials_changelist(db, demo_password):
    seed_demo()
    client = Client()

    helpdesk = get_user_model().objects.get(email="helpdesk@demo.test")
    code = totp_code(two_factor.device_confirmed(helpdesk))

    signed_in = admin_login(client, "helpdesk@demo.test", DEMO_PASSWORD, code)
    changelist = client.get(reverse("admin:credentials_credential_changelist"))

    assert signed_in.status_code == 302
    assert signed_in.url == reverse("admin:index")
    assert changelist.status_code == 200


def test_merchant_owner_cannot_sign_in_to_the_admin(db, demo_password):
    seed_demo()
    client = Client()

    refused = admin_login(client, "owner@demo.test", DEMO_PASSWORD)
    changelist = client.get(reverse("admin:credentials_credential_changelist"))

    assert refused.status_code == 200  # the login form again, with an error
    assert "_auth_user_id" not in client.session
    assert changelist.status_code == 302
    assert changelist.url.startswith(reverse("admin:login"))


# Without DEMO_PASSWORD.


def test_without_demo_password_a_generated_password_is_printed_and_works(db, no_demo_password):
    output = seed_demo()

    for email in DEMO_EMAILS:
        password = printed_password(output, email)
        assert len(password) >= 12
        assert signs_in(email, password), email


def test_without_demo_password_each_run_generates_a_new_password(db, no_demo_password):
    first = printed_password(seed_demo(), "owner@demo.test")
    get_user_model().objects.all().delete()
    Merchant.objects.all().delete()

    second = printed_password(seed_demo(), "owner@demo.test")

    assert first != second


def test_without_demo_password_a_second_run_keeps_the_first_password(db, no_demo_password):
    password = printed_password(seed_demo(), "owner@demo.test")

    output = seed_demo()

    assert "(unchanged; set DEMO_PASSWORD to reset)" in output
    assert signs_in("owner@demo.test", password)


def test_prints_where_to_sign_in(db, demo_password, settings):
    output = seed_demo()

    assert f"{settings.SITE_URL}/accounts/login/" in output
    assert f"{settings.SITE_URL}/admin/" in output


def test_seed_creates_a_helpdesk_lead_who_may_reveal_and_a_plain_agent_who_may_not(db):
    seed_demo()
    User = get_user_model()

    lead = User.objects.get(email="lead@demo.test")
    agent = User.objects.get(email="helpdesk@demo.test")

    assert lead.is_staff
    assert lead.has_perm("credentials.reveal_secret")
    assert lead.groups.filter(name="Helpdesk lead").exists()
    assert not agent.has_perm("credentials.reveal_secret")
