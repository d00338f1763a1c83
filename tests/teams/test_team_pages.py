"""The team page, the merchant switcher, leaving, the merchant profile and the roles pages.

Each allowed case sits next to its denied one (403 for a member whose role lacks the
permission) and its other-tenant one (404). List pages keep a constant number of queries
however many members the team has.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from merchants.models import Integration
from teams.models import Membership
from teams.permissions import CATALOGUE, MANAGE_MEMBER_ROLES, VIEW_MERCHANT, VIEW_TEAM
from tests.factories import (
    InvitationFactory,
    MembershipFactory,
    MerchantFactory,
    RoleFactory,
    UserFactory,
    default_role,
)
from tests.helpers import merchant_url, page_html, page_text, queries_for

DASHBOARD = reverse("merchants:dashboard")


def membership(user, merchant) -> Membership:
    return Membership.objects.get(user=user, merchant=merchant)


def team_row(html: str, email: str) -> str:
    """Return the table row of the team page that shows `email`."""
    rows = [row for row in re.findall(r"<tr>(.*?)</tr>", html, re.S) if email in row]
    assert len(rows) == 1, f"expected one row for {email}, found {len(rows)}"
    return rows[0]


# The team page -------------------------------------------------------------------------


def test_the_team_page_lists_members_with_role_joined_date_and_last_sign_in(
    merchant, owner, owner_client
):
    developer = UserFactory(email="dev@demo.test", full_name="Dana Dev")
    developer.last_login = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
    developer.save(update_fields=["last_login"])
    MembershipFactory(
        user=developer,
        merchant=merchant,
        role=default_role("developer"),
        joined_at=datetime(2025, 2, 1, 12, 0, tzinfo=UTC),
    )
    MembershipFactory(
        user=UserFactory(email="quiet@demo.test"),
        merchant=merchant,
        role=default_role("view-only"),
        joined_at=datetime(2025, 1, 15, 8, 0, tzinfo=UTC),
    )

    response = owner_client.get(merchant_url("teams:team", merchant))

    assert response.status_code == 200
    html = page_html(response)
    dev_row = team_row(html, "dev@demo.test")
    assert "Dana Dev" in dev_row
    assert "Developer" in dev_row
    assert "1 Feb 2025" in dev_row
    assert "4 Mar 2025, 09:30" in dev_row
    quiet_row = team_row(html, "quiet@demo.test")
    assert "View only" in quiet_row
    assert "15 Jan 2025" in quiet_row
    assert "never" in quiet_row
    assert "Owner" in team_row(html, "owner@demo.test")


def test_the_team_page_lists_open_invitations_with_their_expiry(merchant, owner, owner_client):
    pending = InvitationFactory(merchant=merchant, email="pending@demo.test")
    InvitationFactory(
        merchant=merchant,
        email="expired@demo.test",
        role=default_role("developer"),
        expires_at=datetime(2025, 1, 2, 10, 0, tzinfo=UTC),
    )
    InvitationFactory(merchant=merchant, email="revoked@demo.test", revoked_at=timezone.now())

    response = owner_client.get(merchant_url("teams:team", merchant))

    html = page_html(response)
    pending_row = team_row(html, "pending@demo.test")
    assert "Support" in pending_row
    assert f"Expires {timezone.localtime(pending.expires_at):%-d %b %Y, %H:%M}" in pending_row
    assert "Expired on 2 Jan 2025" in team_row(html, "expired@demo.test")
    assert "revoked@demo.test" not in html
    assert "No open invitations" not in html


def test_the_team_page_says_who_sent_each_open_invitation(
    merchant, owner, owner_client, member_factory
):
    administrator = member_factory(merchant, "administrator", email="admin@demo.test")
    InvitationFactory(merchant=merchant, email="first@demo.test", invited_by=owner)
    InvitationFactory(merchant=merchant, email="second@demo.test", invited_by=administrator)

    html = page_html(owner_client.get(merchant_url("teams:team", merchant)))

    assert "Invited by owner@demo.test" in team_row(html, "first@demo.test")
    assert "Invited by admin@demo.test" in team_row(html, "second@demo.test")


def test_the_team_page_query_count_does_not_grow_with_invitations(
    merchant, owner_client, member_factory, django_assert_max_num_queries
):
    inviter = member_factory(merchant, "administrator")
    InvitationFactory(merchant=merchant, invited_by=inviter)
    InvitationFactory(merchant=merchant, invited_by=inviter, role=default_role("owner"))
    few = queries_for(owner_client, merchant_url("teams:team", merchant))

    for role in ("support", "owner"):
        for _ in range(10):
            InvitationFactory(
                merchant=merchant,
                role=default_role(role),
                invited_by=member_factory(merchant, "administrator"),
            )
    with django_assert_max_num_queries(few):
        many = owner_client.get(merchant_url("teams:team", merchant))

    assert "Invited by" in page_text(many)


def test_the_team_page_says_when_there_are_no_open_invitations(merchant, owner_client):
    response = owner_client.get(merchant_url("teams:team", merchant))

    assert "No open invitations." in page_text(response)


def test_the_team_page_of_another_merchant_is_not_found(
    merchant, other_merchant, other_owner, owner_client
):
    response = owner_client.get(merchant_url("teams:team", other_merchant))

    assert response.status_code == 404
    assert "other-owner@demo.test" not in page_html(response)


@pytest.mark.parametrize("role", ["support", "view-only"])
def test_members_without_view_team_are_refused_the_team_page(
    merchant, owner, member_factory, client_for, role
):
    response = client_for(member_factory(merchant, role)).get(merchant_url("teams:team", merchant))

    assert response.status_code == 403
    assert "owner@demo.test" not in page_html(response)


def manage_links(html: str, merchant, target: Membership) -> set[str]:
    found = set()
    if merchant_url("teams:member", merchant, pk=target.pk) in html:
        found.add("Change role")
    if merchant_url("teams:member_remove", merchant, pk=target.pk) in html:
        found.add("Remove")
    return found


def test_an_owner_sees_change_role_and_remove_for_others_but_not_for_themselves(
    merchant, owner, owner_client, member_factory
):
    developer = member_factory(merchant, "developer")
    second_owner = member_factory(merchant, "owner")

    html = page_html(owner_client.get(merchant_url("teams:team", merchant)))

    assert manage_links(html, merchant, membership(developer, merchant)) == {
        "Change role",
        "Remove",
    }
    assert manage_links(html, merchant, membership(second_owner, merchant)) == {
        "Change role",
        "Remove",
    }
    assert manage_links(html, merchant, membership(owner, merchant)) == set()
    assert merchant_url("teams:leave", merchant) in team_row(html, owner.email)
    assert merchant_url("teams:invite", merchant) in html


def test_an_administrator_sees_no_change_role_or_remove_for_an_owner(
    merchant, owner, member_factory, client_for
):
    administrator = member_factory(merchant, "administrator")
    developer = member_factory(merchant, "developer")

    html = page_html(client_for(administrator).get(merchant_url("teams:team", merchant)))

    assert manage_links(html, merchant, membership(owner, merchant)) == set()
    assert manage_links(html, merchant, membership(developer, merchant)) == {
        "Change role",
        "Remove",
    }


def test_a_member_who_may_not_manage_roles_sees_no_change_role_remove_or_invite(
    merchant, owner, member_factory, client_for
):
    developer = member_factory(merchant, "developer")
    support = member_factory(merchant, "support")
    InvitationFactory(merchant=merchant, email="pending@demo.test")

    response = client_for(developer).get(merchant_url("teams:team", merchant))

    assert response.status_code == 200
    html = page_html(response)
    for member in (owner, support, developer):
        assert manage_links(html, merchant, membership(member, merchant)) == set()
    assert merchant_url("teams:invite", merchant) not in html
    assert "pending@demo.test" in html
    assert "/resend/" not in html


def test_a_custom_role_manager_without_a_permission_sees_no_links_for_members_holding_it(
    merchant, owner, member_factory, client_for
):
    managers = RoleFactory(
        merchant=merchant,
        name="Team lead",
        permissions=[VIEW_MERCHANT, VIEW_TEAM, MANAGE_MEMBER_ROLES],
    )
    lead = UserFactory()
    MembershipFactory(user=lead, merchant=merchant, role=managers)
    developer = member_factory(merchant, "developer")  # holds key permissions the lead lacks
    viewer = member_factory(merchant, "view-only")

    html = page_html(client_for(lead).get(merchant_url("teams:team", merchant)))

    assert manage_links(html, merchant, membership(developer, merchant)) == set()
    assert manage_links(html, merchant, membership(viewer, merchant)) == {"Change role", "Remove"}


def _team_of(merchant, size):
    roles = ["developer", "support", "view-only", "administrator", "owner"]
    for number in range(size):
        user = UserFactory(last_login=timezone.now() - timedelta(days=number))
        MembershipFactory(user=user, merchant=merchant, role=default_role(roles[number % 5]))


@pytest.mark.parametrize("page", ["teams:team", "teams:roles"])
def test_the_team_and_roles_pages_query_count_does_not_grow_with_members(
    merchant, owner_client, page, django_assert_max_num_queries
):
    # One member of each role the team uses, then many more of the same roles.
    accountant = RoleFactory(merchant=merchant, name="Accountant")
    MembershipFactory(merchant=merchant, role=accountant)
    _team_of(merchant, 5)
    InvitationFactory(merchant=merchant, email="pending@demo.test")
    few = queries_for(owner_client, merchant_url(page, merchant))

    _team_of(merchant, 20)
    MembershipFactory.create_batch(5, merchant=merchant, role=accountant)
    with django_assert_max_num_queries(few):
        many = owner_client.get(merchant_url(page, merchant))

    assert many.status_code == 200


@pytest.mark.parametrize("page", ["teams:team", "teams:roles"])
def test_one_member_and_twenty_members_cost_the_same_queries(
    merchant, owner_client, page, django_assert_max_num_queries
):
    MembershipFactory(merchant=merchant, role=default_role("developer"))
    one = queries_for(owner_client, merchant_url(page, merchant))

    MembershipFactory.create_batch(19, merchant=merchant, role=default_role("developer"))
    with django_assert_max_num_queries(one):
        twenty = owner_client.get(merchant_url(page, merchant))

    assert twenty.status_code == 200


# The merchant switcher -----------------------------------------------------------------


def switcher(html: str) -> str:
    match = re.search(r'<details class="switcher">(.*?)</details>', html, re.S)
    assert match, "no merchant switcher on the page"
    return match.group(1)


@pytest.fixture
def two_merchant_user(merchant, other_merchant, member_factory):
    user = member_factory(merchant, "owner", email="both@demo.test")
    MembershipFactory(user=user, merchant=other_merchant, role=default_role("developer"))
    return user


MERCHANT_PAGES = [
    "credentials:merchant",
    "merchants:profile",
    "teams:team",
    "teams:invite",
    "teams:leave",
    "teams:roles",
    "teams:role_create",
    "teams:audit",
    "credentials:submit",
]


@pytest.mark.parametrize("page", MERCHANT_PAGES)
def test_every_merchant_page_shows_the_merchant_in_use_and_both_in_the_switcher(
    merchant, other_merchant, two_merchant_user, client_for, page
):
    response = client_for(two_merchant_user).get(merchant_url(page, merchant))

    assert response.status_code == 200
    menu = switcher(page_html(response))
    summary = re.search(r"<summary[^>]*>(.*?)</summary>", menu, re.S).group(1)
    assert summary.strip() == "Demo Coffee Co"
    assert "Demo Bakery Co" in menu
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', menu)
    assert current == [merchant.get_absolute_url()]
    assert other_merchant.get_absolute_url() in menu


@pytest.mark.parametrize("page", ["credentials:merchant", "teams:team"])
def test_switching_to_the_other_merchant_shows_it_as_the_one_in_use(
    merchant, other_merchant, two_merchant_user, client_for, page
):
    response = client_for(two_merchant_user).get(merchant_url(page, other_merchant))

    assert response.status_code == 200
    menu = switcher(page_html(response))
    assert re.search(r"<summary[^>]*>\s*Demo Bakery Co\s*</summary>", menu)
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', menu)
    assert current == [other_merchant.get_absolute_url()]


def test_the_dashboard_offers_both_merchants_in_the_switcher(
    merchant, other_merchant, two_merchant_user, client_for
):
    response = client_for(two_merchant_user).get(DASHBOARD)

    menu = switcher(page_html(response))
    assert "Choose a merchant" in menu
    assert merchant.get_absolute_url() in menu
    assert other_merchant.get_absolute_url() in menu
    assert "aria-current" not in menu


def test_the_switcher_never_offers_a_merchant_the_user_does_not_belong_to(merchant, owner_client):
    stranger = MerchantFactory(name="Demo Tea Co", slug="demo-tea-co")

    menu = switcher(page_html(owner_client.get(merchant_url("credentials:merchant", merchant))))

    assert "Demo Tea Co" not in menu
    assert stranger.get_absolute_url() not in menu


def test_a_page_of_a_merchant_the_user_left_is_not_found(
    merchant, other_merchant, two_merchant_user, client_for
):
    client = client_for(two_merchant_user)
    client.post(merchant_url("teams:leave", other_merchant))

    assert client.get(merchant_url("credentials:merchant", other_merchant)).status_code == 404
    assert "Demo Bakery Co" not in switcher(
        page_html(client.get(merchant_url("credentials:merchant", merchant)))
    )


# Leaving -------------------------------------------------------------------------------


def test_a_member_leaves_and_is_sent_to_the_dashboard_with_a_message(
    merchant, owner, member_factory, client_for
):
    developer = member_factory(merchant, "developer")
    client = client_for(developer)

    response = client.post(merchant_url("teams:leave", merchant), follow=True)

    assert response.redirect_chain == [(DASHBOARD, 302)]
    assert "You left Demo Coffee Co." in page_text(response)
    assert not Membership.objects.filter(user=developer, merchant=merchant).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEMBER_LEFT)
    assert event.actor == developer
    assert event.merchant == merchant


def test_an_owner_may_leave_while_another_owner_remains(
    merchant, owner, member_factory, client_for
):
    second_owner = member_factory(merchant, "owner")

    response = client_for(second_owner).post(merchant_url("teams:leave", merchant))

    assert response.status_code == 302
    assert not Membership.objects.filter(user=second_owner, merchant=merchant).exists()
    assert membership(owner, merchant).role == default_role("owner")


def test_the_last_owner_cannot_leave_and_is_told_why(merchant, owner, owner_client):
    response = owner_client.post(merchant_url("teams:leave", merchant), follow=True)

    assert response.redirect_chain == [(merchant.get_absolute_url(), 302)]
    assert (
        "owner@demo.test is the last Owner of Demo Coffee Co and cannot leave: make someone "
        "else an Owner first." in page_text(response)
    )
    assert membership(owner, merchant).role == default_role("owner")
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.MEMBER_LEFT).exists()


def test_the_leave_page_asks_for_confirmation_and_a_get_changes_nothing(
    merchant, owner, member_factory, client_for
):
    viewer = member_factory(merchant, "view-only")

    response = client_for(viewer).get(merchant_url("teams:leave", merchant))

    assert response.status_code == 200
    assert "Leave Demo Coffee Co?" in page_text(response)
    assert Membership.objects.filter(user=viewer, merchant=merchant).exists()


def test_leaving_another_merchant_is_not_found_and_changes_nothing(
    merchant, other_merchant, other_owner, owner, owner_client
):
    response = owner_client.post(merchant_url("teams:leave", other_merchant))

    assert response.status_code == 404
    assert Membership.objects.filter(merchant=other_merchant).count() == 1
    assert Membership.objects.filter(user=owner).count() == 1


# The merchant profile ------------------------------------------------------------------


UNKNOWN_COUNTRY = (
    "This is not a country we know: choose it from the list (or type its English name, or its "
    "two-letter code such as DE)."
)


def profile_data(**changes):
    return {
        "contact_email": "accounts@demo-coffee.test",
        "contact_phone": "+44 20 7946 0000",
        "website": "https://demo-coffee.test",
        "country": "IE",
        "requested_integrations": [Integration.IN_PERSON, Integration.INVOICING],
        **changes,
    }


def profile_of(merchant) -> dict:
    merchant.refresh_from_db()
    return {
        field: getattr(merchant, field)
        for field in (
            "contact_email",
            "contact_phone",
            "website",
            "country",
            "requested_integrations",
        )
    }


@pytest.mark.parametrize("role", ["owner", "administrator"])
def test_a_member_who_may_edit_the_profile_saves_it(merchant, member_factory, client_for, role):
    client = client_for(member_factory(merchant, role))

    response = client.post(merchant_url("merchants:profile", merchant), profile_data(), follow=True)

    assert response.redirect_chain == [(merchant.get_absolute_url(), 302)]
    assert "Profile saved." in page_text(response)
    assert profile_of(merchant) == {
        "contact_email": "accounts@demo-coffee.test",
        "contact_phone": "+44 20 7946 0000",
        "website": "https://demo-coffee.test",
        "country": "IE",
        "requested_integrations": [Integration.IN_PERSON, Integration.INVOICING],
    }


def test_the_profile_form_shows_the_current_values(merchant, owner_client):
    response = owner_client.get(merchant_url("merchants:profile", merchant))

    assert response.status_code == 200
    html = page_html(response)
    assert 'value="contact@demo-coffee-co.test"' in html
    assert 'value="GB"' in html


def test_a_lower_case_country_and_a_website_without_scheme_are_normalised(merchant, owner_client):
    owner_client.post(
        merchant_url("merchants:profile", merchant),
        profile_data(country="de", website="demo-coffee.test"),
    )

    profile = profile_of(merchant)
    assert profile["country"] == "DE"
    assert profile["website"] == "https://demo-coffee.test"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("country", "Germania", UNKNOWN_COUNTRY),
        ("country", "G1", UNKNOWN_COUNTRY),
        ("website", "not a url", "Enter the full address, such as https://example.com."),
        ("contact_email", "x@", "Enter an email address such as accounts@example.com."),
        ("requested_integrations", ["teleportation"], "Choose integrations from the list."),
    ],
    ids=["country-unknown-name", "country-digit", "website", "email", "integration"],
)
def test_invalid_profile_input_is_refused_with_a_clear_message_and_nothing_is_saved(
    merchant, owner_client, field, value, message
):
    before = profile_of(merchant)

    response = owner_client.post(
        merchant_url("merchants:profile", merchant), profile_data(**{field: value})
    )

    assert response.status_code == 200
    assert message in page_text(response)
    assert profile_of(merchant) == before
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.MERCHANT_PROFILE_CHANGED).exists()


def test_a_refused_profile_form_leaves_the_page_header_with_the_saved_name(merchant, owner_client):
    response = owner_client.post(
        merchant_url("merchants:profile", merchant), profile_data(contact_email="x@")
    )

    assert "Profile of Demo Coffee Co" in page_text(response)


def test_posting_the_name_or_slug_with_the_profile_changes_neither(merchant, owner_client):
    owner_client.post(
        merchant_url("merchants:profile", merchant),
        profile_data(name="Hijacked", slug="hijacked", created_at="2000-01-01"),
    )

    merchant.refresh_from_db()
    assert merchant.name == "Demo Coffee Co"
    assert merchant.slug == "demo-coffee-co"
    assert merchant.country == "IE"


@pytest.mark.parametrize("role", ["developer", "support", "view-only"])
def test_a_member_who_may_not_edit_the_profile_is_refused_and_nothing_is_saved(
    merchant, member_factory, client_for, role
):
    client = client_for(member_factory(merchant, role))
    before = profile_of(merchant)

    page = client.get(merchant_url("merchants:profile", merchant))
    posted = client.post(merchant_url("merchants:profile", merchant), profile_data())

    assert page.status_code == 403
    assert posted.status_code == 403
    assert profile_of(merchant) == before


def test_another_merchants_profile_is_not_found_and_nothing_is_saved(other_merchant, owner_client):
    before = profile_of(other_merchant)

    page = owner_client.get(merchant_url("merchants:profile", other_merchant))
    posted = owner_client.post(merchant_url("merchants:profile", other_merchant), profile_data())

    assert page.status_code == 404
    assert posted.status_code == 404
    assert profile_of(other_merchant) == before


# The roles pages -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "developer"])
def test_the_roles_page_shows_the_catalogue_with_each_permissions_label(
    merchant, member_factory, client_for, role
):
    response = client_for(member_factory(merchant, role)).get(merchant_url("teams:roles", merchant))

    assert response.status_code == 200
    html = page_html(response)
    for entry in CATALOGUE:
        assert f'title="{entry.description}">{entry.label}</th>' in html.replace("&#x27;", "'")
    for name in ("Owner", "Administrator", "Developer", "Support", "View only"):
        assert name in html


def test_the_roles_page_marks_exactly_the_permissions_of_each_role(merchant, owner_client):
    html = page_html(owner_client.get(merchant_url("teams:roles", merchant)))

    row = re.search(r"<th scope=\"row\">Support.*?</tr>", html, re.S).group(0)
    marks = re.findall(r'<td class="mark">(.*?)</td>', row)
    assert [mark == "✓" for mark in marks] == [
        entry.perm in {VIEW_MERCHANT, "credentials.view_key_status"} for entry in CATALOGUE
    ]


def test_the_roles_page_offers_role_editing_only_to_custom_role_managers(
    merchant, owner, member_factory, client_for
):
    RoleFactory(merchant=merchant, name="Accountant")
    developer = member_factory(merchant, "developer")

    as_owner = page_html(client_for(owner).get(merchant_url("teams:roles", merchant)))
    as_developer = page_html(client_for(developer).get(merchant_url("teams:roles", merchant)))

    assert merchant_url("teams:role_create", merchant) in as_owner
    assert "/edit/" in as_owner
    assert merchant_url("teams:role_create", merchant) not in as_developer
    assert "/edit/" not in as_developer


@pytest.mark.parametrize("role", ["support", "view-only"])
def test_members_without_view_team_are_refused_the_roles_page(
    merchant, member_factory, client_for, role
):
    response = client_for(member_factory(merchant, role)).get(merchant_url("teams:roles", merchant))

    assert response.status_code == 403


def test_another_merchants_roles_page_is_not_found(other_merchant, owner_client):
    assert owner_client.get(merchant_url("teams:roles", other_merchant)).status_code == 404


def test_the_role_editor_shows_each_permissions_label_and_one_line_description(
    merchant, owner_client
):
    response = owner_client.get(merchant_url("teams:role_create", merchant))

    assert response.status_code == 200
    html = page_html(response).replace("&#x27;", "'")
    for entry in CATALOGUE:
        assert f'value="{entry.perm}"' in html
        assert f"<strong>{entry.label}</strong>" in html
        assert entry.description in html


def test_the_role_editor_of_an_existing_role_shows_the_descriptions_and_its_permissions(
    merchant, owner, owner_client
):
    role = RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT])

    html = page_html(
        owner_client.get(merchant_url("teams:role_edit", merchant, pk=role.pk))
    ).replace("&#x27;", "'")

    for entry in CATALOGUE:
        assert entry.description in html
    assert re.search(rf'value="{VIEW_MERCHANT}"[^>]*checked', html)


def test_a_member_who_may_not_manage_custom_roles_is_refused_the_role_editor(
    merchant, member_factory, client_for
):
    client = client_for(member_factory(merchant, "developer"))

    assert client.get(merchant_url("teams:role_create", merchant)).status_code == 403


def test_the_role_editor_of_another_merchant_is_not_found(other_merchant, owner_client):
    assert owner_client.get(merchant_url("teams:role_create", other_merchant)).status_code == 404


# Inviting: roles as described choices, the least powerful first ---------------------------


def role_radios(html: str) -> dict[int, str]:
    """Return the role radio buttons of a page: role pk → the input's HTML."""
    return {
        int(pk): tag
        for tag, pk in re.findall(r'(<input type="radio" name="role" value="(\d+)"[^>]*>)', html)
    }


def test_the_invitation_form_offers_roles_as_radio_buttons_with_their_permissions(
    merchant, owner_client
):
    html = page_html(owner_client.get(merchant_url("teams:invite", merchant)))

    assert "<select" not in html
    assert set(role_radios(html)) == {
        default_role(slug).pk
        for slug in ("owner", "administrator", "developer", "support", "view-only")
    }
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Developer Sends and rolls keys and follows their verification. Can: View merchant" in (
        text
    )
    assert "Can: View merchant, View keys, Submit and roll keys, View team." in text
    assert "View only Sees the merchant's page. Can: View merchant." in text.replace("&#x27;", "'")


def test_the_invitation_form_starts_on_the_least_powerful_role_the_inviter_may_give(
    merchant, owner_client
):
    radios = role_radios(page_html(owner_client.get(merchant_url("teams:invite", merchant))))

    checked = [pk for pk, tag in radios.items() if "checked" in tag]
    assert checked == [default_role("view-only").pk]


def test_the_least_powerful_role_may_be_a_custom_one_the_inviter_may_give(
    merchant, member_factory, client_for
):
    RoleFactory(merchant=merchant, name="Viewer plus", permissions=[VIEW_MERCHANT, VIEW_TEAM])
    inviter_role = RoleFactory(
        merchant=merchant,
        name="Inviter",
        permissions=[VIEW_MERCHANT, VIEW_TEAM, "teams.invite_members"],
    )
    inviter = MembershipFactory(merchant=merchant, role=inviter_role).user

    radios = role_radios(page_html(client_for(inviter).get(merchant_url("teams:invite", merchant))))

    assert [pk for pk, tag in radios.items() if "checked" in tag] == [default_role("view-only").pk]
    assert default_role("developer").pk not in radios


def test_a_role_change_starts_on_the_role_the_member_holds(merchant, owner_client, member_factory):
    developer = member_factory(merchant, "developer")

    radios = role_radios(
        page_html(
            owner_client.get(
                merchant_url("teams:member", merchant, pk=membership(developer, merchant).pk)
            )
        )
    )

    assert [pk for pk, tag in radios.items() if "checked" in tag] == [default_role("developer").pk]


# Revoking an invitation asks first -----------------------------------------------------


def test_revoke_on_the_team_page_opens_a_confirmation_and_a_get_changes_nothing(
    merchant, owner, owner_client
):
    invitation = InvitationFactory(merchant=merchant, invited_by=owner, email="new@demo.test")
    confirm = merchant_url("teams:invitation_revoke", merchant, pk=invitation.pk)

    team = page_html(owner_client.get(merchant_url("teams:team", merchant)))
    response = owner_client.get(confirm)

    assert f'<a href="{confirm}" class="button small">Revoke</a>' in team
    assert response.status_code == 200
    assert "Revoke the invitation to new@demo.test?" in page_text(response)
    assert '<form method="post">' in page_html(response)
    invitation.refresh_from_db()
    assert invitation.state == invitation.State.PENDING


def test_confirming_revokes_the_invitation(merchant, owner, owner_client):
    invitation = InvitationFactory(merchant=merchant, invited_by=owner, email="new@demo.test")

    response = owner_client.post(
        merchant_url("teams:invitation_revoke", merchant, pk=invitation.pk), follow=True
    )

    assert "Invitation to new@demo.test revoked." in page_text(response)
    invitation.refresh_from_db()
    assert invitation.state == invitation.State.REVOKED


def test_the_revoke_confirmation_is_refused_without_invite_and_not_found_elsewhere(
    merchant, owner, other_merchant, other_owner, member_factory, client_for, owner_client
):
    ours = InvitationFactory(merchant=merchant, invited_by=owner)
    theirs = InvitationFactory(merchant=other_merchant, invited_by=other_owner)
    developer = client_for(member_factory(merchant, "developer"))

    assert (
        developer.get(merchant_url("teams:invitation_revoke", merchant, pk=ours.pk)).status_code
        == 403
    )
    for slug in (merchant, other_merchant):
        url = merchant_url("teams:invitation_revoke", slug, pk=theirs.pk)
        assert owner_client.get(url).status_code == 404


# Leaving: never offered to the last Owner -----------------------------------------------


def test_the_last_owner_is_not_offered_leave(merchant, owner_client):
    html = page_html(owner_client.get(merchant_url("teams:team", merchant)))

    assert merchant_url("teams:leave", merchant) not in html


def test_an_owner_beside_another_owner_and_other_members_are_offered_leave(
    merchant, owner_client, member_factory, client_for
):
    leave = merchant_url("teams:leave", merchant)
    developer = client_for(member_factory(merchant, "developer"))
    member_factory(merchant, "owner")

    assert leave in page_html(developer.get(merchant_url("teams:team", merchant)))
    assert leave in page_html(owner_client.get(merchant_url("teams:team", merchant)))


def test_the_leave_page_tells_the_last_owner_why_instead_of_offering_the_button(
    merchant, owner_client
):
    response = owner_client.get(merchant_url("teams:leave", merchant))

    assert response.status_code == 200
    assert (
        "You are the last Owner of Demo Coffee Co, so you cannot leave: make someone else an "
        "Owner first." in page_text(response)
    )
    assert '<form method="post">' not in page_html(response)
