"""Staff sessions end 12 hours after signing in and after 30 minutes without a request
(STAFF_SESSION_MAX_AGE, STAFF_SESSION_IDLE), with a message saying why; merchant users keep
Django's session defaults.

Time passing is shown by moving the session's recorded times into the past.
"""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from teams.staff_sessions import LAST_SEEN_AT, SIGNED_IN_AT
from tests.conftest import PASSWORD

ADMIN = reverse("admin:index")
DASHBOARD = reverse("merchants:dashboard")
# Whatever the machine's speed, a sign-in just made is far younger than this.
JUST_NOW = timedelta(minutes=5).total_seconds()


def age_session(client, *, signed_in_ago=timedelta(0), last_seen_ago=timedelta(0)):
    """Move the session's sign-in and last request back by the given times."""
    now = timezone.now()
    session = client.session
    session[SIGNED_IN_AT] = (now - signed_in_ago).timestamp()
    session[LAST_SEEN_AT] = (now - last_seen_ago).timestamp()
    session.save()


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def staff_client(helpdesk_user, client_for):
    client = client_for(helpdesk_user)
    assert client.get(ADMIN).status_code == 200
    return client


def test_staff_active_within_the_idle_time_stay_signed_in(staff_client):
    age_session(
        staff_client, signed_in_ago=timedelta(hours=11), last_seen_ago=timedelta(minutes=29)
    )

    assert staff_client.get(ADMIN).status_code == 200
    assert staff_client.get(ADMIN).status_code == 200


def test_staff_idle_for_30_minutes_are_signed_out_with_a_message(staff_client):
    age_session(staff_client, signed_in_ago=timedelta(hours=1), last_seen_ago=timedelta(minutes=30))

    response = staff_client.get(ADMIN)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert messages_of(response) == [
        "You were signed out after 30 minutes without activity. Sign in again to continue."
    ]
    assert "_auth_user_id" not in staff_client.session


def test_staff_are_signed_out_12_hours_after_signing_in_however_active(staff_client):
    age_session(staff_client, signed_in_ago=timedelta(hours=12), last_seen_ago=timedelta(0))

    response = staff_client.get(ADMIN)

    assert response.status_code == 302
    assert messages_of(response) == [
        "Staff sessions last at most 12 hours: you were signed out. Sign in again to continue."
    ]
    assert staff_client.get(ADMIN).status_code == 302


def test_the_message_shows_on_the_sign_in_page(staff_client):
    age_session(staff_client, last_seen_ago=timedelta(hours=1))

    response = staff_client.get(DASHBOARD, follow=True)

    assert "You were signed out after 30 minutes without activity" in response.content.decode()


def test_each_request_counts_as_activity(staff_client):
    age_session(staff_client, last_seen_ago=timedelta(minutes=20))
    staff_client.get(ADMIN)
    # Twenty minutes later: 40 minutes after the first request, 20 after the last.
    session = staff_client.session
    session[LAST_SEEN_AT] -= timedelta(minutes=20).total_seconds()
    session[SIGNED_IN_AT] -= timedelta(minutes=20).total_seconds()
    session.save()

    assert staff_client.get(ADMIN).status_code == 200


def test_the_limits_come_from_the_settings(staff_client, settings):
    settings.STAFF_SESSION_IDLE = 5 * 60
    age_session(staff_client, last_seen_ago=timedelta(minutes=6))

    response = staff_client.get(ADMIN)

    assert response.status_code == 302
    assert messages_of(response) == [
        "You were signed out after 5 minutes without activity. Sign in again to continue."
    ]


def test_signing_in_starts_a_fresh_staff_session(helpdesk_user, client):
    client.post(reverse("login"), {"username": helpdesk_user.email, "password": PASSWORD})

    session = client.session
    assert "_auth_user_id" in session
    assert timezone.now().timestamp() - session[SIGNED_IN_AT] < JUST_NOW
    assert session[LAST_SEEN_AT] == session[SIGNED_IN_AT]


def test_merchant_users_keep_their_sessions_when_idle_or_old(owner_client):
    owner_client.get(DASHBOARD)
    age_session(owner_client, signed_in_ago=timedelta(hours=13), last_seen_ago=timedelta(hours=2))

    assert owner_client.get(DASHBOARD).status_code == 200
