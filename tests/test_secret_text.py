"""Key-shaped text in ordinary fields (issue #12 finding 5, issue #16 item 2).

Every free-text field of the portal's and the admin's forms refuses text holding a secret key,
however it is dressed up (a space or a zero-width space after the prefix, upper case,
full-width characters), with a field error that says what is wrong and where keys go. Nothing
is saved, the page is never a server error, and the key does not come back in the page. The
services refuse it too, for callers other than the forms.
"""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from core.validators import KEY_IN_TEXT_MESSAGE
from merchants.services import merchant_update_profile
from teams.forms import AcceptInvitationForm
from teams.permissions import VIEW_MERCHANT
from teams.services import role_create, role_update
from tests.factories import RoleFactory, default_role, fake_key
from tests.helpers import merchant_url, page_html, page_text, reload, stored_state

FULL_WIDTH = str.maketrans({chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)})

# How a key gets pasted: each takes the key's body and returns the text typed.
VARIANTS = {
    "plain": lambda body: f"sk_live_{body}",
    "space": lambda body: f"sk_live_ {body}",
    "zero-width space": lambda body: f"sk_live_\u200b{body}",
    "upper case": lambda body: f"SK_LIVE_{body}",
    "full width": lambda body: f"sk_live_{body}".translate(FULL_WIDTH),
}


@pytest.fixture(params=VARIANTS, ids=VARIANTS.keys())
def pasted(request):
    """A key as pasted, and the stretches of it that must not come back in a page."""
    body = fake_key("", 28)
    typed = VARIANTS[request.param](body)
    return typed, [typed, body, body.upper(), body.translate(FULL_WIDTH)]


def assert_refused_without_echo(response, field: str, pasted):
    _typed, stretches = pasted
    assert response.status_code == 200
    assert KEY_IN_TEXT_MESSAGE in page_text(response)
    assert KEY_IN_TEXT_MESSAGE in response.context["form"].errors[field]
    html = page_html(response)
    assert not [stretch for stretch in stretches if stretch in html], "the key came back"


# The merchant profile ------------------------------------------------------------------


PROFILE = {
    "contact_email": "accounts@example.com",
    "contact_phone": "+44 20 7946 0958",
    "website": "https://example.com",
    "country": "GB",
    "requested_integrations": ["online_payments"],
}


@pytest.mark.parametrize("field", ["contact_email", "contact_phone", "website", "country"])
def test_profile_field_holding_a_key_is_refused_nothing_saved_and_not_echoed(
    owner_client, merchant, field, pasted
):
    before = stored_state()

    response = owner_client.post(
        merchant_url("merchants:profile", merchant), {**PROFILE, field: pasted[0]}
    )

    assert_refused_without_echo(response, field, pasted)
    assert stored_state() == before


def test_profile_without_a_key_is_still_saved(owner_client, merchant):
    response = owner_client.post(merchant_url("merchants:profile", merchant), PROFILE)

    assert response.status_code == 302
    assert reload(merchant).contact_phone == PROFILE["contact_phone"]


def test_profile_of_another_merchant_is_not_found_key_or_not(
    client_for, other_owner, merchant, pasted
):
    response = client_for(other_owner).post(
        merchant_url("merchants:profile", merchant), {**PROFILE, "contact_phone": pasted[0]}
    )

    assert response.status_code == 404
    assert reload(merchant).contact_phone == ""


# Custom roles ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "description"])
def test_new_role_holding_a_key_is_refused_nothing_saved_and_not_echoed(
    owner_client, merchant, field, pasted
):
    before = stored_state()
    data = {"name": "Bookkeeping", "description": "Reads", "permissions": [VIEW_MERCHANT]}

    response = owner_client.post(
        merchant_url("teams:role_create", merchant), {**data, field: pasted[0]}
    )

    assert_refused_without_echo(response, field, pasted)
    assert stored_state() == before


@pytest.mark.parametrize("field", ["name", "description"])
def test_edited_role_holding_a_key_is_refused_nothing_saved_and_not_echoed(
    owner_client, merchant, field, pasted
):
    role = RoleFactory(merchant=merchant, name="Bookkeeping")
    before = stored_state()
    data = {"name": "Accounts", "description": "Reads", "permissions": [VIEW_MERCHANT]}

    response = owner_client.post(
        merchant_url("teams:role_edit", merchant, pk=role.pk), {**data, field: pasted[0]}
    )

    assert_refused_without_echo(response, field, pasted)
    assert stored_state() == before


# Invitations -----------------------------------------------------------------------------


def test_invitation_to_an_address_holding_a_key_is_refused_nothing_sent_and_not_echoed(
    owner_client, merchant, pasted, mailoutbox
):
    before = stored_state()

    response = owner_client.post(
        merchant_url("teams:invite", merchant),
        {"email": f"{pasted[0]}@example.com", "role": default_role("support").pk},
    )

    assert_refused_without_echo(response, "email", pasted)
    assert stored_state() == before
    assert not mailoutbox


def test_accepting_with_a_name_holding_a_key_is_refused_and_not_echoed(db, pasted):
    form = AcceptInvitationForm(
        {
            "full_name": pasted[0],
            "password1": "a long passphrase",
            "password2": "a long passphrase",
        },
        email="invitee@example.com",
    )

    assert not form.is_valid()
    assert KEY_IN_TEXT_MESSAGE in form.errors["full_name"]
    assert not [stretch for stretch in pasted[1] if stretch in str(form)]


def test_a_password_is_not_checked_for_keys(db):
    password = fake_key("sk_live_")
    form = AcceptInvitationForm(
        {"full_name": "Ada", "password1": password, "password2": password},
        email="invitee@example.com",
    )
    form.is_valid()

    assert "password1" not in form.errors or KEY_IN_TEXT_MESSAGE not in form.errors["password1"]


# The admin -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "contact_phone", "website"])
def test_admin_new_merchant_holding_a_key_is_refused_nothing_saved_and_not_echoed(
    client_for, superuser, owner, field, pasted
):
    before = stored_state()
    data = {
        "name": "Corner Shop",
        "slug": "corner-shop",
        "owner": owner.pk,
        **PROFILE,
    }

    response = client_for(superuser).post(
        reverse("admin:merchants_merchant_add"), {**data, field: pasted[0]}
    )

    assert response.status_code == 200
    assert KEY_IN_TEXT_MESSAGE in page_text(response)
    assert not [stretch for stretch in pasted[1] if stretch in page_html(response)]
    assert stored_state() == before


# The services, for callers other than the forms ------------------------------------------


def test_profile_service_refuses_a_key_and_saves_nothing(merchant, owner, pasted):
    with pytest.raises(ValidationError) as refused:
        merchant_update_profile(merchant=merchant, actor=owner, contact_phone=pasted[0])

    assert refused.value.messages == [KEY_IN_TEXT_MESSAGE]
    assert reload(merchant).contact_phone == ""
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.MERCHANT_PROFILE_CHANGED)


def test_role_services_refuse_a_key_and_save_nothing(merchant, owner, pasted):
    role = RoleFactory(merchant=merchant, name="Bookkeeping")

    with pytest.raises(ValidationError, match="looks like a secret key"):
        role_create(
            merchant=merchant,
            name=pasted[0],
            description="",
            permissions=[VIEW_MERCHANT],
            actor=owner,
        )
    with pytest.raises(ValidationError, match="looks like a secret key"):
        role_update(
            role=role,
            name="Bookkeeping",
            description=pasted[0],
            permissions=[VIEW_MERCHANT],
            actor=owner,
        )

    assert list(merchant.custom_roles.values_list("name", "description")) == [("Bookkeeping", "")]


# The key form's note (issue #16 item 2): refused with its own message ---------------------


def test_note_holding_a_dressed_up_key_is_refused_nothing_stored_and_not_echoed(
    owner_client, merchant, pasted, mailoutbox
):
    before = stored_state()
    keys = {"publishable_key": fake_key("pk_test_"), "secret_key": fake_key("sk_test_")}

    response = owner_client.post(
        reverse("credentials:submit", kwargs={"slug": merchant.slug}),
        {**keys, "requested_integrations": ["online_payments"], "note": f"Hi {pasted[0]}"},
    )

    assert response.status_code == 200
    assert "Remove the key from the note" in page_text(response)
    assert not [stretch for stretch in pasted[1] if stretch in page_html(response)]
    assert stored_state() == before
    assert not mailoutbox
