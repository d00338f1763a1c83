"""The helpdesk queue (issue #14): it opens on what waits for the helpdesk, never lists retired
keys there, leaves rejected keys to the merchant, and says in words what each row needs.

Each allowed case sits beside its denied one: staff who may only view keys, and merchant
members, who never get into the admin.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from credentials.admin_queue import relative_due
from credentials.models import (
    Credential,
    HelpdeskFlag,
    LifecycleState,
    Mode,
    VerificationState,
)
from credentials.selectors import credentials_queue_counts
from credentials.services.helpdesk import credential_acknowledge, followups_send_due
from merchants.models import Integration
from tests.factories import CredentialFactory, MerchantFactory, UserFactory
from tests.helpers import page_html, page_text, queries_for

CREDENTIALS = reverse("admin:credentials_credential_changelist")
ADMIN_HOME = reverse("admin:index")


def change_url(credential) -> str:
    return reverse("admin:credentials_credential_change", args=[credential.pk])


def listed(response) -> list[int]:
    assert response.status_code == 200
    return [obj.pk for obj in response.context["cl"].result_list]


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def row_of(body: str, credential) -> str:
    rows = [row for row in re.findall(r"<tr>.*?</tr>", body, re.S) if credential.secret_hint in row]
    assert len(rows) == 1, f"{credential.secret_hint} is in {len(rows)} rows"
    return rows[0]


def cell_html(body: str, credential, field: str) -> str:
    match = re.search(
        rf'<t[hd] class="field-{field}\b[^"]*">(.*?)</t[hd]>', row_of(body, credential), re.S
    )
    assert match, f"no {field} column"
    return match.group(1)


def cell(body: str, credential, field: str) -> str:
    return re.sub(r"<[^>]+>", "", cell_html(body, credential, field)).strip()


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def agent_client(helpdesk_user, client_for):
    return client_for(helpdesk_user)


@pytest.fixture
def viewer_client(db, client_for):
    """A staff member who may look at keys but not work the queue."""
    user = UserFactory(email="auditor@demo.test", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="credentials", codename="view_credential")
    )
    return client_for(user)


@pytest.fixture
def keys(merchant, other_merchant, owner, other_owner, helpdesk_user, now):
    """One key in each situation the queue tells apart."""

    def key(**fields):
        fields.setdefault("merchant", merchant)
        fields.setdefault("submitted_by", owner)
        fields.setdefault("verification_state", VerificationState.VERIFIED)
        return CredentialFactory(**fields)

    made = {
        "overdue": key(followup_due_at=now - timedelta(hours=2, minutes=5)),
        "due_later": key(
            merchant=other_merchant,
            submitted_by=other_owner,
            mode=Mode.LIVE,
            followup_due_at=now + timedelta(hours=3, minutes=5),
            helpdesk_flags=[HelpdeskFlag.DUPLICATE_ELSEWHERE, HelpdeskFlag.ACCOUNT_MISMATCH],
        ),
        "pending": key(verification_state=VerificationState.PENDING, mode=Mode.LIVE),
        "rejected": key(
            merchant=other_merchant,
            submitted_by=other_owner,
            verification_state=VerificationState.REJECTED,
            verification_code="invalid_api_key",
            followup_due_at=now - timedelta(hours=5),
        ),
        "superseded": key(
            secret=None,
            lifecycle_state=LifecycleState.SUPERSEDED,
            followup_due_at=now - timedelta(hours=1),
        ),
        "revoked": key(
            secret=None,
            lifecycle_state=LifecycleState.REVOKED,
            followup_due_at=now - timedelta(hours=1),
        ),
        "acknowledged": key(mode=Mode.LIVE),
    }
    credential_acknowledge(credential=made["acknowledged"], actor=helpdesk_user)
    return made


def pks(keys, *names) -> set[int]:
    return {keys[name].pk for name in names}


# Item 1: bulk acknowledge counts from the selection


def acknowledge_selected(client, credentials, query=""):
    return client.post(
        CREDENTIALS + query,
        {"action": "acknowledge_selected", "_selected_action": [c.pk for c in credentials]},
    )


def test_bulk_acknowledge_from_the_waiting_queue_counts_the_selected_rows_never_negative(
    agent_client, merchant, owner, now
):
    waiting = [
        CredentialFactory(
            merchant=merchant,
            submitted_by=owner,
            verification_state=VerificationState.VERIFIED,
            followup_due_at=now - timedelta(minutes=number),
        )
        for number in range(4)
    ]

    response = acknowledge_selected(agent_client, waiting, "?acknowledged=no")

    assert messages_of(response) == ["4 submissions acknowledged."]
    assert Credential.objects.filter(acknowledged_at__isnull=True).count() == 0


def test_bulk_acknowledge_counts_a_row_a_colleague_acknowledged_meanwhile_as_skipped(
    agent_client, merchant, owner, helpdesk_user, now
):
    waiting = [
        CredentialFactory(
            merchant=merchant,
            submitted_by=owner,
            verification_state=VerificationState.VERIFIED,
            followup_due_at=now,
        )
        for _ in range(4)
    ]
    colleague = UserFactory(email="colleague@demo.test", is_staff=True)
    colleague.groups.set(helpdesk_user.groups.all())
    credential_acknowledge(credential=waiting[0], actor=colleague)

    # The agent's page was loaded before: the four rows are selected from the waiting queue.
    response = acknowledge_selected(agent_client, waiting)

    assert messages_of(response) == ["3 submissions acknowledged. 1 had already been acknowledged."]
    assert Credential.objects.get(pk=waiting[0].pk).acknowledged_by == colleague


def test_bulk_acknowledge_by_staff_who_may_only_view_keys_acknowledges_nothing(viewer_client, keys):
    acknowledge_selected(viewer_client, [keys["overdue"], keys["due_later"]])

    assert set(
        Credential.objects.filter(acknowledged_at__isnull=False).values_list("pk", flat=True)
    ) == pks(keys, "acknowledged")


# The queue opens on what waits for the helpdesk


def test_queue_opens_on_waiting_for_the_helpdesk_active_unacknowledged_decided_or_not(
    agent_client, keys
):
    response = agent_client.get(CREDENTIALS)

    assert set(listed(response)) == pks(keys, "overdue", "due_later", "pending", "rejected")
    body = page_html(response)
    selected = re.search(r'<li class="selected">\s*<a[^>]*>(.*?)</a>', body, re.S)
    assert selected
    assert selected.group(1).strip() == "Waiting for the helpdesk"


@pytest.mark.parametrize("retired", ["superseded", "revoked"])
def test_retired_keys_are_never_in_the_waiting_queue_even_unacknowledged_and_due(
    agent_client, keys, retired
):
    for query in ({}, {"acknowledged": "no"}, {"acknowledged": "overdue"}):
        assert keys[retired].pk not in listed(agent_client.get(CREDENTIALS, query))


def test_all_keys_stays_reachable_from_the_filter_and_lists_every_key(agent_client, keys):
    body = page_html(agent_client.get(CREDENTIALS))
    link = re.search(r'<a href="([^"]*)"[^>]*>\s*All keys\s*</a>', body)
    assert link, "no All keys link"

    response = agent_client.get(CREDENTIALS + link.group(1).replace("&amp;", "&"))

    assert set(listed(response)) == {credential.pk for credential in keys.values()}


def test_show_all_beside_the_result_count_lists_every_key_not_the_default_queue(agent_client, keys):
    body = page_html(agent_client.get(CREDENTIALS, {"q": "demo"}))
    link = re.search(r'<a href="([^"]*)">Show all</a>', body)
    assert link, "no Show all link"

    response = agent_client.get(CREDENTIALS + link.group(1).replace("&amp;", "&"))

    assert set(listed(response)) == {credential.pk for credential in keys.values()}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("overdue", {"overdue"}),
        ("merchant", {"rejected"}),
        ("yes", {"acknowledged"}),
    ],
)
def test_queue_filter_choices_narrow_to_what_they_say(agent_client, keys, choice, expected):
    response = agent_client.get(CREDENTIALS, {"acknowledged": choice})

    assert set(listed(response)) == pks(keys, *expected)


def test_other_filters_narrow_within_the_waiting_queue_by_default(agent_client, keys):
    response = agent_client.get(CREDENTIALS, {"mode__exact": "live"})

    assert set(listed(response)) == pks(keys, "due_later", "pending")


def test_waiting_queue_lists_the_overdue_first_and_what_waits_for_the_merchant_last(
    agent_client, keys
):
    order = listed(agent_client.get(CREDENTIALS))

    assert order[:2] == [keys["overdue"].pk, keys["due_later"].pk]
    assert order[-1] == keys["rejected"].pk


def test_overdue_filter_lists_the_longest_overdue_first(agent_client, keys, merchant, owner, now):
    # Its page follows the follow-up index without the queue's first sort key (#15): the
    # order an agent sees must not change for it.
    longer = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        mode=Mode.LIVE,
        verification_state=VerificationState.VERIFIED,
        followup_due_at=now - timedelta(hours=5),
    )

    order = listed(agent_client.get(CREDENTIALS, {"acknowledged": "overdue"}))

    assert order == [longer.pk, keys["overdue"].pk]


def test_merchant_member_asking_for_the_queue_is_sent_to_the_admin_login(owner_client, keys):
    response = owner_client.get(CREDENTIALS)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


# Rejected keys wait for the merchant and are not reminded


def test_rejected_key_gets_no_reminder_while_a_verified_one_due_as_long_does(keys, now):
    assert followups_send_due(now=now) == 1

    reminded = set(Credential.objects.filter(reminders_sent__gt=0).values_list("pk", flat=True))
    assert reminded == pks(keys, "overdue")


def test_rejected_key_is_reminded_again_once_verified_again(keys, now):
    rejected = keys["rejected"]
    Credential.objects.filter(pk=rejected.pk).update(verification_state=VerificationState.VERIFIED)

    followups_send_due(now=now)

    assert Credential.objects.get(pk=rejected.pk).reminders_sent == 1


def test_rejected_key_shows_waiting_for_the_merchant_in_the_queue(agent_client, keys):
    body = page_html(agent_client.get(CREDENTIALS))

    assert cell(body, keys["rejected"], "followup") == "Waiting for the merchant"
    assert cell(body, keys["rejected"], "provider_said") == "Rejected: key not accepted"


def test_rejected_key_page_says_it_waits_for_the_merchant(agent_client, keys):
    text = page_text(agent_client.get(change_url(keys["rejected"])))

    assert "Waiting for the merchant" in text
    assert "No reminders are sent for it" in text


# The columns


def test_queue_columns_come_in_the_order_an_agent_decides_by(agent_client, keys):
    response = agent_client.get(CREDENTIALS)

    assert list(response.context["cl"].list_display) == [
        "action_checkbox",
        "merchant",
        "provider_mode",
        "secret_hint",
        "provider_said",
        "flagged",
        "followup",
        "acknowledged_by_label",
    ]
    assert response.context["title"] == "The helpdesk queue"
    head = re.search(r"<thead>(.*?)</thead>", page_html(response), re.S).group(1)
    headers = [re.sub(r"<[^>]+>", " ", th).split() for th in re.findall(r"<th.*?</th>", head, re.S)]
    assert [" ".join(words) for words in headers][1:] == [
        "Merchant",
        "Key",
        "Secret hint",
        "What the provider said",
        "Flags",
        "Follow-up",
        "Acknowledged by",
    ]


def test_queue_row_says_provider_mode_outcome_and_relative_follow_up(agent_client, keys):
    body = page_html(agent_client.get(CREDENTIALS, {"acknowledged": "all"}))

    assert cell(body, keys["due_later"], "provider_mode") == "Stripe · Live"
    assert cell(body, keys["due_later"], "provider_said") == "Verified"
    assert cell(body, keys["due_later"], "followup") == "in 3 h"
    assert cell(body, keys["overdue"], "followup") == "overdue 2 h"
    assert cell(body, keys["pending"], "followup") == "Not started"
    assert cell(body, keys["superseded"], "provider_said") == "Verified (replaced)"
    assert cell(body, keys["revoked"], "provider_said") == "Verified (revoked)"
    assert cell(body, keys["acknowledged"], "acknowledged_by_label") == "helpdesk@demo.test"
    assert cell(body, keys["overdue"], "acknowledged_by_label") == "-"


def test_overdue_follow_up_carries_its_exact_time_for_a_hover(agent_client, keys):
    body = page_html(agent_client.get(CREDENTIALS))

    followup = cell_html(body, keys["overdue"], "followup")
    assert f'datetime="{keys["overdue"].followup_due_at.isoformat()}"' in followup
    assert 'class="keyhouse-overdue"' in followup


def test_flags_column_is_a_warning_icon_whose_text_alternative_names_the_flags(agent_client, keys):
    body = page_html(agent_client.get(CREDENTIALS))

    flagged = cell_html(body, keys["due_later"], "flagged")
    assert "icon-alert.svg" in flagged
    assert "icon-yes.svg" not in flagged
    alt = re.search(r'alt="([^"]*)"', flagged).group(1)
    assert "The same key is active at another merchant" in alt
    assert "Test and live keys belong to different accounts" in alt
    assert cell(body, keys["overdue"], "flagged") == "-"


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(hours=3, minutes=20), "in 3 h"),
        (timedelta(minutes=25, seconds=30), "in 25 min"),
        (timedelta(seconds=20), "due now"),
        (-timedelta(seconds=20), "due now"),
        (-timedelta(hours=2, minutes=40), "overdue 2 h"),
        (-timedelta(minutes=5, seconds=10), "overdue 5 min"),
        (timedelta(days=3, hours=1), "in 3 d"),
        (-timedelta(hours=47), "overdue 47 h"),
    ],
)
def test_relative_due_says_how_long_until_or_since_in_one_unit(now, delta, words):
    assert relative_due(now + delta, now=now) == words


def test_queue_query_count_does_not_grow_with_rows(agent_client, helpdesk_user, now):
    def waiting_key(**fields):
        return CredentialFactory(
            verification_state=VerificationState.VERIFIED,
            followup_due_at=now - timedelta(minutes=1),
            helpdesk_flags=[HelpdeskFlag.ACCOUNT_MISMATCH],
            **fields,
        )

    credential_acknowledge(credential=waiting_key(), actor=helpdesk_user)
    waiting_key()
    everything = f"{CREDENTIALS}?acknowledged=all"
    agent_client.get(everything)  # warm up per-process caches
    with_two = queries_for(agent_client, everything)
    for number in range(20):
        credential = waiting_key(
            merchant=MerchantFactory(), mode=[Mode.TEST, Mode.LIVE][number % 2]
        )
        if number % 3 == 0:
            credential_acknowledge(credential=credential, actor=helpdesk_user)

    assert queries_for(agent_client, everything) == with_two


# The admin home: N waiting, M overdue


def summary_text(response) -> str:
    """Return the page's text with no space before a comma (a link's end leaves one)."""
    return page_text(response).replace(" ,", ",")


def test_admin_home_says_how_many_keys_wait_and_how_many_are_overdue(agent_client, keys):
    response = agent_client.get(ADMIN_HOME)

    assert "Keys: 4 waiting, 1 overdue" in summary_text(response)
    body = page_html(response)
    assert f'href="{CREDENTIALS}">4 waiting</a>' in body
    assert f'href="{CREDENTIALS}?acknowledged=overdue">1 overdue</a>' in body


def test_admin_home_counts_take_the_same_queries_however_many_keys_wait(agent_client, keys, now):
    agent_client.get(ADMIN_HOME)  # the session's first save is not the page's
    with_few = queries_for(agent_client, ADMIN_HOME)
    CredentialFactory.create_batch(
        10, verification_state=VerificationState.VERIFIED, followup_due_at=now
    )

    assert queries_for(agent_client, ADMIN_HOME) == with_few
    assert "Keys: 14 waiting, 11 overdue" in summary_text(agent_client.get(ADMIN_HOME))


def test_admin_home_shows_no_key_counts_to_staff_who_may_not_see_keys(client_for, keys):
    clerk = UserFactory(email="clerk@demo.test", is_staff=True)

    text = page_text(client_for(clerk).get(ADMIN_HOME))

    assert "waiting" not in text
    assert "overdue" not in text


def test_queue_counts_selector_counts_waiting_and_overdue_in_one_query(
    keys, now, django_assert_num_queries
):
    with django_assert_num_queries(1):
        counts = credentials_queue_counts(now=now)

    assert counts == {"waiting": 4, "overdue": 1}


# The key page


def test_key_page_shows_its_flags_above_every_fieldset(agent_client, keys):
    body = page_html(agent_client.get(change_url(keys["due_later"])))

    flags = body.index('class="keyhouse-flags"')
    assert flags < body.index("<fieldset")
    box = body[flags : body.index("</div>", flags)]
    assert "The same key is active at another merchant" in box
    assert "Test and live keys belong to different accounts" in box


def test_key_page_without_flags_has_no_flag_box(agent_client, keys):
    assert 'class="keyhouse-flags"' not in page_html(agent_client.get(change_url(keys["overdue"])))


def test_key_page_lists_the_requested_integrations_by_name(agent_client, merchant, owner):
    credential = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        requested_integrations=[Integration.SUBSCRIPTIONS, Integration.ONLINE_PAYMENTS],
    )

    body = page_html(agent_client.get(change_url(credential)))

    assert (
        '<ul class="keyhouse-list"><li>Online payments</li><li>Subscriptions and billing</li></ul>'
        in body
    )
    assert "subscriptions" not in body.replace("Subscriptions", "")
    assert "see merchants.models" not in body


def test_key_page_offers_no_save_and_refuses_a_post_without_changing_the_key(agent_client, keys):
    credential = keys["overdue"]
    page = agent_client.get(change_url(credential))

    posted = agent_client.post(change_url(credential), {"note": "rewritten", "_save": "Save"})

    body = page_html(page)
    assert 'name="_save"' not in body
    assert 'name="_continue"' not in body
    assert posted.status_code == 403
    assert Credential.objects.get(pk=credential.pk).note == credential.note
    assert "changed successfully" not in page_text(posted)


def test_key_page_still_offers_the_queue_buttons_to_an_agent(agent_client, keys):
    body = page_html(agent_client.get(change_url(keys["overdue"])))

    assert reverse("admin:credentials_credential_acknowledge", args=[keys["overdue"].pk]) in body
    assert reverse("admin:credentials_credential_revoke", args=[keys["overdue"].pk]) in body


def test_key_page_offers_no_view_on_site_link_into_the_merchants_portal(agent_client, keys):
    credential = keys["overdue"]

    body = page_html(agent_client.get(change_url(credential)))

    assert "View on site" not in body
    assert credential.get_absolute_url() not in body
    assert "/r/" not in body  # the admin's view-on-site redirect
