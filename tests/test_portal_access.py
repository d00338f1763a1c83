"""Who opens which portal page: every default role on every route of its own merchant, and
everyone else once per route and method (a member of another merchant, a made-up merchant or
object, an anonymous visitor).

The routes are read from the URL configuration (`tests/portal_routes.py`: every route that
takes a merchant `slug`, and a route again for each query that makes it another page, such as
the submit page's `?provider=kashier`) and each page's permission from the permission its
view declares, so a new page is covered as soon as it is routed, and a page that declares
none fails. What each
role may do comes from DEFAULT_ROLES in `teams/permissions.py`: the pages' answers are compared
with the catalogue, never with the code that gives them.

Every page asks through the one door (`merchants.services.merchant_open`, then
`audit.refusals.authorize`): a member without the permission gets 403, anyone who is not a
member 404, and each refused request is audited once, by route name, in the trail of the
merchant it asked for.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.urls import resolve, reverse

from audit.models import AuditEvent
from audit.refusals import NOT_ALLOWED
from credentials.models import Credential, Mode
from credentials.providers import DEFAULT_PROVIDER
from credentials.views import MerchantView
from merchants.models import Integration, Merchant
from teams.models import Invitation, Membership, Role
from teams.permissions import (
    ALL_MERCHANT_PERMISSIONS,
    DEFAULT_ROLES,
    EDIT_MERCHANT_PROFILE,
    INVITE_MEMBERS,
    MANAGE_CUSTOM_ROLES,
    MANAGE_MEMBER_ROLES,
    REVOKE_KEYS,
    SUBMIT_KEYS,
    VIEW_KEYS,
    VIEW_MERCHANT,
    VIEW_TEAM,
)
from tests.factories import (
    CredentialFactory,
    InvitationFactory,
    MembershipFactory,
    RoleFactory,
    default_role,
    fake_key,
)
from tests.fake_kashier import MERCHANT_ID, fake_payment_api_key, fake_secret_key
from tests.helpers import page_html, page_text, stored_state
from tests.portal_routes import PK_KINDS, PortalRoute, portal_routes, route_address

PORTAL_ROUTES = portal_routes(query_variants=True)
ROLE_PERMISSIONS = {role.slug: role.permissions for role in DEFAULT_ROLES}

# What each page needs, as the issue and DESIGN.md describe the pages. The tests read the
# permission the view declares; this table catches a view that declares the wrong one.
PAGE_NEEDS = {
    "credentials:merchant": VIEW_MERCHANT,
    "merchants:profile": EDIT_MERCHANT_PROFILE,
    "credentials:submit": SUBMIT_KEYS,
    "credentials:detail": VIEW_KEYS,
    "credentials:status": VIEW_KEYS,
    "credentials:revoke": REVOKE_KEYS,
    "teams:team": VIEW_TEAM,
    "teams:invite": INVITE_MEMBERS,
    "teams:invitation_resend": INVITE_MEMBERS,
    "teams:invitation_revoke": INVITE_MEMBERS,
    "teams:member": MANAGE_MEMBER_ROLES,
    "teams:member_remove": MANAGE_MEMBER_ROLES,
    "teams:leave": VIEW_MERCHANT,
    "teams:roles": VIEW_TEAM,
    "teams:role_create": MANAGE_CUSTOM_ROLES,
    "teams:role_edit": MANAGE_CUSTOM_ROLES,
    "teams:role_delete": MANAGE_CUSTOM_ROLES,
    "teams:audit": MANAGE_MEMBER_ROLES,
}

NOT_A_MEMBER = "Not a member of this merchant."
UNKNOWN_SLUG = "no-such-merchant"
# An id no row has: the largest a PostgreSQL integer holds.
UNKNOWN_PK = 2**31 - 1
# A made-up secret key of each provider, in the shape its submit page takes.
SECRET_KEYS = {"stripe": lambda: fake_key("sk_test_"), "kashier": fake_secret_key}


@dataclass(frozen=True)
class Tenant:
    """A merchant with its Owner and one object of each kind a portal URL can name."""

    merchant: Merchant
    owner: object
    credential: Credential
    member: Membership
    role: Role
    invitation: Invitation

    def object_pks(self) -> dict[str, int]:
        return {
            "credential": self.credential.pk,
            "membership": self.member.pk,
            "role": self.role.pk,
            "invitation": self.invitation.pk,
        }


def _tenant(merchant, owner) -> Tenant:
    return Tenant(
        merchant=merchant,
        owner=owner,
        credential=CredentialFactory(merchant=merchant, submitted_by=owner),
        # View only: a member whom every role that may manage members may also manage.
        member=MembershipFactory(merchant=merchant, role=default_role("view-only")),
        role=RoleFactory(
            merchant=merchant, name="Bookkeeper", permissions=[VIEW_MERCHANT, VIEW_KEYS]
        ),
        invitation=InvitationFactory(
            merchant=merchant, email=f"invitee@{merchant.slug}.test", invited_by=owner
        ),
    )


@pytest.fixture
def tenants(merchant, other_merchant, owner, other_owner):
    """Demo Coffee Co ("own") and Demo Bakery Co ("other"), each with one object of each kind."""
    return {"own": _tenant(merchant, owner), "other": _tenant(other_merchant, other_owner)}


def address(route: PortalRoute, tenant: Tenant, *, slug: str = "", object_pks=None) -> str:
    """Return the address of `route` for `tenant` (or `slug`), its `pk` set to one of the
    tenant's objects (or to `object_pks`)."""
    return route_address(
        route,
        merchant_slug=slug or tenant.merchant.slug,
        object_pks=object_pks or tenant.object_pks(),
        who="the portal access test",
    )


def declared_permission(url: str) -> str:
    """Return the permission the view behind `url` declares; fail the test if it declares none."""
    view_class = getattr(resolve(urlsplit(url).path).func, "view_class", None)
    permission = getattr(view_class, "permission_required", None)
    if not permission:
        pytest.fail(f"The portal view behind {url} does not declare permission_required.")
    if permission not in ALL_MERCHANT_PERMISSIONS:
        pytest.fail(f"The view behind {url} declares {permission!r}, not a catalogue permission.")
    return permission


def takes(url: str, method: str) -> bool:
    """Return True if the view behind `url` answers `method`."""
    view_class = resolve(urlsplit(url).path).func.view_class
    name = method.lower()
    return name in view_class.http_method_names and hasattr(view_class, name)


def form_data(secret: str) -> dict:
    """Return answers to every form of the portal at once: a page that skipped a check would
    act on them (store a key, invite, change a role or the profile), so a refusal that
    changes nothing proves the check."""
    return {
        "publishable_key": fake_key("pk_test_"),
        "secret_key": secret,
        "note": "",
        "requested_integrations": [Integration.ONLINE_PAYMENTS],
        "email": "probe@example.test",
        "role": default_role("owner").pk,
        "name": "Probe",
        "description": "",
        "permissions": [VIEW_MERCHANT],
        "contact_email": "probe@example.test",
        "country": "FR",
        "reason": "probe",
        # Kashier's form (`?provider=kashier`), with a Kashier `secret`.
        "merchant_id": MERCHANT_ID,
        "payment_api_key": fake_payment_api_key(),
        "mode": Mode.TEST,
    }


def send(client, method: str, url: str, secret: str):
    if method == "GET":
        return client.get(url)
    return client.post(url, form_data(secret))


def denials(merchant) -> list[tuple]:
    """Return the refused page requests in `merchant`'s trail: who, which, and why."""
    return [
        (event.actor, event.target, event.details)
        for event in AuditEvent.objects.filter(
            action=AuditEvent.Action.ACCESS_DENIED, merchant=merchant
        ).order_by("pk")
    ]


def without_csrf_token(html: str) -> str:
    """Return the page with its CSRF token blanked: the token is masked afresh on each render."""
    return re.sub(r'(name="csrfmiddlewaretoken" value=")[^"]*"', r'\1"', html)


@pytest.fixture
def secret(route):
    """A made-up secret key that the route's page takes: of the provider its query names,
    Stripe's without one."""
    provider = parse_qs(route.query).get("provider", [DEFAULT_PROVIDER])[0]
    if provider not in SECRET_KEYS:
        pytest.fail(f"{route}: add a made-up {provider} secret key to SECRET_KEYS.")
    return SECRET_KEYS[provider]()


ROUTES = pytest.mark.parametrize("route", PORTAL_ROUTES, ids=str)
PK_ROUTES = pytest.mark.parametrize(
    "route", [route for route in PORTAL_ROUTES if "pk" in route.kwargs], ids=str
)
ROLES = pytest.mark.parametrize("role", [role.slug for role in DEFAULT_ROLES])
METHODS = pytest.mark.parametrize("method", ["GET", "POST"])


# The routes and the permission each page declares -------------------------------------------


def test_portal_routes_are_read_from_the_url_configuration():
    names = {route.name for route in PORTAL_ROUTES}

    assert {
        "credentials:merchant",
        "credentials:submit",
        "credentials:detail",
        "teams:team",
        "teams:role_edit",
    } <= names
    assert "teams:invitation" not in names  # the invitation link is opened by its token alone


@ROUTES
def test_every_portal_view_declares_the_catalogue_permission_its_page_needs(route):
    url = route_address(
        route,
        merchant_slug="any",
        object_pks=dict.fromkeys(PK_KINDS.values(), 1),
        who="the portal access test",
    )

    permission = declared_permission(url)

    if route.name not in PAGE_NEEDS:
        pytest.fail(f"{route}: add the permission this new page needs to PAGE_NEEDS.")
    assert permission == PAGE_NEEDS[route.name]


def test_a_view_without_a_declared_permission_fails_the_access_test(monkeypatch):
    monkeypatch.setattr(MerchantView, "permission_required", None)

    with pytest.raises(pytest.fail.Exception, match="does not declare permission_required"):
        declared_permission(reverse("credentials:merchant", kwargs={"slug": "any"}))


# Members of the merchant: each role on each page ---------------------------------------------


@ROUTES
@ROLES
def test_a_member_is_let_in_only_with_the_permission_the_page_declares(
    route, role, tenants, member_factory, client_for, secret
):
    own = tenants["own"]
    user = member_factory(own.merchant, role)
    client = client_for(user)
    url = address(route, own)
    permission = declared_permission(url)

    if permission in ROLE_PERMISSIONS[role]:
        if takes(url, "GET"):
            fetched = client.get(url)
            assert fetched.status_code == 200
            assert route.shows in page_text(fetched)
        else:
            assert client.post(url).status_code < 400
        if route.query and takes(url, "POST"):
            # The query reaches the form that takes the POST, and it acts on the body.
            before = stored_state()
            assert send(client, "POST", url, secret).status_code == 302
            assert stored_state() != before
        assert denials(own.merchant) == []
    else:
        before = stored_state()

        fetched = send(client, "GET", url, secret)
        posted = send(client, "POST", url, secret)

        for response in (fetched, posted):
            assert response.status_code == 403
            assert "You are not allowed to do this" in page_text(response)
        assert stored_state() == before
        why = {"reason": NOT_ALLOWED, "permission": permission}
        assert denials(own.merchant) == [
            (user, f"GET {route.name}", why),
            (user, f"POST {route.name}", why),
        ]


# Everyone else: once per route and method ---------------------------------------------------


@ROUTES
@METHODS
def test_a_member_of_another_merchant_gets_404_audited_in_that_merchants_trail(
    route, method, tenants, client_for, secret
):
    own, other = tenants["own"], tenants["other"]
    url = address(route, other)
    permission = declared_permission(url)
    before = stored_state()

    response = send(client_for(own.owner), method, url, secret)

    assert response.status_code == 404
    assert other.merchant.name not in page_html(response)
    assert stored_state() == before
    assert denials(other.merchant) == [
        (own.owner, f"{method} {route.name}", {"reason": NOT_A_MEMBER, "permission": permission})
    ]
    assert denials(own.merchant) == []


@ROUTES
def test_a_merchant_that_does_not_exist_gets_the_same_404_page_and_is_not_audited(
    route, tenants, client_for
):
    client = client_for(tenants["own"].owner)
    other = tenants["other"]

    another_merchants = client.get(address(route, other))
    unknown = client.get(address(route, other, slug=UNKNOWN_SLUG))

    assert unknown.status_code == another_merchants.status_code == 404
    assert without_csrf_token(page_html(unknown)) == without_csrf_token(
        page_html(another_merchants)
    )
    # There is no merchant whose trail could record it.
    assert denials(None) == []


@PK_ROUTES
@METHODS
def test_another_merchants_object_under_ones_own_merchant_gets_the_page_of_an_unknown_id(
    route, method, tenants, client_for, secret
):
    own, other = tenants["own"], tenants["other"]
    client = client_for(own.owner)
    foreign_url = address(route, own, object_pks=other.object_pks())
    unknown_url = address(route, own, object_pks=dict.fromkeys(other.object_pks(), UNKNOWN_PK))
    before = stored_state()

    foreign = send(client, method, foreign_url, secret)
    unknown = send(client, method, unknown_url, secret)

    # A view that does not take the method says so before it looks the object up.
    assert foreign.status_code == (404 if takes(foreign_url, method) else 405)
    assert unknown.status_code == foreign.status_code
    assert without_csrf_token(page_html(unknown)) == without_csrf_token(page_html(foreign))
    assert stored_state() == before


@ROUTES
@METHODS
def test_an_anonymous_visitor_is_sent_to_sign_in_and_changes_nothing(
    route, method, tenants, client, secret
):
    url = address(route, tenants["own"])
    before = stored_state()

    response = send(client, method, url, secret)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={quote(url)}"
    assert stored_state() == before


@ROUTES
def test_an_anonymous_visitor_is_sent_to_sign_in_for_a_merchant_that_does_not_exist_too(
    route, tenants, client
):
    url = address(route, tenants["own"], slug=UNKNOWN_SLUG)

    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={quote(url)}"
