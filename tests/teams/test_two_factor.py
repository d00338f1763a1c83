"""Two-factor sign-in (TOTP): staff always sign in to the admin with a code, and set up their
authenticator app before any admin page; merchant users may set one up from their account
page, and an Owner may require it of the whole team."""

import base64
import io
import re
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from teams import two_factor
from tests.factories import UserFactory
from tests.helpers import (
    merchant_url,
    page_html,
    page_text,
    reload,
    totp_code,
    totp_device,
    verify_session,
    wrong_totp_code,
)

PASSWORD = "correct horse battery"
Action = AuditEvent.Action
ADMIN_INDEX = reverse("admin:index")
ADMIN_LOGIN = reverse("admin:login")
ADMIN_SETUP = reverse("admin:two_factor_setup")
CREDENTIALS = reverse("admin:credentials_credential_changelist")
ACCOUNT = reverse("account:account")
SETUP = reverse("account:two_factor")
VERIFY = reverse("account:two_factor_verify")
REMOVE = reverse("account:two_factor_remove")
TEAM_TWO_FACTOR = reverse("account:team_two_factor")


def admin_sign_in(client, user, otp_token="", next_url=ADMIN_INDEX):
    return client.post(
        ADMIN_LOGIN,
        {"username": user.email, "password": PASSWORD, "otp_token": otp_token, "next": next_url},
    )


def portal_sign_in(client, user, otp_token=""):
    return client.post(
        reverse("login"), {"username": user.email, "password": PASSWORD, "otp_token": otp_token}
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def key_on_page(response) -> bytes:
    """Return the key a setup page shows as text (base32 in groups), as raw bytes."""
    match = re.search(r"Key: <code[^>]*>([A-Z2-7 ]+)</code>", page_html(response))
    assert match, "no key shown as text"
    compact = match[1].replace(" ", "")
    return base64.b32decode(compact + "=" * (-len(compact) % 8))


def pending_device(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user, confirmed=False)


@pytest.fixture
def no_throttling(settings):
    """After a wrong code a device refuses every code for a while (1 s, then doubling): tests
    that give the right code right after a wrong one turn that wait off."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


@pytest.fixture
def agent(helpdesk_user):
    """A helpdesk agent with an authenticator app."""
    totp_device(helpdesk_user)
    return helpdesk_user


@pytest.fixture
def newcomer(db):
    """A helpdesk agent who has not set up an authenticator app yet."""
    from teams.helpdesk import HELPDESK_GROUP, helpdesk_groups_ensure

    user = UserFactory(email="newcomer@keyhouse.test", is_staff=True)
    user.groups.add(helpdesk_groups_ensure()[HELPDESK_GROUP])
    return user


# The admin: email, password and code ----------------------------------------------------------


def test_admin_sign_in_form_has_the_code_field(client):
    response = client.get(ADMIN_LOGIN)

    assert 'name="otp_token"' in page_html(response)


def test_staff_with_the_right_code_get_into_the_admin(client, agent):
    response = admin_sign_in(client, agent, totp_code(totp_device(agent)))

    assert response.status_code == 302
    assert response.url == ADMIN_INDEX
    assert client.get(CREDENTIALS).status_code == 200


def test_staff_without_a_code_are_refused_and_stay_out(client, agent):
    response = admin_sign_in(client, agent)

    assert response.status_code == 200
    assert two_factor.CODE_MISSING in page_text(response)
    assert not signed_in(client)
    assert client.get(CREDENTIALS).url.startswith(ADMIN_LOGIN)


def test_staff_with_a_wrong_code_are_refused_and_stay_out(client, agent):
    response = admin_sign_in(client, agent, wrong_totp_code(totp_device(agent)))

    assert response.status_code == 200
    assert two_factor.CODE_WRONG in page_text(response)
    assert not signed_in(client)
    assert client.get(CREDENTIALS).url.startswith(ADMIN_LOGIN)


def test_a_code_signs_in_once_a_replayed_code_is_refused(agent):
    code = totp_code(totp_device(agent))
    first, second = Client(), Client()

    admin_sign_in(first, agent, code)
    replayed = admin_sign_in(second, agent, code)

    assert signed_in(first)
    assert not signed_in(second)
    assert two_factor.CODE_WRONG in page_text(replayed)


def test_after_a_wrong_code_even_the_right_one_waits(client, agent, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600  # an hour's wait: no race with the clock
    device = totp_device(agent)
    admin_sign_in(client, agent, wrong_totp_code(device))

    response = admin_sign_in(client, agent, totp_code(device))

    assert not signed_in(client)
    assert two_factor.CODE_THROTTLED in page_text(response)


def test_another_users_code_does_not_sign_in(client, agent, superuser):
    response = admin_sign_in(client, agent, totp_code(totp_device(superuser)))

    assert not signed_in(client)
    assert two_factor.CODE_WRONG in page_text(response)


@pytest.mark.parametrize(
    "address",
    [
        ADMIN_INDEX,
        CREDENTIALS,
        "/admin/credentials/credential/1/reveal/",
        "/admin/credentials/credential/1/revoke/",
        "/admin/audit/auditevent/",
    ],
)
def test_a_session_signed_in_without_a_code_opens_no_admin_page(client, agent, address):
    totp_device(agent)
    client.force_login(agent)  # a password-only session (the portal's sign-in, say)

    response = client.get(address)

    assert response.status_code == 302
    assert response.url.startswith(ADMIN_LOGIN)


def test_a_merchant_member_with_an_authenticator_app_still_cannot_enter_the_admin(client, owner):
    response = admin_sign_in(client, owner, totp_code(totp_device(owner)))

    assert response.status_code == 200
    assert not signed_in(client)


# Staff without a device: enrolment before any admin page --------------------------------------


def test_staff_without_a_device_sign_in_with_their_password_and_are_taken_to_setup(
    client, newcomer
):
    response = admin_sign_in(client, newcomer, next_url=CREDENTIALS)
    setup = client.get(response.url, follow=True)

    assert setup.redirect_chain[-1][0].startswith(ADMIN_SETUP)
    html = page_html(setup)
    assert 'src="data:image/svg+xml;base64,' in html
    assert key_on_page(setup) == pending_device(newcomer).bin_key
    assert 'name="otp_token"' in html


@pytest.mark.parametrize(
    "address",
    [ADMIN_INDEX, CREDENTIALS, "/admin/credentials/credential/1/reveal/", ADMIN_LOGIN],
)
def test_staff_without_a_device_reach_no_admin_page_before_setup(client, newcomer, address):
    client.force_login(newcomer)

    response = client.get(address)

    assert response.status_code == 302
    assert response.url.startswith(ADMIN_SETUP)


def test_setup_page_shows_the_same_key_until_it_is_confirmed(client, newcomer):
    client.force_login(newcomer)

    first = key_on_page(client.get(ADMIN_SETUP))
    second = key_on_page(client.get(ADMIN_SETUP))

    assert first == second
    assert TOTPDevice.objects.filter(user=newcomer).count() == 1


def test_setup_with_a_wrong_code_is_refused_and_the_admin_stays_closed(client, newcomer):
    client.force_login(newcomer)
    client.get(ADMIN_SETUP)

    response = client.post(ADMIN_SETUP, {"otp_token": wrong_totp_code(pending_device(newcomer))})

    assert response.status_code == 200
    assert two_factor.CODE_WRONG in page_text(response)
    assert not two_factor.has_device(newcomer)
    assert client.get(CREDENTIALS).url.startswith(ADMIN_SETUP)


def test_setup_with_the_right_code_opens_the_admin_and_is_audited(client, newcomer):
    client.force_login(newcomer)
    client.get(ADMIN_SETUP)

    response = client.post(
        ADMIN_SETUP, {"otp_token": totp_code(pending_device(newcomer)), "next": CREDENTIALS}
    )

    assert response.status_code == 302
    assert response.url == CREDENTIALS
    assert client.get(CREDENTIALS).status_code == 200
    assert two_factor.has_device(newcomer)
    [event] = AuditEvent.objects.filter(action=Action.USER_CHANGED)
    assert event.actor == newcomer
    assert event.details["two_factor"] == "enrolled"


def test_setup_does_not_send_anyone_to_another_site(client, newcomer):
    client.force_login(newcomer)
    client.get(ADMIN_SETUP)

    response = client.post(
        ADMIN_SETUP,
        {"otp_token": totp_code(pending_device(newcomer)), "next": "https://evil.test/"},
    )

    assert response.url == ADMIN_INDEX


def test_staff_with_a_device_are_not_offered_a_second_setup(client, agent):
    client.force_login(agent)

    response = client.get(ADMIN_SETUP)

    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=agent).count() == 1


def test_admin_setup_is_not_for_merchant_members(client, owner):
    client.force_login(owner)

    response = client.get(ADMIN_SETUP)

    assert response.url.startswith(ADMIN_LOGIN)
    assert not TOTPDevice.objects.filter(user=owner).exists()


def test_device_admin_never_shows_a_key(client, superuser, agent):
    verify_session(client, superuser)
    device = totp_device(agent)

    page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))

    assert page.status_code == 200
    assert device.key not in page_html(page)
    assert 'name="key"' not in page_html(page)
    assert client.get(reverse("admin:otp_totp_totpdevice_add")).status_code == 403


# Merchant users: their account page ----------------------------------------------------------


def test_the_account_page_is_linked_from_the_top_bar(owner_client):
    page = owner_client.get(reverse("merchants:dashboard"))

    assert f'href="{ACCOUNT}"' in page_html(page)


def test_a_member_sets_up_an_authenticator_app_from_the_account_page(owner, owner_client):
    assert f'href="{SETUP}"' in page_html(owner_client.get(ACCOUNT))
    setup = owner_client.get(SETUP)
    assert 'src="data:image/svg+xml;base64,' in page_html(setup)
    key = key_on_page(setup)

    response = owner_client.post(SETUP, {"otp_token": totp_code(pending_device(owner))})

    assert response.status_code == 302
    device = two_factor.device_confirmed(owner)
    assert device.bin_key == key
    assert "On: signing in asks for a code" in page_text(owner_client.get(ACCOUNT))


def test_a_wrong_code_does_not_turn_it_on(owner, owner_client):
    owner_client.get(SETUP)

    response = owner_client.post(SETUP, {"otp_token": wrong_totp_code(pending_device(owner))})

    assert two_factor.CODE_WRONG in page_text(response)
    assert not two_factor.has_device(owner)


def test_the_setup_page_sends_anonymous_visitors_to_sign_in(db, client):
    response = client.get(SETUP)

    assert response.url.startswith(reverse("login"))
    assert not TOTPDevice.objects.exists()


def test_portal_sign_in_without_a_device_asks_for_the_password_only(client, owner):
    response = portal_sign_in(client, owner)

    assert response.status_code == 302
    assert signed_in(client)


def test_portal_sign_in_with_a_device_asks_for_the_code(client, owner, no_throttling):
    device = totp_device(owner)

    missing = portal_sign_in(client, owner)
    wrong = portal_sign_in(client, owner, wrong_totp_code(device))

    assert two_factor.CODE_MISSING in page_text(missing)
    assert two_factor.CODE_WRONG in page_text(wrong)
    assert not signed_in(client)
    right = portal_sign_in(client, owner, totp_code(device))
    assert right.status_code == 302
    assert signed_in(client)


def test_turning_it_off_needs_a_current_code(owner, owner_client, no_throttling):
    device = totp_device(owner)

    owner_client.post(REMOVE, {"otp_token": wrong_totp_code(device)})
    assert two_factor.has_device(owner)

    owner_client.post(REMOVE, {"otp_token": totp_code(device)})
    assert not two_factor.has_device(owner)
    assert AuditEvent.objects.filter(action=Action.USER_CHANGED, actor=owner).exists()


def test_staff_cannot_turn_it_off(agent, client_for):
    client = client_for(agent)

    client.post(REMOVE, {"otp_token": totp_code(totp_device(agent))})

    assert two_factor.has_device(agent)


# An Owner requires two-factor sign-in of the team ---------------------------------------------


def require(client, merchant, required=True):
    data = {"merchant": merchant.slug}
    if required:
        data["required"] = "on"
    return client.post(TEAM_TWO_FACTOR, data)


@pytest.fixture
def requiring_owner_client(owner):
    """The Owner, signed in with their authenticator app."""
    client = Client()
    verify_session(client, owner)
    return client


def test_an_owner_with_a_device_requires_it_of_the_team_and_it_is_audited(
    merchant, owner, requiring_owner_client
):
    require(requiring_owner_client, merchant)

    assert reload(merchant).require_two_factor
    [event] = AuditEvent.objects.filter(merchant=merchant, action=Action.MERCHANT_PROFILE_CHANGED)
    assert event.actor == owner
    assert event.details == {"require_two_factor": {"from": False, "to": True}}
    assert "Required of every member" in page_text(requiring_owner_client.get(ACCOUNT))


def test_an_owner_without_a_device_is_asked_to_set_one_up_first(merchant, owner_client):
    response = require(owner_client, merchant)

    assert not reload(merchant).require_two_factor
    assert "Set up an authenticator app for your own account first" in page_text(
        owner_client.get(response.url)
    )


def test_an_administrator_cannot_require_it_and_the_refusal_is_audited(merchant, member_factory):
    admin = member_factory(merchant, "administrator")
    client = Client()
    verify_session(client, admin)

    require(client, merchant)

    assert not reload(merchant).require_two_factor
    [event] = AuditEvent.objects.filter(merchant=merchant, action=Action.ACTION_REFUSED)
    assert event.actor == admin
    assert "Only an Owner" in event.details["reason"]


def test_the_owner_of_another_merchant_gets_404_and_changes_nothing(
    merchant, other_owner, client_for
):
    client = client_for(other_owner)

    response = require(client, merchant)

    assert response.status_code == 404
    assert not reload(merchant).require_two_factor


@pytest.fixture
def requiring(merchant):
    merchant.require_two_factor = True
    merchant.save(update_fields=["require_two_factor"])
    return merchant


def test_a_member_without_a_device_is_sent_to_setup_before_any_page_of_that_merchant(
    requiring, member_factory, client_for
):
    developer = member_factory(requiring, "developer")
    page = merchant_url("credentials:merchant", requiring)

    response = client_for(developer).get(page)

    assert response.status_code == 302
    assert response.url == f"{SETUP}?next={quote(page)}"


def test_a_member_with_a_device_signed_in_without_a_code_is_asked_for_one(
    requiring, member_factory, no_throttling
):
    developer = member_factory(requiring, "developer")
    device = totp_device(developer)
    client = Client()
    client.force_login(developer)
    page = merchant_url("teams:team", requiring)

    asked = client.get(page)
    wrong = client.post(VERIFY, {"otp_token": wrong_totp_code(device), "next": page})
    right = client.post(VERIFY, {"otp_token": totp_code(device), "next": page})

    assert asked.url == f"{VERIFY}?next={quote(page)}"
    assert two_factor.CODE_WRONG in page_text(wrong)
    assert right.url == page
    assert client.get(page).status_code == 200


def test_after_setup_the_member_reaches_the_merchant(requiring, member_factory, client_for):
    developer = member_factory(requiring, "developer")
    client = client_for(developer)
    page = merchant_url("credentials:merchant", requiring)
    client.get(SETUP)

    done = client.post(SETUP, {"otp_token": totp_code(pending_device(developer)), "next": page})

    assert done.url == page
    assert client.get(page).status_code == 200


def test_a_merchant_that_does_not_require_it_lets_members_in_without(merchant, owner_client):
    assert owner_client.get(merchant_url("credentials:merchant", merchant)).status_code == 200


def test_a_non_member_is_not_told_that_a_merchant_requires_it(requiring, other_owner, client_for):
    response = client_for(other_owner).get(merchant_url("credentials:merchant", requiring))

    assert response.status_code == 404


def test_a_member_cannot_turn_it_off_while_the_team_requires_it(requiring, owner):
    device = totp_device(owner)
    client = Client()
    verify_session(client, owner)

    client.post(REMOVE, {"otp_token": totp_code(device)})

    assert two_factor.has_device(owner)


# seed_demo: the demo staff's key ---------------------------------------------------------------

DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def seed_demo() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture
def demo_settings(settings):
    settings.DEMO_PASSWORD = "demo-password-for-tests"
    settings.DEMO_TOTP_SECRET = ""
    return settings


@pytest.mark.parametrize("email", ["helpdesk@demo.test", "lead@demo.test"])
def test_seed_demo_gives_staff_the_key_of_demo_totp_secret_and_its_code_signs_in(
    db, demo_settings, email
):
    demo_settings.DEMO_TOTP_SECRET = DEMO_TOTP_SECRET.lower()
    output = seed_demo()
    device = TOTPDevice.objects.get(user__email=email, confirmed=True)
    client = Client()

    response = client.post(
        ADMIN_LOGIN,
        {
            "username": email,
            "password": demo_settings.DEMO_PASSWORD,
            "otp_token": totp_code(device),
            "next": ADMIN_INDEX,
        },
    )

    assert device.bin_key == base64.b32decode(DEMO_TOTP_SECRET)
    assert "JBSW Y3DP EHPK 3PXP" in output
    assert f"otpauth://totp/Keyhouse%3A{quote(email)}?secret={DEMO_TOTP_SECRET}" in output
    assert response.url == ADMIN_INDEX
    assert client.get(CREDENTIALS).status_code == 200


def test_seed_demo_gives_merchant_owners_no_device(db, demo_settings):
    demo_settings.DEMO_TOTP_SECRET = DEMO_TOTP_SECRET
    seed_demo()

    assert not TOTPDevice.objects.filter(user__email__in=["owner@demo.test"]).exists()


def test_seed_demo_without_a_secret_prints_a_generated_key_that_works(db, demo_settings):
    output = seed_demo()

    match = re.search(r"helpdesk@demo\.test\s+TOTP key: ([A-Z2-7 ]+)$", output, re.MULTILINE)
    assert match, output
    printed = match[1].replace(" ", "")
    device = TOTPDevice.objects.get(user__email="helpdesk@demo.test")
    assert device.bin_key == base64.b32decode(printed + "=" * (-len(printed) % 8))
    assert "otpauth://totp/" in output


def test_seed_demo_run_again_keeps_the_key_unless_demo_totp_secret_is_set(db, demo_settings):
    seed_demo()
    first = TOTPDevice.objects.get(user__email="lead@demo.test").key

    again = seed_demo()
    assert TOTPDevice.objects.get(user__email="lead@demo.test").key == first
    assert "unchanged; set DEMO_TOTP_SECRET to reset" in again

    demo_settings.DEMO_TOTP_SECRET = DEMO_TOTP_SECRET
    seed_demo()
    assert TOTPDevice.objects.filter(user__email="lead@demo.test").get().bin_key == (
        base64.b32decode(DEMO_TOTP_SECRET)
    )


def test_seed_demo_refuses_a_demo_totp_secret_that_is_not_base32(db, demo_settings):
    demo_settings.DEMO_TOTP_SECRET = "not-base32!"

    with pytest.raises(CommandError, match="DEMO_TOTP_SECRET is not a base32 key"):
        seed_demo()
