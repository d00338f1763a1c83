"""The admin is no second writer: what staff change goes through the services (rules and
audit), and what has team rules is read-only there."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from audit.refusals import Refused
from merchants.models import Merchant
from teams.models import Membership, Role, User
from teams.services.users import user_save_by_staff
from tests.factories import UserFactory, default_role
from tests.helpers import verify_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root@keyhouse.test", "correct horse battery")


@pytest.fixture
def superuser_client(client, superuser):
    verify_session(client, superuser)
    return client


def test_a_superuser_cannot_demote_the_last_owner_through_the_membership_admin(
    superuser_client, owner, merchant
):
    membership = Membership.objects.get(user=owner, merchant=merchant)
    url = reverse("admin:teams_membership_change", args=[membership.pk])

    response = superuser_client.post(
        url,
        {
            "user": owner.pk,
            "merchant": merchant.pk,
            "role": default_role("view-only").pk,
            "joined_at_0": "2026-01-01",
            "joined_at_1": "00:00:00",
        },
    )

    assert response.status_code == 403
    assert Membership.objects.get(pk=membership.pk).role.slug == "owner"


def test_the_membership_admin_shows_members_to_the_helpdesk(helpdesk_user, client, owner):
    verify_session(client, helpdesk_user)

    response = client.get(reverse("admin:teams_membership_changelist"))

    assert response.status_code == 200
    assert owner.email in response.content.decode()


def test_the_merchant_page_in_the_admin_cannot_change_or_remove_members(
    superuser_client, owner, merchant
):
    membership = Membership.objects.get(user=owner, merchant=merchant)
    url = reverse("admin:merchants_merchant_change", args=[merchant.pk])

    superuser_client.post(
        url,
        {
            "name": merchant.name,
            "contact_email": merchant.contact_email,
            "country": merchant.country,
            "requested_integrations": [],  # no box ticked
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": membership.pk,
            "memberships-0-merchant": merchant.pk,
            "memberships-0-role": default_role("view-only").pk,
            "memberships-0-DELETE": "on",
        },
    )

    assert Membership.objects.get(pk=membership.pk).role.slug == "owner"


@pytest.mark.parametrize("view", ["add", "change", "delete"])
def test_roles_are_read_only_in_the_admin_even_for_a_superuser(superuser_client, merchant, view):
    role = Role.objects.create(merchant=merchant, name="Auditor")
    args = [] if view == "add" else [role.pk]

    response = superuser_client.post(
        reverse(f"admin:teams_role_{view}", args=args), {"name": "Renamed", "post": "yes"}
    )

    assert response.status_code == 403
    assert Role.objects.get(pk=role.pk).name == "Auditor"


def test_a_merchant_created_in_the_admin_gets_its_owner_and_an_audit_event(superuser_client):
    owner = UserFactory(email="new-owner@example.test")

    response = superuser_client.post(
        reverse("admin:merchants_merchant_add"),
        {
            "name": "Corner Shop",
            "slug": "corner-shop",
            "owner": owner.pk,
            "contact_email": "shop@example.test",
            "country": "GB",
            "requested_integrations": [],  # no box ticked
        },
    )

    assert response.status_code == 302, _errors(response)
    merchant = Merchant.objects.get(slug="corner-shop")
    assert Membership.objects.get(merchant=merchant).user == owner
    assert Membership.objects.get(merchant=merchant).role.slug == "owner"
    event = AuditEvent.objects.get(action=AuditEvent.Action.MERCHANT_CREATED)
    assert (event.actor_email, event.merchant_id) == ("root@keyhouse.test", merchant.pk)
    assert event.details == {"first_owner": "new-owner@example.test"}


def test_a_merchant_edited_in_the_admin_is_audited_with_the_staff_member(
    superuser_client, merchant
):
    response = superuser_client.post(
        reverse("admin:merchants_merchant_change", args=[merchant.pk]),
        {
            "name": "Demo Coffee Company",
            "contact_email": "new@example.test",
            "country": merchant.country,
            "requested_integrations": [],  # no box ticked
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, _errors(response)
    merchant.refresh_from_db()
    assert (merchant.name, merchant.contact_email) == ("Demo Coffee Company", "new@example.test")
    event = AuditEvent.objects.get(action=AuditEvent.Action.MERCHANT_PROFILE_CHANGED)
    assert event.actor_email == "root@keyhouse.test"
    assert event.details["name"] == {"from": "Demo Coffee Co", "to": "Demo Coffee Company"}


def test_merchants_and_users_cannot_be_deleted_in_the_admin(superuser_client, owner, merchant):
    for url in (
        reverse("admin:merchants_merchant_delete", args=[merchant.pk]),
        reverse("admin:teams_user_delete", args=[owner.pk]),
    ):
        assert superuser_client.post(url, {"post": "yes"}).status_code == 403
    assert Merchant.objects.filter(pk=merchant.pk).exists()
    assert User.objects.filter(pk=owner.pk).exists()


def test_an_account_created_in_the_admin_is_audited_without_its_password(superuser_client):
    response = superuser_client.post(
        reverse("admin:teams_user_add"),
        {
            "email": "agent@keyhouse.test",
            "password1": "a long pass phrase",
            "password2": "a long pass phrase",
        },
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=AuditEvent.Action.USER_CREATED)
    assert event.target == "user agent@keyhouse.test"
    assert "a long pass phrase" not in str(event.details)
    assert User.objects.get(email="agent@keyhouse.test").check_password("a long pass phrase")


def _user_change_data(user, **changes):
    # The form shows the date to the second: a stored fraction would read as a change.
    user.date_joined = user.date_joined.replace(microsecond=0)
    user.save(update_fields=["date_joined"])
    data = {
        "email": user.email,
        "full_name": user.full_name,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_a_staff_member_who_is_not_a_superuser_is_not_offered_privileges(client, owner):
    agent = UserFactory(email="agent@keyhouse.test", is_staff=True)
    agent.user_permissions.add(*_perms("view_user", "change_user"))
    verify_session(client, agent)
    url = reverse("admin:teams_user_change", args=[owner.pk])

    assert 'name="is_staff"' not in client.get(url).content.decode()
    response = client.post(url, _user_change_data(owner, full_name="Renamed", is_staff="on"))

    assert response.status_code == 302, _errors(response)
    owner.refresh_from_db()
    assert (owner.full_name, owner.is_staff) == ("Renamed", False)


def test_the_account_service_refuses_privileges_from_a_non_superuser_and_audits_it(owner):
    agent = UserFactory(email="agent@keyhouse.test", is_staff=True)
    agent.user_permissions.add(*_perms("view_user", "change_user"))
    owner.is_staff = True

    with pytest.raises(Refused, match="Only a superuser"):
        user_save_by_staff(user=owner, changed=["is_staff"], actor=agent)

    owner.refresh_from_db()
    assert not owner.is_staff
    refusal = AuditEvent.objects.get(action=AuditEvent.Action.ACTION_REFUSED)
    assert refusal.actor_email == "agent@keyhouse.test"


def test_the_account_service_refuses_staff_without_the_permission(owner):
    agent = UserFactory(email="agent@keyhouse.test", is_staff=True)
    owner.full_name = "Renamed"

    with pytest.raises(Refused):
        user_save_by_staff(user=owner, changed=["full_name"], actor=agent)

    owner.refresh_from_db()
    assert owner.full_name != "Renamed"
    assert AuditEvent.objects.get().action == AuditEvent.Action.ACCESS_DENIED


def test_a_superuser_making_someone_staff_is_audited_with_what_changed(superuser_client, owner):
    response = superuser_client.post(
        reverse("admin:teams_user_change", args=[owner.pk]),
        _user_change_data(owner, is_staff="on"),
    )

    assert response.status_code == 302, _errors(response)
    owner.refresh_from_db()
    assert owner.is_staff
    event = AuditEvent.objects.get(action=AuditEvent.Action.USER_CHANGED)
    assert "is_staff" in event.details["changed"]
    assert "password" not in event.details["changed"]


def _perms(*codenames):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="teams", codename__in=codenames)


def _errors(response) -> str:
    """Return what the admin form refused, for a failing assertion's message."""
    import re

    return " | ".join(
        re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    )
