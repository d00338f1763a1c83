"""The headers every page sends (issue #12, finding 11): a strict Content-Security-Policy that
the portal and the admin pages keep to (no inline script or style), a Permissions-Policy, and
no copy of a page with merchant data kept by a browser or a proxy."""

from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.urls import reverse

from tests.factories import CredentialFactory, MembershipFactory, default_role
from tests.portal_routes import portal_routes
from tests.test_portal_access import _tenant, address

PORTAL_ROUTES = portal_routes()
STRICT_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# Templates that are sent as mail, never served: the policy does not apply to them.
MAIL_TEMPLATES = "emails"


def policy(response) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return dict(directives)


def cache_directives(response) -> set[str]:
    return {part.strip() for part in response.headers.get("Cache-Control", "").split(",")}


class InlineCode(HTMLParser):
    """Collect what a strict policy blocks: inline scripts, style elements and attributes,
    event-handler attributes and `javascript:` links."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        # A JSON data block (`json_script`) is data, never run: the policy does not apply.
        is_data = attributes.get("type") == "application/json"
        if tag == "script" and not attributes.get("src") and not is_data:
            self._in_inline_script = True
            self.found.append(f"<script> without src: {self.getpos()}")
        if tag == "style":
            self.found.append(f"<style> element at {self.getpos()}")
        for name, value in attrs:
            javascript_url = (value or "").strip().lower().startswith("javascript:")
            if name == "style" or name.startswith("on") or javascript_url:
                self.found.append(f'{name}="{value}" on <{tag}>')

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline_script = False


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


@pytest.fixture
def tenants(merchant, other_merchant, owner, other_owner):
    return {"own": _tenant(merchant, owner), "other": _tenant(other_merchant, other_owner)}


# Content-Security-Policy and Permissions-Policy.


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/healthz"])
def test_anonymous_pages_send_the_strict_policy_and_the_permissions_policy(client, db, path):
    response = client.get(path)

    assert policy(response) == STRICT_POLICY
    assert response.headers["Permissions-Policy"] == PERMISSIONS_POLICY


def test_portal_and_admin_pages_send_the_strict_policy(owner_client, client_for, superuser):
    portal = owner_client.get(reverse("merchants:dashboard"))
    admin_index = client_for(superuser).get(reverse("admin:index"))

    assert portal.status_code == admin_index.status_code == 200
    assert policy(portal) == policy(admin_index) == STRICT_POLICY
    assert portal.headers["Permissions-Policy"] == PERMISSIONS_POLICY
    assert admin_index.headers["Permissions-Policy"] == PERMISSIONS_POLICY


def test_error_pages_send_the_strict_policy(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert policy(response) == STRICT_POLICY


# Pages keep to the policy: nothing inline for it to block.


def test_no_served_template_has_inline_script_or_style():
    templates = Path(settings.BASE_DIR) / "templates"
    offenders = {
        str(path.relative_to(templates)): found
        for path in templates.rglob("*.html")
        if path.relative_to(templates).parts[0] != MAIL_TEMPLATES
        and (found := inline_code(path.read_text()))
    }

    assert offenders == {}


@pytest.mark.parametrize("route", PORTAL_ROUTES, ids=str)
def test_portal_page_has_no_inline_script_or_style(route, tenants, owner_client):
    response = owner_client.get(address(route, tenants["own"]))

    assert response.status_code in {200, 405}, response.status_code
    assert inline_code(response.content.decode()) == []


def test_dashboard_login_and_error_pages_have_no_inline_script_or_style(owner_client, client):
    pages = {
        "dashboard": owner_client.get(reverse("merchants:dashboard")),
        "login": client.get(reverse("login")),
        "not found": client.get("/no-such-page/"),
    }

    assert {name: inline_code(page.content.decode()) for name, page in pages.items()} == {
        name: [] for name in pages
    }


def admin_pages(superuser) -> list[str]:
    """Return the admin pages the helpdesk uses: the index, every model's list, an object's
    page and the add page where there is one, and the credential's own pages."""
    credential = CredentialFactory()
    MembershipFactory(merchant=credential.merchant, role=default_role("owner"))
    pages = [reverse("admin:index"), reverse("admin:password_change")]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        instance = model._default_manager.first()
        if instance is not None:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[instance.pk]))
        if model_admin.has_add_permission(_Request(superuser)):
            pages.append(reverse("admin:{}_{}_add".format(*info)))
    pages += [
        reverse("admin:credentials_credential_revoke", args=[credential.pk]),
        reverse("admin:credentials_credential_reveal", args=[credential.pk]),
    ]
    return pages


class _Request:
    """Enough of a request for ModelAdmin.has_add_permission."""

    def __init__(self, user):
        self.user = user


def test_admin_pages_have_no_inline_script_or_style(client_for, superuser, client):
    signed_in = client_for(superuser)
    found = {}
    for page in admin_pages(superuser):
        response = signed_in.get(page)
        assert response.status_code == 200, (page, response.status_code)
        if code := inline_code(response.content.decode()):
            found[page] = code
    login = client.get(reverse("admin:login"))
    if code := inline_code(login.content.decode()):
        found["login"] = code

    assert found == {}


# Cache-Control: nothing with merchant data is stored.


@pytest.mark.parametrize("route", PORTAL_ROUTES, ids=str)
def test_portal_page_is_never_stored(route, tenants, owner_client):
    own = owner_client.get(address(route, tenants["own"]))
    others = owner_client.get(address(route, tenants["other"]))

    assert own.status_code in {200, 405}
    assert others.status_code == 404
    assert {"private", "no-store"} <= cache_directives(own)
    assert {"private", "no-store"} <= cache_directives(others)


def test_dashboard_is_never_stored(owner_client):
    response = owner_client.get(reverse("merchants:dashboard"))

    assert response.status_code == 200
    assert {"private", "no-store"} <= cache_directives(response)


def test_a_page_after_a_form_post_is_never_stored(owner_client, merchant):
    response = owner_client.post(
        reverse("merchants:profile", kwargs={"slug": merchant.slug}), {}, follow=False
    )

    assert {"private", "no-store"} <= cache_directives(response)


def test_admin_pages_are_never_stored(client_for, helpdesk_user):
    response = client_for(helpdesk_user).get(reverse("admin:index"))

    assert response.status_code == 200
    assert "no-store" in cache_directives(response)
    assert "private" in cache_directives(response)
