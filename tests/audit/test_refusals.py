"""Refused access in the audit trail (issue #12 findings 10 and 12a).

Someone probing another tenant's pages writes one event per route per window into that
tenant's trail, and one more that says how many further attempts there were; the reveal page
audits a refused visit, not only a refused POST, and answers a merchant 404.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, RefusalWindow
from audit.refusals import refusal_windows_close
from credentials.models import Credential
from teams.helpdesk import HELPDESK_LEAD_GROUP, helpdesk_groups_ensure
from tests.factories import CredentialFactory, MerchantFactory
from tests.helpers import merchant_url, page_text

DENIED = AuditEvent.Action.ACCESS_DENIED
PROBED_PAGES = ["merchants:profile", "credentials:merchant", "teams:team", "teams:roles"]


def refusals(merchant, actor=None):
    events = AuditEvent.objects.filter(merchant=merchant, action=DENIED)
    return events.filter(actor=actor) if actor is not None else events


def probe(client, merchant, times: int) -> None:
    for number in range(times):
        page = PROBED_PAGES[number % len(PROBED_PAGES)]
        assert client.get(merchant_url(page, merchant)).status_code == 404


def attempts_recorded(events) -> int:
    """Return how many attempts `events` account for: one each, or the count a summary gives."""
    return sum(event.details.get("more_attempts") or 1 for event in events)


@pytest.fixture
def prober(client_for, other_owner):
    return client_for(other_owner)


def test_fifty_probes_of_another_merchant_write_one_event_per_page(prober, merchant, other_owner):
    probe(prober, merchant, 50)

    events = refusals(merchant, other_owner)
    assert events.count() == len(PROBED_PAGES)
    assert {event.target for event in events} == {f"GET {page}" for page in PROBED_PAGES}


def test_when_the_window_is_over_the_trail_says_how_many_attempts_there_were(
    prober, merchant, other_owner, owner_client
):
    probe(prober, merchant, 50)

    summaries = refusal_windows_close(now=timezone.now() + timedelta(minutes=11))

    events = refusals(merchant, other_owner)
    assert summaries == len(PROBED_PAGES)
    assert events.count() == 2 * len(PROBED_PAGES)
    assert attempts_recorded(events) == 50
    assert not RefusalWindow.objects.exists()
    trail = page_text(owner_client.get(merchant_url("teams:audit", merchant)))
    assert "12 more refused attempts" in trail
    assert "11 more refused attempts" in trail


def test_a_probe_after_the_window_sums_up_the_last_one_and_opens_a_new_one(
    prober, merchant, other_owner, monkeypatch
):
    probe(prober, merchant, 8)  # two a page
    later = timezone.now() + timedelta(minutes=11)
    monkeypatch.setattr(timezone, "now", lambda: later)

    probe(prober, merchant, 1)

    page_events = refusals(merchant, other_owner).filter(target=f"GET {PROBED_PAGES[0]}")
    assert [event.details.get("more_attempts") for event in page_events.order_by("pk")] == [
        None,
        1,
        None,
    ]
    refusal_windows_close(now=later + timedelta(minutes=11))
    assert attempts_recorded(refusals(merchant, other_owner)) == 9


def test_each_prober_has_a_window_of_its_own(client_for, merchant, member_factory, other_owner):
    intruders = [other_owner, member_factory(MerchantFactory())]

    for intruder in intruders:
        probe(client_for(intruder), merchant, 3)

    assert [refusals(merchant, intruder).count() for intruder in intruders] == [3, 3]


def test_a_window_with_a_single_refusal_closes_without_a_summary(prober, merchant):
    probe(prober, merchant, 1)

    assert refusal_windows_close(now=timezone.now() + timedelta(minutes=11)) == 0
    assert refusals(merchant).count() == 1


def test_a_window_still_open_is_not_summed_up_yet(prober, merchant):
    probe(prober, merchant, 5)

    assert refusal_windows_close() == 0
    assert RefusalWindow.objects.count() == len(PROBED_PAGES)


def test_members_own_pages_write_no_refusals(owner_client, merchant, owner):
    for page in PROBED_PAGES:
        assert owner_client.get(merchant_url(page, merchant)).status_code == 200

    assert not refusals(merchant).exists()


def test_a_member_refused_a_page_is_aggregated_too(client_for, merchant, member_factory):
    viewer = member_factory(merchant, "view-only")
    client = client_for(viewer)

    for _ in range(20):
        assert client.get(merchant_url("merchants:profile", merchant)).status_code == 403

    assert refusals(merchant, viewer).count() == 1
    assert RefusalWindow.objects.get(actor=viewer).more == 19


# The reveal page ------------------------------------------------------------------------


@pytest.fixture
def credential(merchant, owner):
    return CredentialFactory(merchant=merchant, submitted_by=owner)


def reveal_url(pk) -> str:
    return reverse("admin:credentials_credential_reveal", args=[pk])


def reveal_refusals(merchant):
    return refusals(merchant).filter(target="GET admin:credentials_credential_reveal")


def test_agent_without_reveal_permission_refused_the_reveal_page_is_audited(
    client_for, helpdesk_user, credential, merchant
):
    response = client_for(helpdesk_user).get(reveal_url(credential.pk))

    assert response.status_code == 403
    assert list(reveal_refusals(merchant).values_list("actor", flat=True)) == [helpdesk_user.pk]


def test_lead_visiting_the_reveal_page_writes_no_refusal(
    client_for, credential, merchant, helpdesk_user
):
    helpdesk_user.groups.add(helpdesk_groups_ensure()[HELPDESK_LEAD_GROUP])

    response = client_for(helpdesk_user).get(reveal_url(credential.pk))

    assert response.status_code == 200
    assert not refusals(merchant).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_merchant_gets_404_for_the_reveal_page_not_the_admin_sign_in_and_it_is_audited(
    owner_client, owner, credential, merchant, method
):
    response = getattr(owner_client, method)(reveal_url(credential.pk))

    assert response.status_code == 404
    assert "admin" not in response.get("Location", "")
    assert list(refusals(merchant).values_list("actor", "target")) == [
        (owner.pk, f"{method.upper()} admin:credentials_credential_reveal")
    ]
    assert Credential.objects.get(pk=credential.pk).secret == credential.secret


def test_merchant_gets_the_same_404_for_a_key_that_does_not_exist(owner_client, merchant):
    response = owner_client.get(reveal_url(999999))

    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action=DENIED).exists()


def test_anonymous_visitor_is_still_sent_to_the_admin_sign_in(client, credential):
    response = client.get(reveal_url(credential.pk))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
