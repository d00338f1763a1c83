"""Sign-in throttling (django-axes): an address and client IP are locked together after
AXES_FAILURE_LIMIT wrong passwords, on the portal's and the admin's sign-in; the page says
when to try again; the lockout is audited once; the helpdesk lifts it in the admin (audited).
"""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.factories import UserFactory
from tests.helpers import page_text

Action = AuditEvent.Action
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
ELSEWHERE = "203.0.113.7"


def sign_in(client, email, password, *, address=LOGIN, **extra):
    return client.post(address, {"username": email, "password": password}, **extra)


def fail(client, email, times, *, address=LOGIN, **extra):
    """Type a wrong password `times` times; return the last answer."""
    for _ in range(times):
        response = sign_in(client, email, "not the password", address=address, **extra)
    return response


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def try_again_text() -> str:
    """Return what the lockout page must say: the locking failure's time plus 15 minutes,
    rounded up to the minute."""
    attempt = AccessAttempt.objects.get()
    ends = attempt.attempt_time + timedelta(minutes=15)
    if ends.second or ends.microsecond:
        ends = ends.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"Try again after {ends.day} {ends:%b %Y, %H:%M} UTC"


# Locking ------------------------------------------------------------------------------


def test_four_wrong_passwords_still_let_the_right_one_in(owner, client):
    fail(client, owner.email, 4)

    response = sign_in(client, owner.email, PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)


def test_the_fifth_wrong_password_locks_and_then_the_right_one_is_refused(owner, client):
    response = fail(client, owner.email, 5)
    assert response.status_code == 429
    assert "Too many attempts to sign in" in page_text(response)

    response = sign_in(client, owner.email, PASSWORD)

    assert response.status_code == 429
    assert not signed_in(client)


def test_the_lockout_page_says_when_to_try_again(owner, client):
    fail(client, owner.email, 5)

    text = page_text(sign_in(client, owner.email, PASSWORD))

    assert try_again_text() in text
    minutes = int(re.search(r"\(in (\d+) minutes?\)", text)[1])
    assert 1 <= minutes <= 15
    assert "Forgot your password?" in text


def test_the_admin_sign_in_is_throttled_too_and_shares_the_lockout(helpdesk_user, client):
    response = fail(client, helpdesk_user.email, 5, address=ADMIN_LOGIN)
    assert response.status_code == 429

    response = sign_in(client, helpdesk_user.email, PASSWORD, address=LOGIN)

    assert response.status_code == 429
    assert not signed_in(client)


def test_capitals_and_spaces_in_the_address_count_against_the_same_lockout(owner, client):
    for typed in ("Owner@demo.test", "OWNER@DEMO.TEST", " owner@demo.test", "owner@Demo.Test"):
        fail(client, typed, 1)
    response = fail(client, "owner@demo.TEST", 1)

    assert response.status_code == 429
    assert sign_in(client, owner.email, PASSWORD).status_code == 429


def test_the_same_account_from_another_address_is_not_locked(owner, client):
    fail(client, owner.email, 5)

    elsewhere = Client(REMOTE_ADDR=ELSEWHERE)
    response = sign_in(elsewhere, owner.email, PASSWORD)

    assert response.status_code == 302
    assert signed_in(elsewhere)


def test_another_account_from_the_locked_address_is_not_locked(owner, member_factory, client):
    colleague = member_factory(owner.memberships.get().merchant, "developer")
    fail(client, owner.email, 5)

    response = sign_in(client, colleague.email, PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)


def test_the_lockout_ends_after_the_cool_off(owner, client):
    fail(client, owner.email, 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    response = sign_in(client, owner.email, PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)


def test_the_failure_limit_comes_from_the_settings(owner, client, settings):
    settings.AXES_FAILURE_LIMIT = 2

    assert fail(client, owner.email, 2).status_code == 429


def test_a_successful_sign_in_clears_earlier_failures(owner, client):
    fail(client, owner.email, 4)
    sign_in(client, owner.email, PASSWORD)
    client.post(reverse("logout"))

    response = fail(client, owner.email, 4)

    assert response.status_code == 200
    assert sign_in(client, owner.email, PASSWORD).status_code == 302


def test_the_proxy_header_cannot_dodge_the_lockout_when_no_proxy_is_trusted(owner, client):
    for n in range(5):
        fail(client, owner.email, 1, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    response = sign_in(client, owner.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99")

    assert response.status_code == 429


def test_behind_a_trusted_proxy_clients_are_told_apart_by_the_forwarded_address(owner, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    fail(proxy, owner.email, 5, HTTP_X_FORWARDED_FOR="198.51.100.1")

    locked = sign_in(proxy, owner.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1")
    other = sign_in(
        Client(REMOTE_ADDR="10.0.0.2"), owner.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.2"
    )

    assert locked.status_code == 429
    assert other.status_code == 302


# Audit ---------------------------------------------------------------------------------


def test_each_failure_up_to_the_lockout_and_the_lockout_once_are_audited(owner, client):
    fail(client, owner.email, 5)
    fail(client, owner.email, 10)  # refused while locked: nothing new to record
    sign_in(client, owner.email, PASSWORD)

    failures = AuditEvent.objects.filter(action=Action.SIGN_IN_FAILED)
    lockout = AuditEvent.objects.get(action=Action.SIGN_IN_LOCKED_OUT)
    assert failures.count() == 5
    assert {event.actor_email for event in failures} == {owner.email}
    assert lockout.actor_email == owner.email
    assert lockout.ip == "127.0.0.1"
    assert lockout.details["failures"] == 5
    assert not AuditEvent.objects.filter(action=Action.SIGNED_IN).exists()


def test_a_second_lockout_after_the_first_ended_is_audited_again(owner, client):
    fail(client, owner.email, 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    fail(client, owner.email, 5)

    assert AuditEvent.objects.filter(action=Action.SIGN_IN_LOCKED_OUT).count() == 2


# Lifting a lockout in the admin --------------------------------------------------------


@pytest.fixture
def locked_owner(owner):
    fail(Client(), owner.email, 5)
    return owner


def test_the_helpdesk_sees_the_lockout_in_the_admin(locked_owner, helpdesk_user, client_for):
    response = client_for(helpdesk_user).get(reverse("admin:axes_accessattempt_changelist"))

    assert response.status_code == 200
    assert locked_owner.email in page_text(response)


def test_the_helpdesk_lifts_a_lockout_and_that_is_audited(locked_owner, helpdesk_user, client_for):
    attempt = AccessAttempt.objects.get()

    response = client_for(helpdesk_user).post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=Action.SIGN_IN_UNLOCKED)
    assert event.actor == helpdesk_user
    assert locked_owner.email in event.target
    client = Client()
    assert sign_in(client, locked_owner.email, PASSWORD).status_code == 302


def test_lifting_several_lockouts_at_once_audits_each(locked_owner, helpdesk_user, client_for):
    fail(Client(REMOTE_ADDR=ELSEWHERE), locked_owner.email, 5)
    pks = list(AccessAttempt.objects.values_list("pk", flat=True))

    client_for(helpdesk_user).post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": pks, "post": "yes"},
    )

    events = AuditEvent.objects.filter(action=Action.SIGN_IN_UNLOCKED)
    assert events.count() == 2
    assert {event.actor for event in events} == {helpdesk_user}
    assert not AccessAttempt.objects.exists()


def test_staff_outside_the_helpdesk_cannot_see_or_lift_lockouts(locked_owner, client_for):
    staff = UserFactory(email="staff-no-group@demo.test", is_staff=True)
    client = client_for(staff)
    attempt = AccessAttempt.objects.get()

    listing = client.get(reverse("admin:axes_accessattempt_changelist"))
    deleting = client.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )

    assert listing.status_code == 403
    assert deleting.status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert not AuditEvent.objects.filter(action=Action.SIGN_IN_UNLOCKED).exists()


def test_expired_attempts_cleared_by_axes_are_not_recorded_as_lifted(owner, client):
    fail(client, owner.email, 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    sign_in(client, owner.email, PASSWORD)  # axes clears expired attempts on the way

    assert not AccessAttempt.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.SIGN_IN_UNLOCKED).exists()


def test_the_stored_form_data_of_failed_attempts_keeps_no_csrf_token_or_code(owner):
    client = Client(enforce_csrf_checks=False)
    client.post(
        LOGIN,
        {
            "username": owner.email,
            "password": "not the password",
            "otp_token": "123456",
            "csrfmiddlewaretoken": "a-csrf-token-value",
        },
    )

    post_data = AccessAttempt.objects.get().post_data
    assert "123456" not in post_data
    assert "a-csrf-token-value" not in post_data
    assert "not the password" not in post_data
