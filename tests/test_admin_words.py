"""The helpdesk admin speaks in words, not codes (issue #14): mail kinds and audit actions as
sentences, audit details as a table, integrations as a list, no developer help text."""

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import audit_record
from mail.admin import KIND_LABELS, mail_kind_label
from mail.models import OutgoingEmail
from merchants.models import Integration, Merchant
from tests.helpers import page_html, page_text

MAIL = reverse("admin:mail_outgoingemail_changelist")
AUDIT = reverse("admin:audit_auditevent_changelist")
# Every kind of mail the outbox is given (credentials.services.notifications).
MAIL_KINDS = [
    "helpdesk_submission",
    "helpdesk_reminder",
    "merchant_verification_result",
    "merchant_key_revoked",
    "helpdesk_key_revoked",
    "merchant_key_no_longer_valid",
    "helpdesk_key_no_longer_valid",
]


@pytest.fixture(params=["helpdesk_user", "superuser"])
def staff_client(request, client_for):
    return client_for(request.getfixturevalue(request.param))


def mail_of_kind(kind: str) -> OutgoingEmail:
    return OutgoingEmail.objects.create(
        dedupe_key=f"words:{kind}",
        kind=kind,
        to=["helpdesk@keyhouse.test"],
        subject=f"About {kind}",
        body_text="Body.",
    )


# Mail kinds


@pytest.mark.parametrize("kind", MAIL_KINDS)
def test_every_kind_of_mail_has_a_sentence_of_its_own(kind):
    label = mail_kind_label(kind)

    assert label in KIND_LABELS.values()
    assert "_" not in label
    assert label[0].isupper()


def test_mail_kind_labels_are_all_different():
    labels = [mail_kind_label(kind) for kind in MAIL_KINDS]

    assert len(set(labels)) == len(labels)


def test_mail_list_shows_the_kind_as_a_sentence_not_its_code(staff_client, db):
    mail_of_kind("helpdesk_reminder")

    body = page_html(staff_client.get(MAIL))

    assert "A submission is still waiting: reminder to the helpdesk" in body
    assert ">helpdesk_reminder<" not in body


def test_mail_kind_filter_offers_sentences_and_narrows_the_list(staff_client, db):
    reminder = mail_of_kind("helpdesk_reminder")
    mail_of_kind("merchant_key_revoked")

    everything = staff_client.get(MAIL)
    filtered = staff_client.get(MAIL, {"kind": "helpdesk_reminder"})

    assert "The merchant is told their key was revoked" in page_html(everything)
    assert [email.pk for email in filtered.context["cl"].result_list] == [reminder.pk]


def test_mail_page_shows_the_kind_and_recipients_in_words(staff_client, db):
    email = mail_of_kind("helpdesk_key_revoked")

    text = page_text(staff_client.get(reverse("admin:mail_outgoingemail_change", args=[email.pk])))

    assert "Urgent: the helpdesk is told a key was reported compromised" in text
    assert "helpdesk@keyhouse.test" in text
    assert '["helpdesk@keyhouse.test"]' not in text


def test_a_kind_nobody_named_is_spelt_out_rather_than_shown_as_a_code():
    assert mail_kind_label("weekly_digest") == "Weekly digest"


def test_mail_list_is_refused_to_a_merchant_member(owner_client):
    response = owner_client.get(MAIL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


# Audit actions and details


@pytest.fixture
def event(merchant, owner):
    return audit_record(
        action=AuditEvent.Action.MEMBER_ROLE_CHANGED,
        actor=owner,
        merchant=merchant,
        target="member someone@demo.test",
        details={"from_role": "Support", "to_role": "Developer", "permissions": ["A", "B"]},
    )


def test_audit_list_says_what_happened_in_words(staff_client, event):
    body = page_html(staff_client.get(AUDIT))

    assert "Member&#x27;s role changed: member someone@demo.test" in body
    assert ">member_role_changed<" not in body


def test_audit_page_shows_the_details_as_a_table_not_json(staff_client, event):
    response = staff_client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))

    body = page_html(response)
    table = re.search(r'<table class="keyhouse-details">(.*?)</table>', body, re.S)
    assert table, "no details table"
    rows = re.findall(r'<th scope="row">(.*?)</th><td>(.*?)</td>', table.group(1))
    assert rows == [("From role", "Support"), ("To role", "Developer"), ("Permissions", "A, B")]
    assert '"from_role"' not in body
    assert "Member&#x27;s role changed" in body


def test_audit_page_without_details_shows_a_dash(staff_client, merchant, owner):
    event = audit_record(action=AuditEvent.Action.SIGNED_IN, actor=owner)

    body = page_html(staff_client.get(reverse("admin:audit_auditevent_change", args=[event.pk])))

    assert 'class="keyhouse-details"' not in body
    assert "{}" not in body


def test_audit_list_is_refused_to_a_merchant_member(owner_client, event):
    response = owner_client.get(AUDIT)

    assert response.status_code == 302


# Integrations and help text on the merchant page


def test_merchant_page_offers_integrations_as_named_checkboxes_without_developer_help(
    client_for, superuser, merchant
):
    body = page_html(
        client_for(superuser).get(reverse("admin:merchants_merchant_change", args=[merchant.pk]))
    )

    for value, label in Integration.choices:
        assert f'type="checkbox" name="requested_integrations" value="{value}"' in body
        assert label in body
    assert "merchants.models" not in body
    assert "Integration values" not in body


def test_merchant_integrations_ticked_in_the_admin_are_saved_as_their_values(
    client_for, superuser, merchant
):
    response = client_for(superuser).post(
        reverse("admin:merchants_merchant_change", args=[merchant.pk]),
        {
            "name": merchant.name,
            "contact_email": merchant.contact_email,
            "country": merchant.country,
            "requested_integrations": [Integration.INVOICING, Integration.IN_PERSON],
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    assert set(Merchant.objects.get(pk=merchant.pk).requested_integrations) == {
        Integration.INVOICING,
        Integration.IN_PERSON,
    }


def test_merchant_integration_outside_the_catalogue_is_refused(client_for, superuser, merchant):
    response = client_for(superuser).post(
        reverse("admin:merchants_merchant_change", args=[merchant.pk]),
        {
            "name": merchant.name,
            "contact_email": merchant.contact_email,
            "country": merchant.country,
            "requested_integrations": ["crypto"],
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert Merchant.objects.get(pk=merchant.pk).requested_integrations == [
        Integration.ONLINE_PAYMENTS
    ]
