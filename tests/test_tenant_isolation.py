"""Tenant isolation: no merchant-scoped address opens for anyone but the merchant's members.

The addresses are read from the URL configuration, so a new merchant view is covered as soon as
it is routed: every pattern that takes a `slug` is merchant-scoped.
"""

import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.urls import reverse
from django.utils import timezone

from credentials.models import Credential
from merchants.models import Merchant
from teams.models import Invitation, Membership, Role
from tests.factories import CredentialFactory, MembershipFactory, default_role, fake_key
from tests.portal_routes import PortalRoute, portal_routes, route_address

MERCHANT_ROUTES = portal_routes()


@dataclass(frozen=True)
class Tenant:
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
    """A merchant with its Owner, one stored key, a Developer, a custom role, an invitation."""
    role = Role.objects.create(merchant=merchant, name="Bookkeeper")
    return Tenant(
        merchant=merchant,
        owner=owner,
        credential=CredentialFactory(merchant=merchant, submitted_by=owner),
        member=MembershipFactory(merchant=merchant, role=default_role("developer")),
        role=role,
        invitation=Invitation.objects.create(
            merchant=merchant,
            email=f"invitee@{merchant.slug}.test",
            role=default_role("support"),
            token_hash=f"{merchant.pk:064d}",
            expires_at=timezone.now() + timedelta(days=10),
        ),
    )


@pytest.fixture
def tenants(merchant, other_merchant, owner, other_owner):
    """Demo Coffee Co and Demo Bakery Co, each with its Owner and one object of each kind."""
    return {"coffee": _tenant(merchant, owner), "bakery": _tenant(other_merchant, other_owner)}


def address(route: PortalRoute, *, merchant_slug: str, object_pks: dict[str, int]) -> str:
    return route_address(
        route, merchant_slug=merchant_slug, object_pks=object_pks, who="the isolation test"
    )


def tenant_address(route: PortalRoute, tenant: Tenant) -> str:
    return address(route, merchant_slug=tenant.merchant.slug, object_pks=tenant.object_pks())


def send(client, method: str, url: str):
    """GET `url`, or POST a valid key submission, which a view without a tenant check stores."""
    if method == "get":
        return client.get(url)
    return client.post(
        url,
        {
            "publishable_key": fake_key("pk_test_"),
            "secret_key": fake_key("sk_test_"),
            "requested_integrations": ["online_payments"],
            "note": "",
        },
    )


def database_state():
    """Return every row of the tenant data (secrets left out), to prove nothing changed."""
    state = {}
    for model in (Merchant, Credential, Membership, Role, Invitation):
        columns = [f.attname for f in model._meta.concrete_fields if f.name != "secret"]
        state[model.__name__] = list(model.objects.order_by("pk").values_list(*columns))
    return state


def without_csrf_token(html: str) -> str:
    """Return the page with its CSRF token blanked: the token is masked afresh on each render."""
    return re.sub(r'(name="csrfmiddlewaretoken" value=")[^"]*"', r'\1"', html)


VISITS = pytest.mark.parametrize(
    ("visitor", "victim"), [("bakery", "coffee"), ("coffee", "bakery")]
)
ROUTES = pytest.mark.parametrize("route", MERCHANT_ROUTES, ids=str)


def test_merchant_scoped_addresses_are_read_from_the_url_configuration():
    names = {route.name for route in MERCHANT_ROUTES}

    assert MERCHANT_ROUTES
    assert {"credentials:merchant", "credentials:submit", "credentials:detail"} <= names


@ROUTES
@pytest.mark.parametrize("tenant", ["coffee", "bakery"])
def test_owner_opens_every_address_of_their_own_merchant(route, tenant, tenants, client_for):
    response = client_for(tenants[tenant].owner).get(tenant_address(route, tenants[tenant]))

    # A view that only takes POST answers 405 once the owner is through the tenant check.
    post_only = response.status_code == 405 and "GET" not in response["Allow"]
    assert response.status_code == 200 or post_only


@ROUTES
@VISITS
@pytest.mark.parametrize("method", ["get", "post"])
def test_owner_of_another_merchant_gets_404_on_every_address_and_changes_nothing(
    route, visitor, victim, method, tenants, client_for
):
    client = client_for(tenants[visitor].owner)
    url = tenant_address(route, tenants[victim])
    before = database_state()

    response = send(client, method, url)

    assert response.status_code == 404
    assert tenants[victim].merchant.name not in response.content.decode()
    assert database_state() == before


@ROUTES
@VISITS
def test_unknown_slug_gets_the_same_404_page_as_another_merchants_slug(
    route, visitor, victim, tenants, client_for
):
    client = client_for(tenants[visitor].owner)
    victim_pks = tenants[victim].object_pks()

    other_tenant = client.get(tenant_address(route, tenants[victim]))
    unknown = client.get(address(route, merchant_slug="no-such-merchant", object_pks=victim_pks))

    assert unknown.status_code == other_tenant.status_code == 404
    assert without_csrf_token(unknown.content.decode()) == without_csrf_token(
        other_tenant.content.decode()
    )


@VISITS
def test_owner_opens_a_key_of_their_own_merchant(visitor, victim, tenants, client_for):
    own = tenants[visitor]

    response = client_for(own.owner).get(own.credential.get_absolute_url())

    assert response.status_code == 200
    assert own.credential.secret_hint in response.content.decode()


@VISITS
def test_key_of_another_merchant_under_own_slug_is_404(visitor, victim, tenants, client_for):
    own, other = tenants[visitor], tenants[victim]
    url = reverse(
        "credentials:detail", kwargs={"slug": own.merchant.slug, "pk": other.credential.pk}
    )

    response = client_for(own.owner).get(url)

    assert response.status_code == 404
    assert other.credential.secret_hint not in response.content.decode()


@VISITS
def test_unknown_key_id_gets_the_same_404_page_as_another_merchants_key_id(
    visitor, victim, tenants, client_for
):
    own, other = tenants[visitor], tenants[victim]
    client = client_for(own.owner)
    unused_pk = Credential.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1

    def key_page(pk):
        return client.get(
            reverse("credentials:detail", kwargs={"slug": own.merchant.slug, "pk": pk})
        )

    other_tenant, unknown = key_page(other.credential.pk), key_page(unused_pk)

    assert unknown.status_code == other_tenant.status_code == 404
    assert without_csrf_token(unknown.content.decode()) == without_csrf_token(
        other_tenant.content.decode()
    )


@ROUTES
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitor_is_redirected_to_login_on_every_address(route, method, tenants, client):
    url = tenant_address(route, tenants["coffee"])
    before = database_state()

    response = send(client, method, url)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={quote(url)}"
    assert database_state() == before


@ROUTES
def test_anonymous_visitor_is_redirected_to_login_for_an_unknown_slug_too(route, tenants, client):
    url = address(
        route, merchant_slug="no-such-merchant", object_pks=tenants["coffee"].object_pks()
    )

    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
