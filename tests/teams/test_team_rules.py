"""The team rules, tried through the pages (as the acting member) and through the services.

Each refused attempt must say why and leave memberships, roles, invitations and users as they
were; each allowed case sits next to the refused one it mirrors.
"""

import re
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.test import TestCase

from audit.models import AuditEvent
from audit.refusals import Refused
from teams import services
from teams.models import Invitation, Membership, Role
from teams.permissions import (
    CATALOGUE,
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
from teams.rules import role_permission_names
from tests.factories import (
    CredentialFactory,
    MembershipFactory,
    RoleFactory,
    UserFactory,
    default_role,
    fake_key,
)
from tests.helpers import merchant_url, page_html, page_text, reload, stored_state

pytestmark = pytest.mark.django_db

SELF_CHANGE = "You cannot change your own role or remove yourself here; ask another manager."
ONLY_OWNER_MAKES_OWNER = "Only an Owner can make someone else an Owner."
ONLY_OWNER_CHANGES_OWNER = "Only an Owner can change or remove an Owner."
FOREIGN_ROLE_IN_FORM = "Choose one of the roles listed."
FOREIGN_ROLE_IN_SERVICE = "Choose a default role or one of this merchant's own custom roles."


# Helpers -------------------------------------------------------------------------------


def join(merchant, role, **user_fields) -> Membership:
    """Add a new user to `merchant` with `role` (a default role's slug or a Role)."""
    role = default_role(role) if isinstance(role, str) else role
    return MembershipFactory(user=UserFactory(**user_fields), merchant=merchant, role=role)


def invite(client, merchant, role, email="newcomer@example.test", extra=None):
    data = {"email": email, "role": role.pk, **(extra or {})}
    # The invitation mail goes out on commit, which the test transaction never reaches.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(merchant_url("teams:invite", merchant), data, follow=True)


def change_role(client, membership, role, extra=None):
    target = merchant_url("teams:member", membership.merchant, pk=membership.pk)
    return client.post(target, {"role": role.pk, **(extra or {})}, follow=True)


def remove(client, membership):
    target = merchant_url("teams:member_remove", membership.merchant, pk=membership.pk)
    return client.post(target, follow=True)


def role_form(name="Accountant", permissions=(VIEW_MERCHANT,), **extra) -> dict:
    return {"name": name, "description": "", "permissions": list(permissions), **extra}


def create_role(merchant, actor, name, permissions, description=""):
    return services.role_create(
        merchant=merchant,
        name=name,
        description=description,
        permissions=permissions,
        actor=actor,
    )


# Fixtures ------------------------------------------------------------------------------


@pytest.fixture
def owner_membership(owner, merchant):
    return Membership.objects.get(user=owner, merchant=merchant)


@pytest.fixture
def key_manager_role(merchant):
    """Invites and manages members, but holds no key permission."""
    return RoleFactory(
        merchant=merchant,
        name="Key manager",
        permissions=[INVITE_MEMBERS, MANAGE_MEMBER_ROLES, VIEW_TEAM, VIEW_MERCHANT],
    )


@pytest.fixture
def key_manager(merchant, key_manager_role):
    return join(merchant, key_manager_role, email="keys@demo.test").user


@pytest.fixture
def role_manager_role(merchant):
    """Manages custom roles, and holds nothing about keys."""
    return RoleFactory(
        merchant=merchant,
        name="Role manager",
        permissions=[MANAGE_CUSTOM_ROLES, VIEW_TEAM, VIEW_MERCHANT],
    )


@pytest.fixture
def role_manager(merchant, role_manager_role):
    return join(merchant, role_manager_role, email="roles@demo.test").user


@pytest.fixture
def administrator(merchant):
    return join(merchant, "administrator", email="admin@demo.test").user


@pytest.fixture
def view_only_member(merchant):
    return join(merchant, "view-only", email="viewer@demo.test")


@pytest.fixture
def developer_member(merchant):
    return join(merchant, "developer", email="dev@demo.test")


KEY_MANAGER_CANNOT_GIVE_ADMINISTRATOR = (
    "You cannot give the role “Administrator”: it includes permissions you do not hold "
    "(Edit merchant profile, View keys, Submit and roll keys, Revoke keys, Manage custom roles)."
)
KEY_MANAGER_CANNOT_GIVE_DEVELOPER = (
    "You cannot give the role “Developer”: it includes permissions you do not hold "
    "(View keys, Submit and roll keys)."
)


# Nobody grants a permission they do not hold -----------------------------------------------


def test_key_manager_invites_with_a_role_whose_permissions_they_hold(
    merchant, key_manager, client_for
):
    response = invite(client_for(key_manager), merchant, default_role("view-only"))

    # The mail goes out on commit, which a test transaction never reaches: the page says so.
    assert "newcomer@example.test" in page_text(response)
    assert Invitation.objects.get(merchant=merchant).role == default_role("view-only")


def test_key_manager_cannot_invite_as_administrator_through_the_page(
    merchant, key_manager, client_for
):
    before = stored_state()

    response = invite(client_for(key_manager), merchant, default_role("administrator"))

    assert response.status_code == 200
    assert KEY_MANAGER_CANNOT_GIVE_ADMINISTRATOR in page_text(response)
    assert stored_state() == before


def test_key_manager_cannot_invite_as_administrator_through_the_service(merchant, key_manager):
    before = stored_state()

    with pytest.raises(Refused) as refusal:
        services.invitation_create(
            merchant=merchant,
            email="newcomer@example.test",
            role=default_role("administrator"),
            actor=key_manager,
        )

    assert refusal.value.message == KEY_MANAGER_CANNOT_GIVE_ADMINISTRATOR
    assert stored_state() == before


def test_the_invite_page_offers_only_roles_the_actor_may_give(
    merchant, key_manager, key_manager_role, client_for
):
    response = client_for(key_manager).get(merchant_url("teams:invite", merchant))

    offered = {int(pk) for pk in re.findall(r'name="role" value="(\d+)"', page_html(response))}
    assert offered == {default_role("view-only").pk, key_manager_role.pk}


def test_key_manager_gives_a_view_only_member_a_role_whose_permissions_they_hold(
    key_manager, key_manager_role, view_only_member, client_for
):
    response = change_role(client_for(key_manager), view_only_member, key_manager_role)

    assert "viewer@demo.test is now Key manager." in page_text(response)
    view_only_member.refresh_from_db()
    assert view_only_member.role == key_manager_role


def test_key_manager_cannot_give_developer_through_the_page(
    key_manager, view_only_member, client_for
):
    before = stored_state()

    response = change_role(client_for(key_manager), view_only_member, default_role("developer"))

    assert response.status_code == 200
    assert KEY_MANAGER_CANNOT_GIVE_DEVELOPER in page_text(response)
    assert stored_state() == before


def test_key_manager_cannot_give_developer_through_the_service(key_manager, view_only_member):
    before = stored_state()

    with pytest.raises(Refused) as refusal:
        services.membership_change_role(
            membership=view_only_member, role=default_role("developer"), actor=key_manager
        )

    assert refusal.value.message == KEY_MANAGER_CANNOT_GIVE_DEVELOPER
    assert stored_state() == before


def test_key_manager_cannot_invite_with_a_custom_role_holding_a_permission_they_lack(
    merchant, owner, key_manager, client_for
):
    bookkeeper = RoleFactory(
        merchant=merchant, name="Bookkeeper", permissions=[VIEW_MERCHANT, VIEW_KEYS]
    )
    before = stored_state()

    response = invite(client_for(key_manager), merchant, bookkeeper)
    with pytest.raises(Refused, match="permissions you do not hold"):
        services.invitation_create(
            merchant=merchant, email="newcomer@example.test", role=bookkeeper, actor=key_manager
        )

    assert (
        "You cannot give the role “Bookkeeper”: it includes permissions you do not hold "
        "(View keys)." in page_text(response)
    )
    assert stored_state() == before


def test_owner_resends_an_owner_invitation(merchant, owner, client_for):
    invitation = services.invitation_create(
        merchant=merchant, email="co-owner@example.test", role=default_role("owner"), actor=owner
    )

    response = client_for(owner).post(
        merchant_url("teams:invitation_resend", merchant, pk=invitation.pk), follow=True
    )

    assert "Invitation sent again to co-owner@example.test" in page_text(response)


def test_administrator_cannot_resend_an_owner_invitation(
    merchant, owner, administrator, client_for
):
    invitation = services.invitation_create(
        merchant=merchant, email="co-owner@example.test", role=default_role("owner"), actor=owner
    )
    before = stored_state()

    response = client_for(administrator).post(
        merchant_url("teams:invitation_resend", merchant, pk=invitation.pk), follow=True
    )
    with pytest.raises(Refused, match=ONLY_OWNER_MAKES_OWNER):
        services.invitation_resend(invitation=invitation, actor=administrator)

    assert ONLY_OWNER_MAKES_OWNER in page_text(response)
    assert stored_state() == before


def test_owner_revokes_an_owner_invitation(merchant, owner, client_for):
    invitation = services.invitation_create(
        merchant=merchant, email="co-owner@example.test", role=default_role("owner"), actor=owner
    )

    response = client_for(owner).post(
        merchant_url("teams:invitation_revoke", merchant, pk=invitation.pk), follow=True
    )

    assert "Invitation to co-owner@example.test revoked." in page_text(response)
    assert reload(invitation).state == Invitation.State.REVOKED


def test_administrator_cannot_revoke_an_owner_invitation(
    merchant, owner, administrator, client_for
):
    invitation = services.invitation_create(
        merchant=merchant, email="co-owner@example.test", role=default_role("owner"), actor=owner
    )
    before = stored_state()

    response = client_for(administrator).post(
        merchant_url("teams:invitation_revoke", merchant, pk=invitation.pk), follow=True
    )
    with pytest.raises(Refused, match=ONLY_OWNER_MAKES_OWNER):
        services.invitation_revoke(invitation=invitation, actor=administrator)

    assert ONLY_OWNER_MAKES_OWNER in page_text(response)
    assert stored_state() == before
    assert reload(invitation).state == Invitation.State.PENDING


def test_key_manager_revokes_a_view_only_invitation_but_not_a_developer_one(
    merchant, owner, key_manager, client_for
):
    view_only = services.invitation_create(
        merchant=merchant, email="viewer@example.test", role=default_role("view-only"), actor=owner
    )
    developer = services.invitation_create(
        merchant=merchant, email="dev@example.test", role=default_role("developer"), actor=owner
    )
    client = client_for(key_manager)

    allowed = client.post(
        merchant_url("teams:invitation_revoke", merchant, pk=view_only.pk), follow=True
    )
    refused = client.post(
        merchant_url("teams:invitation_revoke", merchant, pk=developer.pk), follow=True
    )

    assert "Invitation to viewer@example.test revoked." in page_text(allowed)
    assert KEY_MANAGER_CANNOT_GIVE_DEVELOPER in page_text(refused)
    assert reload(view_only).state == Invitation.State.REVOKED
    assert reload(developer).state == Invitation.State.PENDING


def test_the_team_page_offers_resend_and_revoke_only_for_invitations_within_reach(
    merchant, owner, administrator, client_for
):
    owner_invitation = services.invitation_create(
        merchant=merchant, email="co-owner@example.test", role=default_role("owner"), actor=owner
    )
    support_invitation = services.invitation_create(
        merchant=merchant, email="support@example.test", role=default_role("support"), actor=owner
    )

    for_administrator = page_html(
        client_for(administrator).get(merchant_url("teams:team", merchant))
    )
    for_owner = page_html(client_for(owner).get(merchant_url("teams:team", merchant)))

    revoke = "teams:invitation_revoke"
    assert merchant_url(revoke, merchant, pk=owner_invitation.pk) not in for_administrator
    assert merchant_url(revoke, merchant, pk=support_invitation.pk) in for_administrator
    assert merchant_url(revoke, merchant, pk=owner_invitation.pk) in for_owner


# Nobody changes their own role --------------------------------------------------------------


def test_administrator_changes_another_members_role(administrator, view_only_member, client_for):
    response = change_role(client_for(administrator), view_only_member, default_role("support"))

    assert "viewer@demo.test is now Support." in page_text(response)
    view_only_member.refresh_from_db()
    assert view_only_member.role == default_role("support")


def test_administrator_cannot_change_their_own_role_through_the_page(
    merchant, administrator, client_for
):
    own = Membership.objects.get(user=administrator, merchant=merchant)
    client = client_for(administrator)
    before = stored_state()

    page = client.get(merchant_url("teams:member", merchant, pk=own.pk))
    response = change_role(client, own, default_role("developer"))

    assert SELF_CHANGE in page_text(page)
    assert "Save role" not in page_text(page)
    assert response.status_code == 200
    assert SELF_CHANGE in page_text(response)
    assert stored_state() == before


@pytest.mark.parametrize("role", ["owner", "developer", "administrator"])
def test_nobody_changes_their_own_role_through_the_service(merchant, administrator, role):
    own = Membership.objects.get(user=administrator, merchant=merchant)
    before = stored_state()

    with pytest.raises(Refused, match=SELF_CHANGE):
        services.membership_change_role(
            membership=own, role=default_role(role), actor=administrator
        )

    assert stored_state() == before


def test_owner_cannot_remove_themselves_through_the_member_pages(
    owner, owner_membership, client_for
):
    before = stored_state()

    response = remove(client_for(owner), owner_membership)
    with pytest.raises(Refused, match=SELF_CHANGE):
        services.membership_remove(membership=owner_membership, actor=owner)

    assert SELF_CHANGE in page_text(response)
    assert stored_state() == before


# Nobody edits or removes a member who holds a permission they lack ---------------------------


def test_key_manager_removes_a_view_only_member(key_manager, view_only_member, client_for):
    response = remove(client_for(key_manager), view_only_member)

    assert "viewer@demo.test was removed from Demo Coffee Co." in page_text(response)
    assert not Membership.objects.filter(pk=view_only_member.pk).exists()


DEVELOPER_OUT_OF_REACH = (
    "dev@demo.test holds permissions you do not (View keys, Submit and roll keys), so you "
    "cannot change their membership."
)


def test_key_manager_cannot_change_a_developers_role(
    merchant, key_manager, developer_member, client_for
):
    client = client_for(key_manager)
    before = stored_state()

    page = client.get(merchant_url("teams:member", merchant, pk=developer_member.pk))
    response = change_role(client, developer_member, default_role("view-only"))
    with pytest.raises(Refused) as refusal:
        services.membership_change_role(
            membership=developer_member, role=default_role("view-only"), actor=key_manager
        )

    assert DEVELOPER_OUT_OF_REACH in page_text(page)
    assert DEVELOPER_OUT_OF_REACH in page_text(response)
    assert refusal.value.message == DEVELOPER_OUT_OF_REACH
    assert stored_state() == before


def test_key_manager_cannot_remove_a_developer(merchant, key_manager, developer_member, client_for):
    client = client_for(key_manager)
    before = stored_state()

    page = client.get(merchant_url("teams:member_remove", merchant, pk=developer_member.pk))
    response = remove(client, developer_member)
    with pytest.raises(Refused) as refusal:
        services.membership_remove(membership=developer_member, actor=key_manager)

    assert DEVELOPER_OUT_OF_REACH in page_text(page)
    assert DEVELOPER_OUT_OF_REACH in page_text(response)
    assert refusal.value.message == DEVELOPER_OUT_OF_REACH
    assert stored_state() == before


def test_the_team_page_offers_to_manage_only_members_within_reach(
    merchant, key_manager, developer_member, view_only_member, client_for
):
    response = client_for(key_manager).get(merchant_url("teams:team", merchant))

    manageable = {m.user.email for m, can_manage in response.context["rows"] if can_manage}
    assert manageable == {"viewer@demo.test"}


# Only an Owner makes, changes or removes an Owner ---------------------------------------


def test_owner_invites_another_owner(merchant, owner, client_for):
    response = invite(client_for(owner), merchant, default_role("owner"))

    # The mail goes out on commit, which a test transaction never reaches: the page says so.
    assert "newcomer@example.test" in page_text(response)


def test_administrator_cannot_invite_as_owner(merchant, administrator, client_for):
    before = stored_state()

    response = invite(client_for(administrator), merchant, default_role("owner"))
    with pytest.raises(Refused, match=ONLY_OWNER_MAKES_OWNER):
        services.invitation_create(
            merchant=merchant,
            email="newcomer@example.test",
            role=default_role("owner"),
            actor=administrator,
        )

    assert response.status_code == 200
    assert ONLY_OWNER_MAKES_OWNER in page_text(response)
    assert stored_state() == before


def test_owner_promotes_a_member_to_owner(owner, view_only_member, client_for):
    response = change_role(client_for(owner), view_only_member, default_role("owner"))

    assert "viewer@demo.test is now Owner." in page_text(response)


def test_administrator_cannot_promote_a_member_to_owner(
    administrator, view_only_member, client_for
):
    before = stored_state()

    response = change_role(client_for(administrator), view_only_member, default_role("owner"))
    with pytest.raises(Refused, match=ONLY_OWNER_MAKES_OWNER):
        services.membership_change_role(
            membership=view_only_member, role=default_role("owner"), actor=administrator
        )

    assert response.status_code == 200
    assert ONLY_OWNER_MAKES_OWNER in page_text(response)
    assert stored_state() == before


def test_administrator_cannot_demote_an_owner(
    merchant, administrator, owner_membership, client_for
):
    client = client_for(administrator)
    before = stored_state()

    page = client.get(merchant_url("teams:member", merchant, pk=owner_membership.pk))
    response = change_role(client, owner_membership, default_role("administrator"))
    with pytest.raises(Refused, match=ONLY_OWNER_CHANGES_OWNER):
        services.membership_change_role(
            membership=owner_membership, role=default_role("view-only"), actor=administrator
        )

    assert ONLY_OWNER_CHANGES_OWNER in page_text(page)
    assert ONLY_OWNER_CHANGES_OWNER in page_text(response)
    assert stored_state() == before


def test_administrator_cannot_remove_an_owner(administrator, owner_membership, client_for):
    before = stored_state()

    response = remove(client_for(administrator), owner_membership)
    with pytest.raises(Refused, match=ONLY_OWNER_CHANGES_OWNER):
        services.membership_remove(membership=owner_membership, actor=administrator)

    assert ONLY_OWNER_CHANGES_OWNER in page_text(response)
    assert stored_state() == before


# The last Owner stays -------------------------------------------------------------------

LAST_OWNER_LEAVES = (
    "owner@demo.test is the last Owner of Demo Coffee Co and cannot leave: make someone else "
    "an Owner first."
)


def test_the_last_owner_cannot_leave_through_the_page(merchant, owner, client_for):
    before = stored_state()

    response = client_for(owner).post(merchant_url("teams:leave", merchant), follow=True)

    assert LAST_OWNER_LEAVES in page_text(response)
    assert stored_state() == before


def test_the_last_owner_cannot_leave_through_the_service(owner, owner_membership):
    before = stored_state()

    with pytest.raises(Refused) as refusal:
        services.membership_leave(membership=owner_membership, actor=owner)

    assert refusal.value.message == LAST_OWNER_LEAVES
    assert stored_state() == before


def test_one_of_two_owners_may_leave(merchant, owner, client_for):
    join(merchant, "owner", email="co-owner@demo.test")

    response = client_for(owner).post(merchant_url("teams:leave", merchant), follow=True)

    assert "You left Demo Coffee Co." in page_text(response)
    assert not Membership.objects.filter(user=owner, merchant=merchant).exists()


LAST_OWNER_ACTORS = pytest.mark.parametrize(
    ("actor", "message"),
    [("owner", SELF_CHANGE), ("administrator", ONLY_OWNER_CHANGES_OWNER)],
)


@LAST_OWNER_ACTORS
def test_the_last_owner_cannot_be_demoted_by_themselves_or_an_administrator(
    owner, owner_membership, administrator, client_for, actor, message
):
    acting = {"owner": owner, "administrator": administrator}[actor]
    before = stored_state()

    response = change_role(client_for(acting), owner_membership, default_role("administrator"))
    with pytest.raises(Refused) as refusal:
        services.membership_change_role(
            membership=owner_membership, role=default_role("view-only"), actor=reload(acting)
        )

    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


@LAST_OWNER_ACTORS
def test_the_last_owner_cannot_be_removed_by_themselves_or_an_administrator(
    owner, owner_membership, administrator, client_for, actor, message
):
    acting = {"owner": owner, "administrator": administrator}[actor]
    before = stored_state()

    response = remove(client_for(acting), owner_membership)
    with pytest.raises(Refused) as refusal:
        services.membership_remove(membership=owner_membership, actor=reload(acting))

    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


def test_an_owner_removed_while_their_request_runs_cannot_then_remove_the_last_owner(
    merchant, owner, owner_membership
):
    co_owner = join(merchant, "owner", email="co-owner@demo.test")
    # A request of the co-owner that already passed the page's permission check.
    in_flight = reload(co_owner.user)
    assert in_flight.has_perm(MANAGE_MEMBER_ROLES, merchant)
    services.membership_remove(membership=co_owner, actor=owner)
    before = stored_state()

    with pytest.raises(Refused, match=ONLY_OWNER_CHANGES_OWNER):
        services.membership_remove(membership=owner_membership, actor=in_flight)

    assert stored_state() == before


def test_with_two_owners_one_demotes_the_other_who_then_cannot_demote_back(
    merchant, owner, owner_membership, client_for
):
    co_owner = join(merchant, "owner", email="co-owner@demo.test")

    response = change_role(client_for(owner), co_owner, default_role("administrator"))
    co_owner.refresh_from_db()
    before = stored_state()
    refused = change_role(client_for(co_owner.user), owner_membership, default_role("view-only"))

    assert "co-owner@demo.test is now Administrator." in page_text(response)
    assert co_owner.role == default_role("administrator")
    assert ONLY_OWNER_CHANGES_OWNER in page_text(refused)
    assert stored_state() == before


def test_with_two_owners_one_removes_the_other_and_is_then_the_last(
    merchant, owner, owner_membership
):
    co_owner = join(merchant, "owner", email="co-owner@demo.test")

    services.membership_remove(membership=co_owner, actor=owner)

    with pytest.raises(Refused, match="last Owner"):
        services.membership_leave(membership=owner_membership, actor=owner)
    assert Membership.objects.get(merchant=merchant).user == owner


def test_an_owner_of_another_merchant_cannot_touch_this_merchants_owner(
    owner_membership, other_owner
):
    before = stored_state()

    with pytest.raises(Refused, match="does not allow this"):
        services.membership_remove(membership=owner_membership, actor=other_owner)
    with pytest.raises(Refused, match="does not allow this"):
        services.membership_change_role(
            membership=owner_membership, role=default_role("view-only"), actor=other_owner
        )

    assert stored_state() == before


# A custom role grants exactly its permissions ------------------------------------------------

SUBSETS = {
    "key viewer": frozenset({VIEW_MERCHANT, VIEW_KEYS}),
    "role editor": frozenset({VIEW_MERCHANT, VIEW_TEAM, MANAGE_CUSTOM_ROLES}),
    "profile editor": frozenset({VIEW_MERCHANT, EDIT_MERCHANT_PROFILE}),
}


@pytest.mark.parametrize("subset", SUBSETS, ids=str)
@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda entry: entry.perm)
def test_a_custom_role_grants_each_catalogue_permission_only_if_it_includes_it(
    merchant, owner, subset, entry
):
    role = create_role(merchant, owner, subset.title(), SUBSETS[subset])
    user = join(merchant, role).user

    assert reload(user).has_perm(entry.perm, merchant) is (entry.perm in SUBSETS[subset])


PAGES_FOR_KEY_VIEWER = [
    ("credentials:merchant", 200),
    ("credentials:detail", 200),
    ("credentials:submit", 403),
    ("merchants:profile", 403),
    ("teams:team", 403),
    ("teams:roles", 403),
    ("teams:invite", 403),
    ("teams:audit", 403),
]


@pytest.mark.parametrize(("page", "status"), PAGES_FOR_KEY_VIEWER)
def test_pages_follow_the_permissions_of_a_custom_role(merchant, owner, client_for, page, status):
    role = RoleFactory(merchant=merchant, name="Key viewer", permissions=SUBSETS["key viewer"])
    user = join(merchant, role).user
    credential = CredentialFactory(merchant=merchant, submitted_by=owner)
    kwargs = {"pk": credential.pk} if page == "credentials:detail" else {}

    response = client_for(user).get(merchant_url(page, merchant, **kwargs))

    assert response.status_code == status


# A change takes effect on the next request ---------------------------------------------------


def test_a_demotion_closes_the_page_on_the_very_next_request(
    merchant, owner, developer_member, client_for
):
    client = client_for(developer_member.user)
    submit = merchant_url("credentials:submit", merchant)
    assert client.get(submit).status_code == 200

    services.membership_change_role(
        membership=developer_member, role=default_role("support"), actor=owner
    )

    assert client.get(submit).status_code == 403


def test_a_promotion_opens_the_page_on_the_very_next_request(merchant, owner, client_for):
    support = join(merchant, "support")
    client = client_for(support.user)
    submit = merchant_url("credentials:submit", merchant)
    assert client.get(submit).status_code == 403

    services.membership_change_role(membership=support, role=default_role("developer"), actor=owner)

    assert client.get(submit).status_code == 200


def test_editing_a_custom_role_changes_its_members_pages_on_the_next_request(
    merchant, owner, client_for
):
    role = RoleFactory(
        merchant=merchant, name="Key sender", permissions=[VIEW_MERCHANT, SUBMIT_KEYS]
    )
    client = client_for(join(merchant, role).user)
    submit = merchant_url("credentials:submit", merchant)
    assert client.get(submit).status_code == 200

    services.role_update(
        role=role, name="Key sender", description="", permissions=[VIEW_MERCHANT], actor=owner
    )

    assert client.get(submit).status_code == 403
    assert client.get(merchant_url("credentials:merchant", merchant)).status_code == 200


def test_a_removed_member_gets_404_on_the_next_request(
    merchant, owner, developer_member, client_for
):
    client = client_for(developer_member.user)
    assert client.get(merchant_url("credentials:merchant", merchant)).status_code == 200

    services.membership_remove(membership=developer_member, actor=owner)

    assert client.get(merchant_url("credentials:merchant", merchant)).status_code == 404


# Custom role rules ----------------------------------------------------------------------


def test_a_custom_role_name_of_64_characters_is_accepted(merchant, owner, client_for):
    name = "R" * 64

    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant), role_form(name=name), follow=True
    )

    assert f"Role “{name}” created." in page_text(response)
    assert Role.objects.filter(merchant=merchant, name=name).exists()


def test_a_custom_role_name_of_65_characters_is_refused(merchant, owner, client_for):
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant), role_form(name="R" * 65)
    )
    with pytest.raises(Refused) as refusal:
        create_role(merchant, owner, "R" * 65, [VIEW_MERCHANT])

    assert "Keep the name to 64 characters (it has 65)." in page_text(response)
    assert refusal.value.message == "Keep the name to 64 characters (it has 65)."
    assert stored_state() == before


def test_a_custom_role_name_used_by_another_merchant_is_accepted(
    merchant, owner, other_merchant, other_owner, client_for
):
    RoleFactory(merchant=other_merchant, name="Accountant", permissions=[VIEW_MERCHANT])

    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant), role_form(name="accountant"), follow=True
    )

    assert "Role “accountant” created." in page_text(response)


def test_a_custom_role_name_taken_in_the_merchant_in_other_capitals_is_refused(
    merchant, owner, client_for
):
    RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT])
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant), role_form(name="accountant")
    )
    with pytest.raises(Refused) as refusal:
        create_role(merchant, owner, "ACCOUNTANT", [VIEW_MERCHANT])

    assert "Demo Coffee Co already has a role called “accountant”." in page_text(response)
    assert refusal.value.message == "Demo Coffee Co already has a role called “ACCOUNTANT”."
    assert stored_state() == before


def test_renaming_a_custom_role_onto_another_ones_name_is_refused(merchant, owner, client_for):
    RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT])
    auditor = RoleFactory(merchant=merchant, name="Auditor", permissions=[VIEW_MERCHANT])
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_edit", merchant, pk=auditor.pk), role_form(name="accountant")
    )

    assert "Demo Coffee Co already has a role called “accountant”." in page_text(response)
    assert stored_state() == before


@pytest.mark.parametrize("name", ["owner", "VIEW ONLY", "Administrator"])
def test_a_custom_role_cannot_take_a_default_roles_name(merchant, owner, client_for, name):
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant), role_form(name=name)
    )
    with pytest.raises(Refused) as refusal:
        create_role(merchant, owner, name, [VIEW_MERCHANT])

    message = f"“{name}” is the name of a default role; choose another name for a custom role."
    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


def test_a_custom_role_without_permissions_is_refused(merchant, owner, client_for):
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant), role_form(permissions=())
    )
    with pytest.raises(Refused) as refusal:
        create_role(merchant, owner, "Accountant", [])

    message = "Choose at least one permission: a role without any would open nothing."
    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


@pytest.mark.parametrize("perm", ["auth.add_user", "credentials.view_credential", "bogus"])
def test_a_custom_role_takes_only_catalogue_permissions(merchant, owner, client_for, perm):
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant), role_form(permissions=[VIEW_MERCHANT, perm])
    )
    with pytest.raises(Refused) as refusal:
        create_role(merchant, owner, "Accountant", [VIEW_MERCHANT, perm])

    assert "Choose permissions from the list." in page_text(response)
    assert refusal.value.message == "Choose permissions from the list."
    assert stored_state() == before


def test_role_manager_creates_a_role_with_permissions_they_hold(merchant, role_manager, client_for):
    response = client_for(role_manager).post(
        merchant_url("teams:role_create", merchant),
        role_form(name="Team viewer", permissions=[VIEW_MERCHANT, VIEW_TEAM]),
        follow=True,
    )

    assert "Role “Team viewer” created." in page_text(response)
    role = Role.objects.get(merchant=merchant, name="Team viewer")
    assert role_permission_names(role) == {VIEW_MERCHANT, VIEW_TEAM}


def test_role_manager_cannot_create_a_role_with_a_permission_they_lack(
    merchant, role_manager, client_for
):
    before = stored_state()

    response = client_for(role_manager).post(
        merchant_url("teams:role_create", merchant),
        role_form(name="Key sender", permissions=[VIEW_MERCHANT, SUBMIT_KEYS]),
    )
    with pytest.raises(Refused) as refusal:
        create_role(merchant, role_manager, "Key sender", [VIEW_MERCHANT, SUBMIT_KEYS])

    message = "You cannot give a role permissions you do not hold (Submit and roll keys)."
    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


def test_role_manager_cannot_add_a_permission_they_lack_to_an_existing_role(
    merchant, owner, role_manager, client_for
):
    viewer = RoleFactory(
        merchant=merchant, name="Team viewer", permissions=[VIEW_MERCHANT, VIEW_TEAM]
    )
    before = stored_state()

    response = client_for(role_manager).post(
        merchant_url("teams:role_edit", merchant, pk=viewer.pk),
        role_form(name="Team viewer", permissions=[VIEW_MERCHANT, VIEW_TEAM, REVOKE_KEYS]),
    )

    assert "You cannot give a role permissions you do not hold (Revoke keys)." in page_text(
        response
    )
    assert stored_state() == before


def test_role_manager_edits_a_role_they_do_not_hold(merchant, owner, role_manager, client_for):
    viewer = RoleFactory(
        merchant=merchant, name="Team viewer", permissions=[VIEW_MERCHANT, VIEW_TEAM]
    )

    response = client_for(role_manager).post(
        merchant_url("teams:role_edit", merchant, pk=viewer.pk),
        role_form(name="Team reader", permissions=[VIEW_MERCHANT]),
        follow=True,
    )

    assert "Role “Team reader” saved" in page_text(response)
    viewer.refresh_from_db()
    assert (viewer.name, role_permission_names(viewer)) == ("Team reader", {VIEW_MERCHANT})


def test_role_manager_cannot_edit_the_role_they_hold(
    merchant, role_manager, role_manager_role, client_for
):
    before = stored_state()

    response = client_for(role_manager).post(
        merchant_url("teams:role_edit", merchant, pk=role_manager_role.pk),
        role_form(name="Role manager", permissions=[VIEW_MERCHANT, VIEW_TEAM]),
    )
    with pytest.raises(Refused) as refusal:
        services.role_update(
            role=role_manager_role,
            name="Role manager",
            description="",
            permissions=[VIEW_MERCHANT, MANAGE_CUSTOM_ROLES, VIEW_TEAM],
            actor=reload(role_manager),
        )

    message = "You hold this role, so you cannot change it; ask another manager."
    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


def test_role_manager_cannot_edit_a_role_that_includes_a_permission_they_lack(
    merchant, owner, role_manager, client_for
):
    bookkeeper = RoleFactory(
        merchant=merchant, name="Bookkeeper", permissions=[VIEW_MERCHANT, VIEW_KEYS]
    )
    before = stored_state()

    response = client_for(role_manager).post(
        merchant_url("teams:role_edit", merchant, pk=bookkeeper.pk),
        role_form(name="Bookkeeper", permissions=[VIEW_MERCHANT]),
    )

    message = "This role includes permissions you do not hold (View keys), so you cannot change it."
    assert message in page_text(response)
    assert stored_state() == before


def test_an_unused_custom_role_is_deleted(merchant, owner, client_for):
    role = RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT])

    response = client_for(owner).post(
        merchant_url("teams:role_delete", merchant, pk=role.pk), follow=True
    )

    assert "Role “Accountant” deleted." in page_text(response)
    assert not Role.objects.filter(pk=role.pk).exists()


def test_a_custom_role_in_use_is_not_deleted_and_the_page_names_its_members(
    merchant, owner, client_for
):
    role = RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT])
    join(merchant, role, email="zoe@demo.test")
    join(merchant, role, email="adam@demo.test")
    client = client_for(owner)
    before = stored_state()

    page = client.get(merchant_url("teams:role_delete", merchant, pk=role.pk))
    response = client.post(merchant_url("teams:role_delete", merchant, pk=role.pk), follow=True)
    with pytest.raises(Refused) as refusal:
        services.role_delete(role=role, actor=owner)

    message = (
        "“Accountant” is still held by adam@demo.test, zoe@demo.test. Give them another role first."
    )
    assert "adam@demo.test" in page_text(page)
    assert "zoe@demo.test" in page_text(page)
    assert "Delete role" not in page_text(page)
    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


def test_a_custom_role_offered_by_an_open_invitation_is_not_deleted(merchant, owner, client_for):
    role = RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT])
    services.invitation_create(
        merchant=merchant, email="newcomer@example.test", role=role, actor=owner
    )
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_delete", merchant, pk=role.pk), follow=True
    )

    assert "Open invitations offer “Accountant”. Revoke them first." in page_text(response)
    assert stored_state() == before


def test_role_manager_deletes_an_unused_role_within_their_permissions(
    merchant, role_manager, client_for
):
    role = RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT])

    response = client_for(role_manager).post(
        merchant_url("teams:role_delete", merchant, pk=role.pk), follow=True
    )

    assert "Role “Accountant” deleted." in page_text(response)
    assert not Role.objects.filter(pk=role.pk).exists()


def test_role_manager_cannot_delete_a_role_that_includes_a_permission_they_lack(
    merchant, role_manager, client_for
):
    role = RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT, VIEW_KEYS])
    before = stored_state()

    response = client_for(role_manager).post(
        merchant_url("teams:role_delete", merchant, pk=role.pk), follow=True
    )
    with pytest.raises(Refused) as refusal:
        services.role_delete(role=role, actor=role_manager)

    message = "This role includes permissions you do not hold (View keys), so you cannot change it."
    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


def test_role_manager_cannot_delete_the_role_they_hold(merchant, role_manager, role_manager_role):
    before = stored_state()

    with pytest.raises(Refused, match="You hold this role, so you cannot change it"):
        services.role_delete(role=role_manager_role, actor=role_manager)

    assert stored_state() == before


@pytest.mark.parametrize("role", [role.slug for role in DEFAULT_ROLES])
@pytest.mark.parametrize("page", ["teams:role_edit", "teams:role_delete"])
def test_default_roles_have_no_edit_or_delete_page(merchant, owner, client_for, role, page):
    client = client_for(owner)
    address = merchant_url(page, merchant, pk=default_role(role).pk)
    before = stored_state()

    fetched = client.get(address)
    posted = client.post(address, role_form(name="Renamed", permissions=[VIEW_MERCHANT]))

    assert fetched.status_code == posted.status_code == 404
    assert stored_state() == before


@pytest.mark.parametrize("role", [role.slug for role in DEFAULT_ROLES])
def test_default_roles_cannot_be_changed_or_deleted_through_the_services(owner, role):
    default = default_role(role)
    before = stored_state()

    with pytest.raises(Refused, match="Default roles cannot be changed"):
        services.role_update(
            role=default, name="Renamed", description="", permissions=[VIEW_MERCHANT], actor=owner
        )
    with pytest.raises(Refused, match="Default roles cannot be deleted"):
        services.role_delete(role=default, actor=owner)

    assert stored_state() == before


def test_the_custom_role_of_another_merchant_has_no_edit_page_here(
    merchant, owner, other_merchant, other_owner, client_for
):
    foreign = RoleFactory(merchant=other_merchant, name="Accountant", permissions=[VIEW_MERCHANT])
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_edit", merchant, pk=foreign.pk), role_form(name="Mine now")
    )

    assert response.status_code == 404
    assert stored_state() == before


# Form fields decide nothing they should not (mass assignment) --------------------------------


def test_inviting_with_extra_fields_creates_the_invitation_for_this_merchant_only(
    merchant, owner, other_merchant, other_owner, client_for
):
    response = invite(
        client_for(owner),
        merchant,
        default_role("support"),
        extra={
            "merchant": other_merchant.pk,
            "merchant_id": other_merchant.pk,
            "invited_by": other_owner.pk,
            "expires_at": "2099-01-01T00:00:00Z",
            "accepted_at": "2020-01-01T00:00:00Z",
            "token_hash": "0" * 64,
        },
    )

    # The mail goes out on commit, which a test transaction never reaches: the page says so.
    assert "newcomer@example.test" in page_text(response)
    invitation = Invitation.objects.get()
    assert invitation.merchant == merchant
    assert invitation.invited_by == owner
    assert invitation.accepted_at is None
    assert invitation.token_hash != "0" * 64
    assert (invitation.expires_at - invitation.created_at).days == 10


def test_inviting_with_another_merchants_role_is_refused(
    merchant, owner, other_merchant, other_owner, client_for
):
    foreign = RoleFactory(merchant=other_merchant, name="Accountant", permissions=[VIEW_MERCHANT])
    before = stored_state()

    response = invite(client_for(owner), merchant, foreign)
    with pytest.raises(Refused) as refusal:
        services.invitation_create(
            merchant=merchant, email="newcomer@example.test", role=foreign, actor=owner
        )

    assert response.status_code == 200
    assert FOREIGN_ROLE_IN_FORM in page_text(response)
    assert refusal.value.message == FOREIGN_ROLE_IN_SERVICE
    assert stored_state() == before


def test_changing_a_role_with_extra_fields_changes_the_role_only(
    merchant, owner, other_merchant, other_owner, view_only_member, client_for
):
    target = view_only_member.user
    before = stored_state()

    response = change_role(
        client_for(owner),
        view_only_member,
        default_role("support"),
        extra={
            "user": other_owner.pk,
            "user_id": other_owner.pk,
            "merchant": other_merchant.pk,
            "merchant_id": other_merchant.pk,
            "is_staff": "on",
            "is_superuser": "on",
            "permissions": [SUBMIT_KEYS, REVOKE_KEYS],
            "joined_at": "2000-01-01T00:00:00Z",
        },
    )

    assert "viewer@demo.test is now Support." in page_text(response)
    after = stored_state()
    changed = Membership.objects.get(pk=view_only_member.pk)
    assert (changed.user, changed.merchant, changed.role) == (
        target,
        merchant,
        default_role("support"),
    )
    assert changed.joined_at == view_only_member.joined_at
    assert after["users"] == before["users"]
    assert after["roles"] == before["roles"]
    assert after["invitations"] == before["invitations"]
    assert [row for row in after["memberships"] if row[0] != changed.pk] == [
        row for row in before["memberships"] if row[0] != changed.pk
    ]
    assert not reload(target).has_perm(SUBMIT_KEYS, merchant)


def test_changing_a_role_to_another_merchants_role_is_refused(
    merchant, owner, other_merchant, other_owner, view_only_member, client_for
):
    foreign = RoleFactory(merchant=other_merchant, name="Accountant", permissions=[VIEW_MERCHANT])
    before = stored_state()

    response = change_role(client_for(owner), view_only_member, foreign)
    with pytest.raises(Refused) as refusal:
        services.membership_change_role(membership=view_only_member, role=foreign, actor=owner)

    assert response.status_code == 200
    assert FOREIGN_ROLE_IN_FORM in page_text(response)
    assert refusal.value.message == FOREIGN_ROLE_IN_SERVICE
    assert stored_state() == before


def test_creating_a_role_with_extra_fields_creates_a_custom_role_of_this_merchant(
    merchant, owner, other_merchant, client_for
):
    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant),
        role_form(merchant=other_merchant.pk, merchant_id=other_merchant.pk, slug="owner"),
        follow=True,
    )

    assert "Role “Accountant” created." in page_text(response)
    role = Role.objects.get(name="Accountant")
    assert (role.merchant, role.slug, role.is_default) == (merchant, "", False)
    assert not Role.objects.filter(merchant=other_merchant).exists()


def test_editing_a_role_with_a_merchant_field_keeps_it_in_its_merchant(
    merchant, owner, other_merchant, client_for
):
    role = RoleFactory(merchant=merchant, name="Accountant", permissions=[VIEW_MERCHANT])

    client_for(owner).post(
        merchant_url("teams:role_edit", merchant, pk=role.pk),
        role_form(name="Bookkeeper", merchant=other_merchant.pk, slug="owner"),
    )

    role.refresh_from_db()
    assert (role.name, role.merchant, role.slug) == ("Bookkeeper", merchant, "")


def test_a_custom_role_without_view_merchant_is_refused_with_the_reason(merchant, owner):
    with pytest.raises(Refused) as refusal:
        services.role_create(
            merchant=merchant,
            name="Profile only",
            description="",
            permissions=[EDIT_MERCHANT_PROFILE],
            actor=owner,
        )

    assert "Include “View merchant”" in refusal.value.message
    assert not Role.objects.filter(merchant=merchant).exists()


def test_a_refused_escalation_through_a_page_is_written_to_the_audit_trail(
    merchant, owner, member_factory, client_for
):
    admin = member_factory(merchant, "administrator")

    response = invite(client_for(admin), merchant, default_role("owner"))

    assert "Only an Owner can make someone else an Owner." in page_text(response)
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACTION_REFUSED)
    assert event.actor == admin
    assert event.merchant == merchant
    assert event.details == {"reason": "Only an Owner can make someone else an Owner."}


def test_a_refusal_by_a_service_is_audited_once_whether_a_page_or_code_made_it(
    merchant, owner, client_for
):
    membership = Membership.objects.get(user=owner, merchant=merchant)

    client_for(owner).post(merchant_url("teams:leave", merchant), follow=True)
    with pytest.raises(Refused):
        services.membership_leave(membership=membership, actor=owner)

    events = AuditEvent.objects.filter(action=AuditEvent.Action.ACTION_REFUSED).order_by("pk")
    assert [(event.actor, event.merchant, event.target) for event in events] == [
        (owner, merchant, "POST teams:leave"),
        (owner, merchant, "membership_leave"),
    ]
    assert all("last Owner" in event.details["reason"] for event in events)
    assert Membership.objects.filter(user=owner, merchant=merchant).exists()


# Keys are submitted and reported from pages that need "View keys" (issue 14, item 2) ----


@pytest.mark.parametrize(
    ("perms", "named"),
    [
        ([VIEW_MERCHANT, SUBMIT_KEYS], "“Submit and roll keys”"),
        ([VIEW_MERCHANT, REVOKE_KEYS], "“Revoke keys”"),
        ([VIEW_MERCHANT, SUBMIT_KEYS, REVOKE_KEYS], "“Submit and roll keys” and “Revoke keys”"),
    ],
)
def test_a_role_that_submits_or_revokes_keys_without_viewing_them_is_refused(
    merchant, owner, client_for, perms, named
):
    before = stored_state()

    response = client_for(owner).post(
        merchant_url("teams:role_create", merchant), role_form(name="Key sender", permissions=perms)
    )
    with pytest.raises(Refused) as refusal:
        create_role(merchant, owner, "Key sender", perms)

    message = (
        f"Include “View keys” with {named}: a member who submits a key is sent to its page "
        "to follow its verification, and keys are reported from that list."
    )
    assert message in page_text(response)
    assert refusal.value.message == message
    assert stored_state() == before


def test_a_role_that_submits_and_views_keys_is_created(merchant, owner):
    role = create_role(merchant, owner, "Key sender", [VIEW_MERCHANT, VIEW_KEYS, SUBMIT_KEYS])

    assert role_permission_names(role) == {VIEW_MERCHANT, VIEW_KEYS, SUBMIT_KEYS}


def test_view_keys_cannot_be_taken_from_a_role_that_submits_keys(merchant, owner):
    role = RoleFactory(
        merchant=merchant, name="Key sender", permissions=[VIEW_MERCHANT, VIEW_KEYS, SUBMIT_KEYS]
    )

    with pytest.raises(Refused, match="Include “View keys” with “Submit and roll keys”"):
        services.role_update(
            role=role,
            name="Key sender",
            description="",
            permissions=[VIEW_MERCHANT, SUBMIT_KEYS],
            actor=owner,
        )

    assert role_permission_names(reload(role)) == {VIEW_MERCHANT, VIEW_KEYS, SUBMIT_KEYS}


def test_the_role_form_says_submitting_and_revoking_come_with_view_keys(merchant, owner_client):
    text = page_text(owner_client.get(merchant_url("teams:role_create", merchant)))

    assert (
        "Send new provider keys (Stripe, Kashier), including replacements. Comes with “View keys”."
        in text
    )
    assert "Comes with “View keys”." in text.split("Revoke keys", 1)[1]


def test_a_member_of_a_key_sending_role_opens_the_page_of_the_key_they_submitted(
    merchant, owner, client_for, fake_stripe
):
    role = create_role(merchant, owner, "Key sender", [VIEW_MERCHANT, VIEW_KEYS, SUBMIT_KEYS])
    client = client_for(join(merchant, role).user)

    response = client.post(
        merchant_url("credentials:submit", merchant),
        {
            "publishable_key": fake_key("pk_test_"),
            "secret_key": fake_key("sk_test_"),
            "requested_integrations": ["online_payments"],
            "note": "",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert "Keys received" in page_text(response)


def test_the_migration_gives_view_keys_to_old_custom_roles_that_submit_or_revoke(
    merchant, other_merchant
):
    submitter = RoleFactory(merchant=merchant, permissions=[VIEW_MERCHANT, SUBMIT_KEYS])
    reporter = RoleFactory(merchant=other_merchant, permissions=[VIEW_MERCHANT, REVOKE_KEYS])
    bystander = RoleFactory(merchant=merchant, permissions=[VIEW_MERCHANT, VIEW_TEAM])
    migration = import_module("credentials.migrations.0007_key_roles_view_keys")

    migration.give_key_roles_view_keys(django_apps, None)

    assert role_permission_names(submitter) == {VIEW_MERCHANT, SUBMIT_KEYS, VIEW_KEYS}
    assert role_permission_names(reporter) == {VIEW_MERCHANT, REVOKE_KEYS, VIEW_KEYS}
    assert role_permission_names(bystander) == {VIEW_MERCHANT, VIEW_TEAM}
    assert role_permission_names(default_role("view-only")) == {VIEW_MERCHANT}
