"""Every portal address, for every default role, in its own merchant and in another.

The addresses are read from the URL configuration (every route that takes a `slug` is a
merchant portal page) and each page's permission from the permission its view declares, so a
new page is in the matrix as soon as it is routed, and a page that declares no permission
fails. What each role may do comes from DEFAULT_ROLES in teams/permissions.py: the answer the
pages give is compared with the catalogue, never with the code that gives it.
"""

from dataclasses import dataclass

import pytest
from django.urls import resolve, reverse

from audit.models import AuditEvent
from credentials.models import Credential
from merchants.models import Merchant
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
from tests.factories import CredentialFactory, MembershipFactory, UserFactory, default_role
from tests.portal_routes import PortalRoute, portal_routes, route_address

ROLE_PERMISSIONS = {role.slug: role.permissions for role in DEFAULT_ROLES}


PORTAL_ROUTES = portal_routes()


# What each page needs, as the issue and DESIGN.md describe the pages. The matrix itself reads
# the permission the view declares; this table catches a view that declares the wrong one.
PAGE_NEEDS = {
    "credentials:merchant": VIEW_MERCHANT,
    "merchants:profile": EDIT_MERCHANT_PROFILE,
    "credentials:submit": SUBMIT_KEYS,
    "credentials:detail": VIEW_KEYS,
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
    from teams import services

    role = services.role_create(
        merchant=merchant,
        name="Bookkeeper",
        description="",
        permissions=[VIEW_MERCHANT, VIEW_KEYS],
        actor=owner,
    )
    invitation = services.invitation_create(
        merchant=merchant,
        email=f"invitee@{merchant.slug}.test",
        role=default_role("support"),
        actor=owner,
    )
    return Tenant(
        merchant=merchant,
        owner=owner,
        credential=CredentialFactory(merchant=merchant, submitted_by=owner),
        # View only: a member whom every role that may manage members may also open.
        member=MembershipFactory(merchant=merchant, role=default_role("view-only")),
        role=role,
        invitation=invitation,
    )


@pytest.fixture
def tenants(merchant, other_merchant, owner, other_owner):
    return {"own": _tenant(merchant, owner), "other": _tenant(other_merchant, other_owner)}


def address(route: PortalRoute, tenant: Tenant) -> str:
    """Return the address of `route` for `tenant`, its `pk` set to a real object of that tenant."""
    return route_address(
        route, merchant_slug=tenant.merchant.slug, object_pks=tenant.object_pks(), who="the matrix"
    )


def declared_permission(url: str) -> str:
    """Return the permission the view behind `url` declares; fail the test if it declares none."""
    view_class = getattr(resolve(url).func, "view_class", None)
    permission = getattr(view_class, "permission_required", None)
    if not permission:
        pytest.fail(f"The portal view behind {url} does not declare permission_required.")
    if permission not in ALL_MERCHANT_PERMISSIONS:
        pytest.fail(f"The view behind {url} declares {permission!r}, not a catalogue permission.")
    return permission


def answers_get(url: str) -> bool:
    view_class = resolve(url).func.view_class
    return "get" in view_class.http_method_names and hasattr(view_class, "get")


def database_state():
    """Return every row of the tenant data (secrets left out), to prove nothing changed."""
    state = {}
    for model in (Merchant, Credential, Membership, Role, Invitation):
        columns = [f.attname for f in model._meta.concrete_fields if f.name != "secret"]
        state[model.__name__] = list(model.objects.order_by("pk").values_list(*columns))
    state["role permissions"] = list(
        Role.permissions.through.objects.order_by("pk").values_list("role_id", "permission_id")
    )
    return state


def denial_audited(*, user, merchant, method: str, url: str) -> bool:
    return AuditEvent.objects.filter(
        action=AuditEvent.Action.ACCESS_DENIED,
        actor=user,
        merchant=merchant,
        target=f"{method} {url}",
    ).exists()


ROUTES = pytest.mark.parametrize("route", PORTAL_ROUTES, ids=str)
ROLES = pytest.mark.parametrize("role", [role.slug for role in DEFAULT_ROLES])


def test_portal_routes_are_read_from_the_url_configuration():
    names = {route.name for route in PORTAL_ROUTES}

    assert {"credentials:merchant", "credentials:submit", "teams:team", "teams:role_edit"} <= names
    assert "teams:invitation" not in names  # the invitation link is opened by its token alone


@ROUTES
@pytest.mark.django_db
def test_every_portal_view_declares_the_catalogue_permission_its_page_needs(route, tenants):
    url = address(route, tenants["own"])

    permission = declared_permission(url)

    if route.name not in PAGE_NEEDS:
        pytest.fail(f"{route}: add the permission this new page needs to PAGE_NEEDS.")
    assert permission == PAGE_NEEDS[route.name]


def test_a_view_without_a_declared_permission_fails_the_matrix(monkeypatch):
    from merchants.views import MerchantDetailView

    monkeypatch.setattr(MerchantDetailView, "permission_required", None)

    with pytest.raises(pytest.fail.Exception, match="does not declare permission_required"):
        declared_permission(reverse("credentials:merchant", kwargs={"slug": "any"}))


@ROUTES
@ROLES
def test_member_of_own_merchant_is_let_in_only_with_the_permission_the_page_declares(
    route, role, tenants, merchant, member_factory, client_for
):
    user = member_factory(merchant, role)
    client = client_for(user)
    url = address(route, tenants["own"])
    permission = declared_permission(url)
    method = "get" if answers_get(url) else "post"

    if permission in ROLE_PERMISSIONS[role]:
        response = getattr(client, method)(url)

        if method == "get":
            assert response.status_code == 200
        else:
            assert response.status_code not in (403, 404)
        assert not denial_audited(user=user, merchant=merchant, method=method.upper(), url=url)
    else:
        before = database_state()

        response = getattr(client, method)(url)
        posted = client.post(url)

        assert response.status_code == 403
        assert "You are not allowed to do this" in response.content.decode()
        assert posted.status_code == 403
        assert database_state() == before
        assert denial_audited(user=user, merchant=merchant, method=method.upper(), url=url)
        assert denial_audited(user=user, merchant=merchant, method="POST", url=url)


@ROUTES
@ROLES
def test_member_of_another_merchant_gets_404_whatever_their_role_and_it_is_audited(
    route, role, tenants, merchant, other_merchant, member_factory, client_for
):
    user = member_factory(merchant, role)
    client = client_for(user)
    url = address(route, tenants["other"])
    declared_permission(url)
    before = database_state()

    fetched = client.get(url)
    posted = client.post(url)

    assert fetched.status_code == 404
    assert posted.status_code == 404
    assert other_merchant.name not in fetched.content.decode()
    assert database_state() == before
    assert denial_audited(user=user, merchant=other_merchant, method="GET", url=url)
    assert denial_audited(user=user, merchant=other_merchant, method="POST", url=url)
    assert not AuditEvent.objects.filter(
        action=AuditEvent.Action.ACCESS_DENIED, merchant=merchant
    ).exists()


@pytest.mark.django_db
def test_a_denied_page_is_audited_with_who_where_and_why(merchant, member_factory, client_for):
    user = member_factory(merchant, "view-only")
    url = reverse("credentials:submit", kwargs={"slug": merchant.slug})

    client_for(user).get(url, REMOTE_ADDR="203.0.113.7")

    event = AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED)
    assert (event.actor, event.merchant, event.target) == (user, merchant, f"GET {url}")
    assert event.ip == "203.0.113.7"
    assert event.details == {"reason": "missing permission", "permission": SUBMIT_KEYS}


@pytest.mark.django_db
def test_a_page_of_another_merchant_is_audited_for_that_merchant_as_not_a_member(
    merchant, other_merchant, client_for
):
    outsider = UserFactory()
    MembershipFactory(user=outsider, merchant=merchant, role=default_role("owner"))
    url = reverse("credentials:merchant", kwargs={"slug": other_merchant.slug})

    client_for(outsider).get(url)

    event = AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED)
    assert (event.actor, event.merchant) == (outsider, other_merchant)
    assert event.details["reason"] == "not a member"
