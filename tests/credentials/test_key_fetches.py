"""A key's page says which of the integrator's systems fetched its secret through the API, and
when: read from the merchant's audit trail, newest first, never another key's or another
merchant's fetches. The page is for members who may view keys; another tenant's is a 404."""

import re

import pytest

from audit.models import AuditEvent
from audit.services import audit_record
from core.moments import moment_display
from credentials.models import VerificationState
from credentials.selectors import credential_fetches
from credentials.services.notifications import key_target
from teams.permissions import VIEW_MERCHANT
from tests.factories import CredentialFactory, MembershipFactory, RoleFactory, UserFactory
from tests.helpers import merchant_url, page_html, page_text

EMPTY = "No system has fetched this key."


def key_url(credential) -> str:
    return merchant_url("credentials:detail", credential.merchant, pk=credential.pk)


def fetched(credential, account_name: str, *, merchant=None) -> AuditEvent:
    """Write the audit event the API writes when `account_name` fetches the key's secret."""
    return audit_record(
        action=AuditEvent.Action.SECRET_FETCHED,
        merchant=merchant or credential.merchant,
        target=key_target(credential),
        details={
            "service_account": account_name,
            "hint": credential.secret_hint,
            "credential": credential.pk,
        },
    )


def fetch_rows(response) -> list[str]:
    """Return the rows of the page's fetch list, top to bottom, as text."""
    section = re.search(
        r'<section class="[^"]*\bkey-fetches\b[^"]*">(.*?)</section>', page_html(response), re.S
    )
    assert section, "no fetch section on the key's page"
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", section.group(1), re.S)
    return [f"{re.sub(r'<[^>]+>', '', name)} {when}" for name, when in rows]


@pytest.fixture
def verified(merchant, owner):
    return CredentialFactory(
        merchant=merchant, submitted_by=owner, verification_state=VerificationState.VERIFIED
    )


def test_key_page_lists_the_systems_that_fetched_its_secret_newest_first(owner_client, verified):
    first = fetched(verified, "pos-backend")
    second = fetched(verified, "billing-service")

    response = owner_client.get(key_url(verified))

    assert response.status_code == 200
    assert "Fetched by the integrator's systems" in page_text(response)
    assert fetch_rows(response) == [
        f"billing-service {moment_display(second.occurred_at)}",
        f"pos-backend {moment_display(first.occurred_at)}",
    ]
    assert EMPTY not in page_text(response)


def test_key_page_says_no_system_fetched_it_when_none_did(owner_client, verified):
    response = owner_client.get(key_url(verified))

    assert EMPTY in page_text(response)
    assert fetch_rows(response) == []


def test_key_page_leaves_out_another_keys_fetches(owner_client, merchant, owner, verified):
    other_key = CredentialFactory(merchant=merchant, submitted_by=owner)
    fetched(other_key, "pos-backend")

    response = owner_client.get(key_url(verified))

    assert EMPTY in page_text(response)
    assert "pos-backend" not in page_text(response)


def test_key_page_leaves_out_another_merchants_events_naming_the_same_id(
    owner_client, other_merchant, verified
):
    fetched(verified, "someone-elses-pos", merchant=other_merchant)

    response = owner_client.get(key_url(verified))

    assert EMPTY in page_text(response)
    assert "someone-elses-pos" not in page_text(response)


def test_key_page_leaves_out_other_events_about_the_key(owner_client, verified):
    audit_record(
        action=AuditEvent.Action.KEY_REVEALED,
        merchant=verified.merchant,
        target=key_target(verified),
        details={"service_account": "not-a-fetch", "credential": verified.pk},
    )

    assert "not-a-fetch" not in page_text(owner_client.get(key_url(verified)))


def test_key_page_lists_the_twenty_newest_fetches_and_counts_the_earlier(owner_client, verified):
    for number in range(23):
        fetched(verified, f"system-{number}")

    response = owner_client.get(key_url(verified))

    rows = fetch_rows(response)
    assert [row.split()[0] for row in rows] == [f"system-{n}" for n in range(22, 2, -1)]
    assert "and 3 earlier" in page_text(response)


def test_fetches_are_read_in_one_query_whatever_their_number(django_assert_num_queries, verified):
    for number in range(25):
        fetched(verified, f"system-{number}")

    with django_assert_num_queries(1):
        fetches = credential_fetches(verified, limit=20)

    assert len(fetches.recent) == 20
    assert fetches.earlier == 5


def test_no_fetches_is_an_empty_list_with_nothing_earlier(verified):
    assert credential_fetches(verified).recent == []
    assert credential_fetches(verified).earlier == 0


def test_member_who_may_not_view_keys_is_refused_the_key_page_and_its_fetches(
    client_for, merchant, verified
):
    fetched(verified, "pos-backend")
    viewer = UserFactory()
    MembershipFactory(
        user=viewer,
        merchant=merchant,
        role=RoleFactory(merchant=merchant, permissions=[VIEW_MERCHANT]),
    )

    response = client_for(viewer).get(key_url(verified))

    assert response.status_code == 403
    assert "pos-backend" not in response.content.decode()


def test_another_merchants_owner_gets_404_and_no_fetches(client_for, other_owner, verified):
    fetched(verified, "pos-backend")

    response = client_for(other_owner).get(key_url(verified))

    assert response.status_code == 404
    assert "pos-backend" not in response.content.decode()
