"""Merchant permissions come from the member's role, and only from it."""

import pytest
from django.core.exceptions import ValidationError

from teams.models import Membership
from teams.permissions import CATALOGUE, DEFAULT_ROLES, SUBMIT_KEYS, VIEW_KEYS, VIEW_MERCHANT
from tests.factories import (
    MembershipFactory,
    MerchantFactory,
    RoleFactory,
    UserFactory,
    default_role,
)
from tests.helpers import reload


@pytest.mark.django_db
@pytest.mark.parametrize("role", DEFAULT_ROLES, ids=lambda role: role.slug)
def test_each_default_role_grants_exactly_its_permissions_in_its_merchant(role, merchant):
    user = UserFactory()
    MembershipFactory(user=user, merchant=merchant, role=default_role(role.slug))

    granted = {entry.perm for entry in CATALOGUE if user.has_perm(entry.perm, merchant)}

    assert granted == set(role.permissions)


@pytest.mark.django_db
def test_a_role_in_one_merchant_grants_nothing_in_another(merchant, other_merchant, owner):
    assert owner.has_perm(SUBMIT_KEYS, merchant)
    assert not owner.has_perm(VIEW_MERCHANT, other_merchant)


@pytest.mark.django_db
def test_a_superuser_gets_merchant_permissions_only_from_the_role_held_there(merchant):
    admin = UserFactory(is_staff=True, is_superuser=True)
    MembershipFactory(user=admin, merchant=merchant, role=default_role("view-only"))

    assert admin.has_perm("credentials.view_credential")  # the admin: everything
    assert admin.has_perm(VIEW_MERCHANT, merchant)
    assert not admin.has_perm(SUBMIT_KEYS, merchant)
    assert not admin.has_perm(VIEW_KEYS, MerchantFactory())


@pytest.mark.django_db
def test_an_inactive_member_holds_no_merchant_permission(merchant, member_factory):
    user = member_factory(merchant, "owner")
    user.is_active = False

    assert not user.has_perm(VIEW_MERCHANT, merchant)


@pytest.mark.django_db
def test_a_role_change_takes_effect_on_the_next_request(merchant, member_factory):
    user = member_factory(merchant, "developer")
    assert user.has_perm(SUBMIT_KEYS, merchant)

    Membership.objects.filter(user=user).update(role=default_role("support"))
    next_request_user = reload(user)

    assert not next_request_user.has_perm(SUBMIT_KEYS, merchant)


@pytest.mark.django_db
def test_a_membership_cannot_hold_another_merchants_custom_role(merchant, other_merchant):
    foreign_role = RoleFactory(merchant=other_merchant)
    membership = Membership(user=UserFactory(), merchant=merchant, role=foreign_role)

    with pytest.raises(ValidationError, match="this merchant's own custom roles"):
        membership.full_clean()


@pytest.mark.django_db
def test_a_membership_may_hold_its_own_merchants_custom_role(merchant):
    own_role = RoleFactory(merchant=merchant)
    membership = Membership(user=UserFactory(), merchant=merchant, role=own_role)

    membership.full_clean()
