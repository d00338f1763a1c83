"""Read-only admin pages look and act read-only (issue #14, item 5): no Save button, a POST is
refused and changes nothing, and nothing reports "changed successfully". No "View on site"
link leads staff into a merchant's portal, where they would get a 404; `/favicon.ico` exists.
"""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import audit_record
from credentials.models import Credential
from mail.models import OutgoingEmail
from teams.models import Invitation, Membership, Role
from tests.factories import CredentialFactory, InvitationFactory, default_role
from tests.helpers import page_html, page_text

SAVE_BUTTONS = ('name="_save"', 'name="_continue"', 'name="_addanother"')


@pytest.fixture(params=["helpdesk_user", "superuser"])
def staff_client(request, client_for):
    """A helpdesk agent, then a platform admin (who holds every permission)."""
    return client_for(request.getfixturevalue(request.param))


@pytest.fixture
def rows(merchant, owner):
    """One row of each model the admin shows read-only."""
    audit_record(
        action=AuditEvent.Action.ROLE_CREATED,
        actor=owner,
        merchant=merchant,
        target="role Coffee",
        details={"permissions": ["View keys"]},
    )
    return {
        "credentials_credential": CredentialFactory(merchant=merchant, submitted_by=owner),
        "audit_auditevent": AuditEvent.objects.get(action=AuditEvent.Action.ROLE_CREATED),
        "mail_outgoingemail": OutgoingEmail.objects.create(
            dedupe_key="read-only-test",
            kind="helpdesk_reminder",
            to=["helpdesk@keyhouse.test"],
            subject="[Keyhouse] Reminder 1",
            body_text="A reminder.",
        ),
        "teams_invitation": InvitationFactory(merchant=merchant, invited_by=owner),
        "teams_membership": Membership.objects.get(user=owner, merchant=merchant),
        "teams_role": default_role("support"),
    }


# A field of each model that a forged POST tries to change.
FORGED = {
    "credentials_credential": ("note", "rewritten"),
    "audit_auditevent": ("target", "rewritten"),
    "mail_outgoingemail": ("subject", "rewritten"),
    "teams_invitation": ("email", "rewritten@demo.test"),
    "teams_membership": ("role", "1"),
    "teams_role": ("name", "rewritten"),
}
READ_ONLY_PAGES = pytest.mark.parametrize("model", list(FORGED))
MODELS = {
    "credentials_credential": Credential,
    "audit_auditevent": AuditEvent,
    "mail_outgoingemail": OutgoingEmail,
    "teams_invitation": Invitation,
    "teams_membership": Membership,
    "teams_role": Role,
}


def change_url(model: str, obj) -> str:
    return reverse(f"admin:{model}_change", args=[obj.pk])


def stored(model: str, obj) -> dict:
    return MODELS[model]._default_manager.filter(pk=obj.pk).values().get()


@READ_ONLY_PAGES
def test_read_only_page_offers_no_save_button(staff_client, rows, model):
    response = staff_client.get(change_url(model, rows[model]))

    assert response.status_code == 200
    body = page_html(response)
    assert not [button for button in SAVE_BUTTONS if button in body]


@READ_ONLY_PAGES
def test_read_only_page_refuses_a_post_and_reports_no_change(staff_client, rows, model):
    obj = rows[model]
    before = stored(model, obj)
    field, value = FORGED[model]

    response = staff_client.post(change_url(model, obj), {field: value, "_save": "Save"})

    assert response.status_code == 403
    assert "changed successfully" not in page_text(response)
    assert stored(model, obj) == before


def test_merchant_member_posting_to_a_read_only_page_is_sent_to_the_admin_login(owner_client, rows):
    credential = rows["credentials_credential"]

    response = owner_client.post(change_url("credentials_credential", credential), {"note": "x"})

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert Credential.objects.get(pk=credential.pk).note == credential.note


# View on site


@pytest.mark.parametrize("model", ["credentials_credential", "merchants_merchant"])
def test_no_view_on_site_link_into_the_merchants_portal(staff_client, rows, merchant, model):
    obj = rows["credentials_credential"] if model == "credentials_credential" else merchant

    body = page_html(staff_client.get(change_url(model, obj)))

    assert "View on site" not in body
    assert obj.get_absolute_url() not in body


# The favicon


def test_favicon_address_leads_to_a_static_icon_that_exists(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response.url.endswith("/keyhouse/favicon.ico")
    icon = finders.find("keyhouse/favicon.ico")
    assert icon
    with open(icon, "rb") as file:
        assert file.read(4) == b"\x00\x00\x01\x00"  # an ICO file's header


@pytest.mark.parametrize("page", ["portal sign-in", "admin sign-in"])
def test_pages_name_their_icon(client, page):
    address = {"portal sign-in": reverse("login"), "admin sign-in": reverse("admin:login")}[page]

    body = page_html(client.get(address))

    assert '<link rel="icon" href="/static/keyhouse/favicon.ico">' in body
