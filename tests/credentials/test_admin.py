"""The helpdesk's admin: the queue of submitted keys, merchants and memberships.

The secret is never shown there, in any form; only staff get in; the lists keep a constant
number of queries however many rows they show.
"""

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from credentials.models import (
    Credential,
    EncryptionCanary,
    Kind,
    LifecycleState,
    Mode,
    VerificationState,
)
from teams.models import Role
from tests.factories import CredentialFactory, MembershipFactory, MerchantFactory, UserFactory

CREDENTIALS = reverse("admin:credentials_credential_changelist")
MERCHANTS = reverse("admin:merchants_merchant_changelist")
MEMBERSHIPS = reverse("admin:teams_membership_changelist")


@pytest.fixture(params=["helpdesk_user", "superuser"])
def staff_client(request, client_for):
    """A client signed in as a helpdesk agent, then as a platform admin."""
    return client_for(request.getfixturevalue(request.param))


@pytest.fixture
def queue(merchant, other_merchant, owner, other_owner):
    """Keys of two merchants in several states, modes and kinds."""
    now = timezone.now()
    return {
        "coffee_verified": CredentialFactory(
            merchant=merchant,
            submitted_by=owner,
            verification_state=VerificationState.VERIFIED,
            submitted_at=now - timezone.timedelta(hours=1),
        ),
        "coffee_replaced": CredentialFactory(
            merchant=merchant,
            submitted_by=owner,
            secret=None,
            lifecycle_state=LifecycleState.SUPERSEDED,
            verification_state=VerificationState.VERIFIED,
            submitted_at=now - timezone.timedelta(days=2),
        ),
        "bakery_rejected": CredentialFactory(
            merchant=other_merchant,
            submitted_by=other_owner,
            mode=Mode.LIVE,
            kind=Kind.RESTRICTED,
            verification_state=VerificationState.REJECTED,
            submitted_at=now - timezone.timedelta(hours=2),
        ),
    }


def listed(response) -> set[int]:
    """Return the pks of the rows a changelist shows."""
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def secret_fragments(credential: Credential) -> list[str]:
    """Return every 12-character stretch of the secret's body (the part after `sk_test_`).

    The hint shows the last four characters, so only longer stretches prove a leak.
    """
    body = credential.secret.split("_", 2)[2]
    return [body[start : start + 12] for start in range(len(body) - 11)]


def assert_no_secret(html: str, credential: Credential):
    assert credential.secret not in html
    leaked = [fragment for fragment in secret_fragments(credential) if fragment in html]
    assert not leaked, "part of the secret is in the page"


# The credentials changelist


def changelist_row(html: str, credential: Credential) -> str:
    """Return the changelist row that shows `credential`."""
    rows = [row for row in re.findall(r"<tr>.*?</tr>", html, re.S) if credential.secret_hint in row]
    assert len(rows) == 1, f"{credential.secret_hint} is in {len(rows)} rows"
    return rows[0]


def cell(row: str, field: str) -> str:
    """Return the text of one column of a changelist row."""
    match = re.search(rf'<t[hd] class="field-{field}\b[^"]*">(.*?)</t[hd]>', row, re.S)
    assert match, f"no {field} column"
    return re.sub(r"<[^>]+>", "", match.group(1))


def test_changelist_shows_merchant_key_hint_what_stripe_said_and_who_acknowledged(
    staff_client, queue
):
    response = staff_client.get(CREDENTIALS, {"acknowledged": "all"})

    assert listed(response) == {credential.pk for credential in queue.values()}
    rejected = queue["bakery_rejected"]
    row = changelist_row(response.content.decode(), rejected)
    cells = {
        "merchant": "Demo Bakery Co",
        "provider_mode": "Stripe · Live",
        "secret_hint": rejected.secret_hint,
        "provider_said": "Rejected by Stripe",
        "followup": "Waiting for the merchant",
        "acknowledged_by_label": "-",
    }
    for field, shown in cells.items():
        assert cell(row, field) == shown
    replaced = changelist_row(response.content.decode(), queue["coffee_replaced"])
    assert cell(replaced, "provider_said") == "Verified (replaced)"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("verification_state__exact=verified", {"coffee_verified", "coffee_replaced"}),
        ("verification_state__exact=rejected", {"bakery_rejected"}),
        ("lifecycle_state__exact=superseded", {"coffee_replaced"}),
        ("lifecycle_state__exact=active", {"coffee_verified", "bakery_rejected"}),
        ("mode__exact=live", {"bakery_rejected"}),
        ("mode__exact=test", {"coffee_verified", "coffee_replaced"}),
        ("provider__exact=stripe", {"coffee_verified", "coffee_replaced", "bakery_rejected"}),
        ("kind__exact=restricted", {"bakery_rejected"}),
    ],
)
def test_changelist_filters_narrow_the_queue(staff_client, queue, query, expected):
    response = staff_client.get(f"{CREDENTIALS}?acknowledged=all&{query}")

    assert listed(response) == {queue[name].pk for name in expected}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("Bakery", {"bakery_rejected"}),
        ("demo-bakery-co", {"bakery_rejected"}),
        ("Coffee", {"coffee_verified", "coffee_replaced"}),
        ("demo-coffee-co", {"coffee_verified", "coffee_replaced"}),
        ("no such merchant", set()),
    ],
)
def test_changelist_search_finds_keys_by_merchant_name_and_slug(
    staff_client, queue, term, expected
):
    response = staff_client.get(CREDENTIALS, {"q": term, "acknowledged": "all"})

    assert listed(response) == {queue[name].pk for name in expected}


def test_changelist_query_count_does_not_grow_with_rows(staff_client, merchant, owner):
    CredentialFactory(merchant=merchant, submitted_by=owner)
    staff_client.get(CREDENTIALS)  # warm up per-process caches
    with_one = queries_for(staff_client, CREDENTIALS)
    merchants = [merchant, *(MerchantFactory() for _ in range(4))]
    submitters = [owner, *(UserFactory() for _ in range(5))]
    for number in range(29):
        CredentialFactory(
            merchant=merchants[number % len(merchants)],
            submitted_by=submitters[number % len(submitters)],
            mode=[Mode.TEST, Mode.LIVE][number % 2],
        )

    with_thirty = queries_for(staff_client, CREDENTIALS)

    assert Credential.objects.count() == 30
    assert with_thirty == with_one


# The secret is never shown


def test_change_page_has_no_secret_field(staff_client, queue):
    credential = queue["coffee_verified"]

    response = staff_client.get(
        reverse("admin:credentials_credential_change", args=[credential.pk])
    )

    assert response.status_code == 200
    assert "secret" not in response.context["adminform"].form.fields
    body = response.content.decode()
    assert 'name="secret"' not in body
    assert credential.secret_hint in body


@pytest.mark.parametrize(
    "page",
    [
        "credential changelist",
        "credential search",
        "credential change",
        "credential history",
        "merchant changelist",
        "merchant change",
        "merchant history",
        "membership changelist",
    ],
)
def test_no_part_of_the_secret_appears_in_any_admin_page(staff_client, queue, page):
    credential = queue["coffee_verified"]
    merchant = credential.merchant
    url = {
        "credential changelist": CREDENTIALS,
        "credential search": f"{CREDENTIALS}?q={merchant.slug}",
        "credential change": reverse("admin:credentials_credential_change", args=[credential.pk]),
        "credential history": reverse("admin:credentials_credential_history", args=[credential.pk]),
        "merchant changelist": MERCHANTS,
        "merchant change": reverse("admin:merchants_merchant_change", args=[merchant.pk]),
        "merchant history": reverse("admin:merchants_merchant_history", args=[merchant.pk]),
        "membership changelist": MEMBERSHIPS,
    }[page]

    response = staff_client.get(url)

    assert response.status_code == 200
    assert_no_secret(response.content.decode(), credential)
    assert_no_secret(response.content.decode(), queue["bakery_rejected"])


# Keys are neither added nor deleted in the admin


def test_add_page_is_refused(staff_client):
    response = staff_client.get(reverse("admin:credentials_credential_add"))

    assert response.status_code == 403
    assert Credential.objects.count() == 0


def test_changelist_offers_no_add_button(staff_client, queue):
    body = staff_client.get(CREDENTIALS).content.decode()

    assert reverse("admin:credentials_credential_add") not in body


def test_delete_page_is_refused_and_the_key_stays(staff_client, queue):
    credential = queue["coffee_verified"]
    url = reverse("admin:credentials_credential_delete", args=[credential.pk])

    assert staff_client.get(url).status_code == 403
    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert Credential.objects.filter(pk=credential.pk).exists()


def test_bulk_delete_action_is_not_offered_and_deletes_nothing(staff_client, queue):
    response = staff_client.get(CREDENTIALS)
    assert 'value="delete_selected"' not in response.content.decode()

    staff_client.post(
        CREDENTIALS,
        {
            "action": "delete_selected",
            "_selected_action": [c.pk for c in queue.values()],
            "post": "yes",
        },
    )

    assert Credential.objects.count() == len(queue)


def test_encryption_canary_cannot_be_deleted(superuser, client_for):
    canary = EncryptionCanary.objects.get()
    url = reverse("admin:credentials_encryptioncanary_delete", args=[canary.pk])

    response = client_for(superuser).post(url, {"post": "yes"})

    assert response.status_code == 403
    assert EncryptionCanary.objects.filter(pk=canary.pk).exists()


# Who gets in


def test_helpdesk_agent_opens_the_admin_index(helpdesk_user, client_for):
    assert client_for(helpdesk_user).get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize("url", [reverse("admin:index"), CREDENTIALS, MERCHANTS])
def test_merchant_owner_without_staff_status_is_sent_to_the_admin_login(
    owner, client_for, queue, url
):
    response = client_for(owner).get(url)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(CREDENTIALS)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


# The merchants changelist


def test_merchant_changelist_counts_only_active_keys(staff_client, merchant, other_merchant):
    CredentialFactory.create_batch(2, merchant=merchant)
    CredentialFactory(merchant=merchant, secret=None, lifecycle_state=LifecycleState.SUPERSEDED)
    CredentialFactory(merchant=merchant, secret=None, lifecycle_state=LifecycleState.REVOKED)
    CredentialFactory(merchant=other_merchant, mode=Mode.LIVE)
    empty = MerchantFactory(name="Demo Tea Co", slug="demo-tea-co")

    response = staff_client.get(MERCHANTS)

    assert response.status_code == 200
    counts = {m.pk: m.active_key_count for m in response.context["cl"].result_list}
    assert counts == {merchant.pk: 2, other_merchant.pk: 1, empty.pk: 0}
    assert 'class="field-active_keys">2<' in response.content.decode()


def test_merchant_changelist_sorts_by_active_keys(staff_client, merchant, other_merchant):
    CredentialFactory.create_batch(2, merchant=merchant)
    CredentialFactory(merchant=other_merchant)
    # `o` numbers the columns as the changelist shows them, action checkbox included.
    column = staff_client.get(MERCHANTS).context["cl"].list_display.index("active_keys")

    response = staff_client.get(MERCHANTS, {"o": f"-{column}"})

    assert [m.pk for m in response.context["cl"].result_list] == [merchant.pk, other_merchant.pk]


def test_merchant_changelist_search_keeps_the_key_counts(staff_client, merchant, other_merchant):
    CredentialFactory.create_batch(2, merchant=merchant)

    response = staff_client.get(MERCHANTS, {"q": "coffee"})

    assert [(m.pk, m.active_key_count) for m in response.context["cl"].result_list] == [
        (merchant.pk, 2)
    ]


def test_merchant_changelist_query_count_does_not_grow_with_rows(staff_client, merchant, owner):
    CredentialFactory(merchant=merchant, submitted_by=owner)
    staff_client.get(MERCHANTS)  # warm up per-process caches
    with_one = queries_for(staff_client, MERCHANTS)
    for _ in range(29):
        shop = MerchantFactory()
        MembershipFactory(merchant=shop)
        CredentialFactory(merchant=shop)

    with_thirty = queries_for(staff_client, MERCHANTS)

    assert with_thirty == with_one


def test_merchant_change_page_opens_with_its_members(staff_client, merchant, owner):
    response = staff_client.get(reverse("admin:merchants_merchant_change", args=[merchant.pk]))

    assert response.status_code == 200
    assert "owner@demo.test" in response.content.decode()


def test_merchant_change_page_query_count_does_not_grow_with_members(
    helpdesk_user, client_for, merchant, owner
):
    client = client_for(helpdesk_user)
    url = reverse("admin:merchants_merchant_change", args=[merchant.pk])
    client.get(url)  # warm up per-process caches
    with_one = queries_for(client, url)
    MembershipFactory.create_batch(19, merchant=merchant)

    with_twenty = queries_for(client, url)

    assert with_twenty == with_one


@pytest.fixture
def bakery_custom_role(other_merchant):
    role = Role.objects.create(merchant=other_merchant, name="Bakery auditors")
    role.permissions.add(Permission.objects.get(codename="access_merchant"))
    return role


def test_merchant_change_page_shows_its_team_read_only_and_no_other_merchants_role(
    superuser, client_for, merchant, owner, bakery_custom_role
):
    response = client_for(superuser).get(
        reverse("admin:merchants_merchant_change", args=[merchant.pk])
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "owner@demo.test" in body
    # Teams are managed in the portal, under the team rules: no role to choose here.
    assert 'name="memberships-0-role"' not in body
    assert "Bakery auditors" not in body


@pytest.mark.parametrize("role_of", ["another merchant", "the same merchant"])
def test_membership_admin_refuses_any_custom_role_and_keeps_the_role(
    superuser, client_for, merchant, owner, bakery_custom_role, role_of
):
    role = (
        bakery_custom_role
        if role_of == "another merchant"
        else Role.objects.create(merchant=merchant, name="Coffee auditors")
    )
    membership = owner.memberships.get()
    MembershipFactory(merchant=merchant)  # the coffee shop would keep an Owner

    response = client_for(superuser).post(
        reverse("admin:teams_membership_change", args=[membership.pk]),
        {
            "user": owner.pk,
            "merchant": merchant.pk,
            "role": role.pk,
            "joined_at_0": "2026-01-01",
            "joined_at_1": "10:00:00",
        },
    )

    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role.slug == "owner"


# The memberships changelist


def test_membership_changelist_shows_user_merchant_and_role(staff_client, owner, other_owner):
    response = staff_client.get(MEMBERSHIPS)

    assert response.status_code == 200
    body = response.content.decode()
    for shown in ("owner@demo.test", "other-owner@demo.test", "Demo Coffee Co", "Owner"):
        assert shown in body


def test_membership_changelist_query_count_does_not_grow_with_rows(staff_client, owner):
    staff_client.get(MEMBERSHIPS)  # warm up per-process caches
    with_one = queries_for(staff_client, MEMBERSHIPS)
    MembershipFactory.create_batch(29)

    with_thirty = queries_for(staff_client, MEMBERSHIPS)

    assert with_thirty == with_one
