"""What every portal page shares: the skip link, the merchant menu marking the current page,
breadcrumbs, flash messages that differ by level beyond colour, the refusal page that keeps
the merchant's navigation, and where the helpdesk's "View site" leads."""

import re

import pytest
from django.urls import resolve, reverse

from tests.factories import (
    CredentialFactory,
    InvitationFactory,
    MembershipFactory,
    RoleFactory,
    default_role,
)
from tests.helpers import merchant_url, page_html, page_text
from tests.portal_routes import portal_routes, route_address

ANY_PKS = {"credential": 1, "membership": 1, "role": 1, "invitation": 1}


def browser_pages() -> list:
    """Return the portal routes a browser opens: those answering GET with a page."""
    pages = []
    for route in portal_routes():
        url = route_address(route, merchant_slug="any", object_pks=ANY_PKS, who="the layout test")
        view = resolve(url).func.view_class
        if hasattr(view, "get") and route.name != "credentials:status":
            pages.append(route)
    return pages


@pytest.fixture
def objects(merchant, owner):
    """One object of each kind a portal page's address names, for the Owner to open."""
    return {
        "credential": CredentialFactory(merchant=merchant, submitted_by=owner).pk,
        "membership": MembershipFactory(merchant=merchant, role=default_role("view-only")).pk,
        "role": RoleFactory(merchant=merchant, name="Bookkeeper").pk,
        "invitation": InvitationFactory(merchant=merchant, invited_by=owner).pk,
    }


def crumbs(html: str) -> str:
    match = re.search(r'<nav class="crumbs" aria-label="Breadcrumb">(.*?)</nav>', html, re.S)
    assert match, "no breadcrumbs on the page"
    return match.group(1)


def merchant_menu(html: str) -> str:
    match = re.search(r'<nav class="merchant-nav"[^>]*>(.*?)</nav>', html, re.S)
    assert match, "no merchant menu on the page"
    return match.group(1)


@pytest.mark.parametrize("route", browser_pages(), ids=str)
def test_every_merchant_page_has_a_skip_link_menu_and_breadcrumbs_ending_at_itself(
    route, merchant, owner_client, objects
):
    url = route_address(route, merchant_slug=merchant.slug, object_pks=objects, who="layout")

    response = owner_client.get(url)

    assert response.status_code == 200
    html = page_html(response)
    assert re.search(r'<body>\s*<a class="skip-link" href="#main">Skip to main content</a>', html)
    assert '<main class="page" id="main" tabindex="-1">' in html
    merchant_menu(html)
    trail = crumbs(html)
    assert f'<a href="{reverse("merchants:dashboard")}">Your merchants</a>' in trail
    assert merchant.name in trail
    assert len(re.findall(r'aria-current="page"', trail)) == 1
    assert 'aria-current="page"' in re.findall(r"<li[^>]*>", trail)[-1]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("credentials:merchant", "Overview"),
        ("teams:team", "Team"),
        ("teams:roles", "Roles"),
        ("teams:audit", "Audit trail"),
        ("merchants:profile", "Profile"),
    ],
)
def test_the_merchant_menu_marks_the_current_page(merchant, owner_client, name, label):
    menu = merchant_menu(page_html(owner_client.get(merchant_url(name, merchant))))

    current = re.findall(r'<a href="[^"]*" aria-current="page">([^<]+)</a>', menu)
    assert current == [label]


def test_the_menu_marks_the_section_of_a_page_inside_it(merchant, owner_client):
    menu = merchant_menu(page_html(owner_client.get(merchant_url("teams:invite", merchant))))

    assert re.findall(r'aria-current="true">([^<]+)</a>', menu) == ["Team"]
    assert 'aria-current="page"' not in menu


# Flash messages ---------------------------------------------------------------------------


def message_items(html: str) -> list[str]:
    return re.findall(r'<li class="message [^"]*"[^>]*>.*?</li>', html, re.S)


def test_a_success_message_is_marked_as_such_in_words_and_class(merchant, owner_client):
    response = owner_client.post(
        merchant_url("merchants:profile", merchant),
        {"contact_email": "a@demo.test", "requested_integrations": ["online_payments"]},
        follow=True,
    )

    (item,) = message_items(page_html(response))
    assert "message-success" in item
    assert '<span class="message-level">Done:</span> Profile saved.' in item
    assert 'role="alert"' not in item


def test_a_warning_message_is_marked_as_such(merchant, owner, owner_client):
    key = CredentialFactory(merchant=merchant, submitted_by=owner)

    response = owner_client.post(
        merchant_url("credentials:revoke", merchant, pk=key.pk), {"reason": ""}, follow=True
    )

    (item,) = message_items(page_html(response))
    assert "message-warning" in item
    assert '<span class="message-level">Warning:</span>' in item


def test_an_error_message_is_marked_as_such_and_announced(merchant, owner_client):
    response = owner_client.post(merchant_url("teams:leave", merchant), follow=True)

    (item,) = message_items(page_html(response))
    assert "message-error" in item
    assert 'role="alert"' in item
    assert '<span class="message-level">Error:</span>' in item


# The refusal page -------------------------------------------------------------------------


def test_a_refused_merchant_page_keeps_the_merchants_navigation(
    merchant, member_factory, client_for
):
    response = client_for(member_factory(merchant, "view-only")).get(
        merchant_url("credentials:submit", merchant)
    )

    assert response.status_code == 403
    html = page_html(response)
    assert "You are not allowed to do this" in page_text(response)
    assert re.search(
        rf'href="{merchant.get_absolute_url()}"[^>]*>Overview</a>', merchant_menu(html)
    )
    assert f"Back to {merchant.name}" in page_text(response)


def test_another_merchants_page_is_not_found_and_names_no_merchant(other_merchant, owner_client):
    response = owner_client.get(merchant_url("credentials:merchant", other_merchant))

    assert response.status_code == 404
    assert "merchant-nav" not in page_html(response)
    assert other_merchant.name not in page_html(response)


# Where the helpdesk's "View site" leads ----------------------------------------------------


def test_the_helpdesks_view_site_leads_to_its_landing_with_the_queue(helpdesk_user, client_for):
    client = client_for(helpdesk_user)

    admin = page_html(client.get(reverse("admin:index")))
    landing = client.get(reverse("merchants:dashboard"))

    assert re.search(r'<a href="/">View site</a>', admin)
    assert landing.status_code == 200
    assert (
        f'<a href="{reverse("admin:credentials_credential_changelist")}">The queue of submitted '
        "keys</a>" in page_html(landing)
    )
    assert "You are not a member of any merchant yet" not in page_text(landing)


def test_a_merchant_member_sees_no_helpdesk_landing(owner_client):
    html = page_html(owner_client.get(reverse("merchants:dashboard")))

    assert "helpdesk-landing" not in html
    assert "Your merchants" in html
