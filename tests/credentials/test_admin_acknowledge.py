"""The helpdesk acknowledges submissions in the admin, and works its queue by follow-up time.

Each allowed case sits next to its denied one: a staff member who may only view keys neither
sees nor uses the list action or the button.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from credentials.models import Credential, HelpdeskFlag, Mode, VerificationState
from credentials.services.helpdesk import credential_acknowledge, followups_send_due
from tests.factories import CredentialFactory, MerchantFactory, UserFactory
from tests.helpers import verify_session

CREDENTIALS = reverse("admin:credentials_credential_changelist")


def change_url(credential) -> str:
    return reverse("admin:credentials_credential_change", args=[credential.pk])


def acknowledge_url(credential) -> str:
    return reverse("admin:credentials_credential_acknowledge", args=[credential.pk])


@pytest.fixture(params=["helpdesk_user", "superuser"])
def agent(request):
    """A helpdesk agent, then a platform admin: both may acknowledge."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def agent_client(agent, client_for):
    return client_for(agent)


@pytest.fixture
def new_agent(helpdesk_user):
    """Return a function adding another member of the helpdesk, in `helpdesk_user`'s groups."""

    def make(**fields):
        user = UserFactory(is_staff=True, **fields)
        user.groups.set(helpdesk_user.groups.all())
        return user

    return make


@pytest.fixture
def viewer(db):
    """A staff member who may look at the queue but not change it."""
    user = UserFactory(email="auditor@demo.test", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="credentials", codename="view_credential")
    )
    return user


@pytest.fixture
def viewer_client(viewer, client_for):
    return client_for(viewer)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def waiting(merchant, owner, now):
    """Three verified submissions nobody has acknowledged, their follow-ups due now."""
    return [
        CredentialFactory(
            merchant=merchant,
            submitted_by=owner,
            mode=Mode.TEST,
            verification_state=VerificationState.VERIFIED,
            followup_due_at=now - timedelta(minutes=number),
        )
        for number in range(3)
    ]


def acknowledge_selected(client, credentials, **extra):
    return client.post(
        CREDENTIALS,
        {"action": "acknowledge_selected", "_selected_action": [c.pk for c in credentials]},
        **extra,
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def acknowledged_pks() -> set[int]:
    return set(
        Credential.objects.filter(acknowledged_at__isnull=False).values_list("pk", flat=True)
    )


def listed(response) -> list[int]:
    """Return the pks of the rows a changelist shows, in order."""
    assert response.status_code == 200
    return [obj.pk for obj in response.context["cl"].result_list]


def cell(html: str, credential, field: str) -> str:
    """Return the text of one column in the changelist row of `credential`."""
    rows = [row for row in re.findall(r"<tr>.*?</tr>", html, re.S) if credential.secret_hint in row]
    assert len(rows) == 1
    match = re.search(rf'<t[hd] class="field-{field}\b[^"]*">(.*?)</t[hd]>', rows[0], re.S)
    assert match, f"no {field} column"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def offered_actions(response) -> set[str]:
    action_form = response.context["action_form"]
    if action_form is None:
        return set()
    return {name for name, _label in action_form.fields["action"].choices if name}


# The list action


def test_acknowledge_action_is_offered_to_staff_who_may_change_keys(agent_client, waiting):
    response = agent_client.get(CREDENTIALS)

    assert "acknowledge_selected" in offered_actions(response)
    assert 'value="acknowledge_selected"' in response.content.decode()


def test_acknowledge_action_is_not_offered_to_staff_who_may_only_view_keys(viewer_client, waiting):
    response = viewer_client.get(CREDENTIALS)

    assert response.status_code == 200
    assert "acknowledge_selected" not in offered_actions(response)
    assert 'value="acknowledge_selected"' not in response.content.decode()


def test_acknowledge_action_acknowledges_the_selected_rows_and_records_who_and_when(
    agent, agent_client, waiting
):
    before = timezone.now()

    response = acknowledge_selected(agent_client, waiting[:2])

    assert response.status_code == 302
    assert acknowledged_pks() == {waiting[0].pk, waiting[1].pk}
    for credential in waiting[:2]:
        credential.refresh_from_db()
        assert credential.acknowledged_by == agent
        assert before <= credential.acknowledged_at <= timezone.now()
        assert credential.followup_due_at is None
    waiting[2].refresh_from_db()
    assert waiting[2].followup_due_at is not None


def test_acknowledge_action_by_staff_who_may_only_view_keys_acknowledges_nothing(
    viewer_client, waiting
):
    response = acknowledge_selected(viewer_client, waiting)

    assert response.status_code == 200  # the list again: no such action for this user
    assert acknowledged_pks() == set()


def test_acknowledge_action_stops_the_reminders_of_the_selected_rows_only(
    agent_client, waiting, now
):
    acknowledge_selected(agent_client, waiting[:2])

    assert followups_send_due(now=now) == 1

    reminded = Credential.objects.filter(reminders_sent__gt=0).values_list("pk", flat=True)
    assert list(reminded) == [waiting[2].pk]


@pytest.mark.parametrize(
    ("selected", "message"),
    [(1, "1 submission acknowledged."), (3, "3 submissions acknowledged.")],
)
def test_acknowledge_action_message_says_how_many(agent_client, waiting, selected, message):
    response = acknowledge_selected(agent_client, waiting[:selected])

    assert messages_of(response) == [message]


def test_acknowledge_action_keeps_an_earlier_acknowledgement_and_says_so(
    agent_client, waiting, new_agent
):
    colleague = new_agent(email="colleague@demo.test")
    credential_acknowledge(credential=waiting[0], actor=colleague)
    waiting[0].refresh_from_db()
    first_at = waiting[0].acknowledged_at

    response = acknowledge_selected(agent_client, waiting)

    assert messages_of(response) == ["2 submissions acknowledged. 1 had already been acknowledged."]
    waiting[0].refresh_from_db()
    assert (waiting[0].acknowledged_by, waiting[0].acknowledged_at) == (colleague, first_at)


# The button on the change page


def test_change_page_offers_the_acknowledge_button_as_a_post_form(agent_client, waiting):
    credential = waiting[0]

    body = agent_client.get(change_url(credential)).content.decode()

    form = re.search(
        rf'<form method="post" action="{re.escape(acknowledge_url(credential))}"[^>]*>(.*?)</form>',
        body,
        re.S,
    )
    assert form, "no POST form to the acknowledge address"
    assert 'name="csrfmiddlewaretoken"' in form.group(1)
    assert "Acknowledge" in form.group(1)


def test_change_page_shows_no_acknowledge_button_to_staff_who_may_only_view_keys(
    viewer_client, waiting
):
    response = viewer_client.get(change_url(waiting[0]))

    assert response.status_code == 200
    assert acknowledge_url(waiting[0]) not in response.content.decode()


def test_acknowledge_button_acknowledges_records_who_and_returns_to_the_change_page(
    agent, agent_client, waiting, now
):
    credential = waiting[0]
    before = timezone.now()

    response = agent_client.post(acknowledge_url(credential))

    assert response.status_code == 302
    assert response.url == change_url(credential)
    assert messages_of(response) == ["Acknowledged: no more reminders."]
    credential.refresh_from_db()
    assert credential.acknowledged_by == agent
    assert before <= credential.acknowledged_at <= timezone.now()
    assert credential.followup_due_at is None
    assert followups_send_due(now=now + timedelta(days=30)) == 2
    credential.refresh_from_db()
    assert credential.reminders_sent == 0


def test_acknowledge_button_by_staff_who_may_only_view_keys_is_403(viewer_client, waiting):
    response = viewer_client.post(acknowledge_url(waiting[0]))

    assert response.status_code == 403
    assert acknowledged_pks() == set()


def test_acknowledge_address_refuses_a_get_with_405(agent_client, waiting):
    response = agent_client.get(acknowledge_url(waiting[0]))

    assert response.status_code == 405
    assert acknowledged_pks() == set()


def test_acknowledge_button_refuses_a_post_without_the_csrf_token(agent, waiting):
    client = Client(enforce_csrf_checks=True)
    verify_session(client, agent)

    response = client.post(acknowledge_url(waiting[0]))

    assert response.status_code == 403
    assert acknowledged_pks() == set()


def test_acknowledge_button_sends_a_merchant_member_to_the_admin_login(owner, client_for, waiting):
    response = client_for(owner).post(acknowledge_url(waiting[0]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert acknowledged_pks() == set()


def test_acknowledge_button_for_an_unknown_submission_is_404(agent_client, waiting):
    response = agent_client.post(
        reverse("admin:credentials_credential_acknowledge", args=[waiting[-1].pk + 1000])
    )

    assert response.status_code == 404


def test_acknowledge_button_pressed_twice_keeps_the_first_acknowledgement(
    agent_client, waiting, new_agent
):
    credential = waiting[0]
    colleague = new_agent(email="colleague@demo.test")
    credential_acknowledge(credential=credential, actor=colleague)
    credential.refresh_from_db()
    first_at = credential.acknowledged_at

    response = agent_client.post(acknowledge_url(credential))

    assert response.status_code == 302
    assert messages_of(response) == ["This submission was already acknowledged."]
    credential.refresh_from_db()
    assert (credential.acknowledged_by, credential.acknowledged_at) == (colleague, first_at)


def test_acknowledged_change_page_shows_who_acknowledged_instead_of_the_button(
    agent_client, waiting, helpdesk_user
):
    credential = waiting[0]
    credential_acknowledge(credential=credential, actor=helpdesk_user)

    body = agent_client.get(change_url(credential)).content.decode()

    assert "Acknowledged by helpdesk@demo.test" in body
    assert acknowledge_url(credential) not in body


# The queue: next follow-up, order and filters


@pytest.fixture
def queue(merchant, other_merchant, owner, other_owner, helpdesk_user, now):
    """A submission due an hour ago, one due in an hour, one acknowledged, one flagged."""
    due_earlier = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        verification_state=VerificationState.VERIFIED,
        followup_due_at=now - timedelta(hours=1),
        submitted_at=now - timedelta(days=2),
    )
    due_later = CredentialFactory(
        merchant=other_merchant,
        submitted_by=other_owner,
        verification_state=VerificationState.VERIFIED,
        followup_due_at=now + timedelta(hours=1),
        submitted_at=now - timedelta(hours=20),
        helpdesk_flags=[HelpdeskFlag.DUPLICATE_ELSEWHERE],
    )
    acknowledged = CredentialFactory(
        merchant=merchant,
        mode=Mode.LIVE,
        submitted_by=owner,
        verification_state=VerificationState.VERIFIED,
        submitted_at=now - timedelta(minutes=5),
    )
    credential_acknowledge(credential=acknowledged, actor=helpdesk_user)
    return {"due_earlier": due_earlier, "due_later": due_later, "acknowledged": acknowledged}


def test_changelist_shows_when_the_next_follow_up_is_due_relative_to_now(agent_client, queue):
    response = agent_client.get(CREDENTIALS, {"acknowledged": "all"})

    body = response.content.decode()
    assert ">Follow-up<" in body
    assert cell(body, queue["due_later"], "followup") in ("in 1 h", "in 59 min")
    assert cell(body, queue["due_earlier"], "followup") == "overdue 1 h"
    assert cell(body, queue["acknowledged"], "followup") == "-"
    assert cell(body, queue["acknowledged"], "acknowledged_by_label") == "helpdesk@demo.test"


def test_changelist_lists_the_due_follow_ups_first_and_the_acknowledged_last(agent_client, queue):
    response = agent_client.get(CREDENTIALS, {"acknowledged": "all"})

    assert listed(response) == [
        queue["due_earlier"].pk,
        queue["due_later"].pk,
        queue["acknowledged"].pk,
    ]


def test_changelist_sorts_by_the_next_follow_up_column_nulls_last(agent_client, queue):
    column = agent_client.get(CREDENTIALS).context["cl"].list_display.index("followup")

    response = agent_client.get(CREDENTIALS, {"o": str(column), "acknowledged": "all"})

    assert listed(response) == [
        queue["due_earlier"].pk,
        queue["due_later"].pk,
        queue["acknowledged"].pk,
    ]


def test_changelist_sorts_by_the_next_follow_up_column_descending(agent_client, queue):
    column = agent_client.get(CREDENTIALS).context["cl"].list_display.index("followup")

    response = agent_client.get(CREDENTIALS, {"o": f"-{column}", "acknowledged": "all"})

    assert listed(response) == [
        queue["due_later"].pk,
        queue["due_earlier"].pk,
        queue["acknowledged"].pk,
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"acknowledged": "no"}, {"due_earlier", "due_later"}),
        ({"acknowledged": "yes"}, {"acknowledged"}),
        ({"flagged": "yes"}, {"due_later"}),
        ({}, {"due_earlier", "due_later"}),
        ({"acknowledged": "all"}, {"due_earlier", "due_later", "acknowledged"}),
        ({"acknowledged": "overdue"}, {"due_earlier"}),
    ],
)
def test_changelist_helpdesk_filters_narrow_the_queue(agent_client, queue, query, expected):
    response = agent_client.get(CREDENTIALS, query)

    assert set(listed(response)) == {queue[name].pk for name in expected}


def test_changelist_offers_the_helpdesk_filters_by_name(agent_client, queue):
    body = agent_client.get(CREDENTIALS).content.decode()

    assert "Waiting for the helpdesk" in body
    assert "Flagged for a look" in body


def test_changelist_query_count_does_not_grow_with_acknowledged_and_reminded_rows(
    agent_client, merchant, owner, helpdesk_user, new_agent, now
):
    def populated(**fields):
        credential = CredentialFactory(
            verification_state=VerificationState.VERIFIED,
            followup_due_at=now - timedelta(minutes=1),
            helpdesk_flags=[HelpdeskFlag.ACCOUNT_MISMATCH],
            helpdesk_notified_at=now - timedelta(days=1),
            **fields,
        )
        followups_send_due(now=now)
        return credential

    credential_acknowledge(
        credential=populated(merchant=merchant, submitted_by=owner), actor=helpdesk_user
    )
    everything = {"acknowledged": "all"}
    agent_client.get(CREDENTIALS, everything)  # warm up per-process caches
    with CaptureQueriesContext(connection) as with_one:
        assert agent_client.get(CREDENTIALS, everything).status_code == 200
    agents = [helpdesk_user, *(new_agent() for _ in range(4))]
    merchants = [merchant, *(MerchantFactory() for _ in range(4))]
    for number in range(29):
        credential = populated(
            merchant=merchants[number % len(merchants)],
            submitted_by=UserFactory(),
            mode=[Mode.TEST, Mode.LIVE][number % 2],
        )
        if number % 3 == 0:
            credential_acknowledge(credential=credential, actor=agents[number % len(agents)])

    with CaptureQueriesContext(connection) as with_thirty:
        response = agent_client.get(CREDENTIALS, everything)

    assert len(listed(response)) == 30
    assert Credential.objects.filter(reminders_sent__gt=0).count() == 30
    assert len(with_thirty) == len(with_one)
