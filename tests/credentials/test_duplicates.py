"""The same secret key active at two merchants: the helpdesk is told, the merchant is not.

A merchant may not learn that another merchant holds its key, let alone which one: the
submission is accepted as any other, and only the helpdesk's admin and mail carry the flag.
"""

import html
import re

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.urls import reverse

from credentials.models import Credential, HelpdeskFlag, LifecycleState
from credentials.services.notifications import HELPDESK_SUBMISSION, credential_topic
from credentials.services.verification import credential_verify
from mail.models import OutgoingEmail
from tests.factories import CredentialFactory, MerchantFactory, fake_key
from tests.helpers import page_text

CREDENTIALS = reverse("admin:credentials_credential_changelist")
FLAG_LABEL = "The same key is active at another merchant"
MERCHANT_MAIL = "merchant_verification_result"


@pytest.fixture
def other_merchant(other_merchant):
    other_merchant.contact_email = "orders@demobakery.test"
    other_merchant.save(update_fields=["contact_email"])
    return other_merchant


@pytest.fixture
def secret():
    return fake_key("sk_live_")


def submit(client, merchant, secret: str):
    return client.post(
        reverse("credentials:submit", kwargs={"slug": merchant.slug}),
        {
            "publishable_key": fake_key("pk_live_"),
            "secret_key": secret,
            "requested_integrations": ["online_payments"],
            "note": "",
        },
    )


@pytest.fixture
def theirs(other_merchant, other_owner, client_for, secret, fake_stripe):
    """The key, submitted and verified first by the other merchant."""
    assert submit(client_for(other_owner), other_merchant, secret).status_code == 302
    credential = Credential.objects.get(merchant=other_merchant)
    credential_verify(credential_id=credential.pk)
    return Credential.objects.get(pk=credential.pk)


@pytest.fixture
def ours(theirs, merchant, owner_client, secret, django_capture_on_commit_callbacks):
    """The same key, then submitted and verified by our merchant; its mails sent."""
    response = submit(owner_client, merchant, secret)
    assert response.status_code == 302
    credential = Credential.objects.get(merchant=merchant)
    with django_capture_on_commit_callbacks(execute=True):
        credential_verify(credential_id=credential.pk)
    return Credential.objects.get(pk=credential.pk)


@pytest.fixture
def helpdesk_client(helpdesk_user, client_for):
    return client_for(helpdesk_user)


def changelist_row(body: str, credential: Credential) -> str:
    change_url = reverse("admin:credentials_credential_change", args=[credential.pk])
    rows = [row for row in re.findall(r"<tr>.*?</tr>", body, re.S) if f'"{change_url}' in row]
    assert len(rows) == 1
    return rows[0]


def flagged_cell(row: str) -> str:
    match = re.search(r'<td class="field-flagged[^"]*">(.*?)</td>', row, re.S)
    assert match, "no Flagged column"
    return match.group(1)


def assert_says_nothing_of_the_other_merchant(texts, other_merchant, other_owner) -> None:
    for text in texts:
        text = html.unescape(text)
        assert "another merchant" not in text
        assert FLAG_LABEL not in text
        assert "duplicate" not in text.lower()
        assert other_merchant.name not in text
        assert other_merchant.slug not in text
        assert other_merchant.contact_email not in text
        assert other_owner.email not in text


# The helpdesk is told


def test_key_active_at_another_merchant_is_flagged_when_verified(ours, theirs):
    assert ours.helpdesk_flags == [HelpdeskFlag.DUPLICATE_ELSEWHERE]
    assert ours.verification_state == "verified"


def test_the_other_merchants_key_is_flagged_too_once_the_duplicate_is_verified(ours, theirs):
    theirs.refresh_from_db()

    assert theirs.helpdesk_flags == [HelpdeskFlag.DUPLICATE_ELSEWHERE]
    assert theirs.verification_state == "verified"  # nothing else about it changed


def test_the_other_merchants_key_is_flagged_once_however_many_duplicates_follow(
    ours, theirs, secret, member_factory, client_for, django_capture_on_commit_callbacks
):
    third_owner = member_factory(MerchantFactory(name="Demo Deli", slug="demo-deli"), "owner")
    third_merchant = third_owner.memberships.get().merchant
    assert submit(client_for(third_owner), third_merchant, secret).status_code == 302
    third = Credential.objects.get(merchant=third_merchant)

    with django_capture_on_commit_callbacks(execute=True):
        credential_verify(credential_id=third.pk)

    for key in (theirs, ours, third):
        key.refresh_from_db()
        assert key.helpdesk_flags == [HelpdeskFlag.DUPLICATE_ELSEWHERE]


def test_admin_change_page_shows_the_flag_in_words(helpdesk_client, ours):
    response = helpdesk_client.get(reverse("admin:credentials_credential_change", args=[ours.pk]))

    assert response.status_code == 200
    assert FLAG_LABEL in page_text(response)


def test_admin_change_page_of_an_unflagged_key_shows_no_flag(helpdesk_client, theirs):
    response = helpdesk_client.get(reverse("admin:credentials_credential_change", args=[theirs.pk]))

    assert response.status_code == 200
    assert FLAG_LABEL not in page_text(response)


def test_admin_list_marks_the_flagged_key_in_the_flagged_column(helpdesk_client, ours, theirs):
    response = helpdesk_client.get(CREDENTIALS)

    body = response.content.decode()
    assert ">Flags<" in body
    # A warning icon whose text alternative names the flag (issue #14), not a green tick.
    assert FLAG_LABEL in flagged_cell(changelist_row(body, ours))
    assert FLAG_LABEL in flagged_cell(changelist_row(body, theirs))


def test_admin_list_shows_an_unflagged_key_as_not_flagged(helpdesk_client, theirs):
    body = helpdesk_client.get(CREDENTIALS).content.decode()

    assert "<img" not in flagged_cell(changelist_row(body, theirs))


def test_admin_flagged_for_a_look_filter_lists_only_the_flagged_keys(helpdesk_client, ours, theirs):
    # Another merchant's own key, not a duplicate: verified and not flagged.
    unflagged = CredentialFactory(verification_state="verified")

    everything = helpdesk_client.get(CREDENTIALS)
    flagged = helpdesk_client.get(CREDENTIALS, {"flagged": "yes"})

    assert "Flagged for a look" in everything.content.decode()
    assert {c.pk for c in everything.context["cl"].result_list} == {
        ours.pk,
        theirs.pk,
        unflagged.pk,
    }
    assert {c.pk for c in flagged.context["cl"].result_list} == {ours.pk, theirs.pk}


def test_helpdesk_mail_carries_the_flag(ours, secret):
    queued = OutgoingEmail.objects.get(topic=credential_topic(ours.pk), kind=HELPDESK_SUBMISSION)

    [sent] = [
        m
        for m in mail.outbox
        if m.to == [django_settings.HELPDESK_EMAIL] and ours.merchant.name in m.subject
    ]
    assert sent.subject == queued.subject
    assert sent.subject.endswith("— please check")
    assert f"Please check:\n- {FLAG_LABEL}" in sent.body
    [(html_body, _)] = sent.alternatives
    assert FLAG_LABEL in html.unescape(html_body)
    assert secret not in sent.body
    assert secret not in html_body


def test_helpdesk_mail_of_the_first_merchant_carries_no_flag(theirs):
    queued = OutgoingEmail.objects.get(topic=credential_topic(theirs.pk), kind=HELPDESK_SUBMISSION)

    assert "please check" not in queued.subject
    assert FLAG_LABEL not in queued.body_text


# The merchant is not


def test_merchant_can_submit_a_key_active_elsewhere_and_the_page_says_nothing_of_it(
    theirs, merchant, owner_client, secret, other_merchant, other_owner
):
    response = submit(owner_client, merchant, secret)

    assert response.status_code == 302
    page = owner_client.get(response.url)
    assert page.status_code == 200
    assert_says_nothing_of_the_other_merchant([page_text(page)], other_merchant, other_owner)


def test_merchant_mail_says_nothing_of_the_other_merchant(ours, owner, other_merchant, other_owner):
    queued = OutgoingEmail.objects.get(topic=credential_topic(ours.pk), kind=MERCHANT_MAIL)
    [sent] = [m for m in mail.outbox if m.to == [owner.email]]

    assert sent.subject == f"Your Stripe live key {ours.secret_hint} is verified"
    [(html_body, _)] = sent.alternatives
    assert_says_nothing_of_the_other_merchant(
        [queued.subject, queued.body_text, queued.body_html, sent.body, html_body],
        other_merchant,
        other_owner,
    )


def test_merchant_pages_say_nothing_of_the_other_merchant(
    ours, merchant, owner_client, other_merchant, other_owner
):
    pages = [
        owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug})),
        owner_client.get(ours.get_absolute_url()),
    ]

    for page in pages:
        assert page.status_code == 200
        assert ours.secret_hint in page_text(page)
    assert_says_nothing_of_the_other_merchant(
        [page_text(page) for page in pages], other_merchant, other_owner
    )


def test_other_merchant_is_not_told_either(ours, theirs, other_merchant, other_owner, client_for):
    client = client_for(other_owner)
    pages = [
        client.get(reverse("credentials:merchant", kwargs={"slug": other_merchant.slug})),
        client.get(theirs.get_absolute_url()),
    ]

    for page in pages:
        text = page_text(page)
        assert "another merchant" not in text
        assert ours.merchant.name not in text
    assert not OutgoingEmail.objects.filter(
        topic=credential_topic(theirs.pk),
        kind=MERCHANT_MAIL,
        body_text__contains="another merchant",
    ).exists()


def test_merchant_cannot_open_the_other_merchants_key(ours, theirs, owner_client, merchant):
    wrong_merchant = reverse("credentials:detail", kwargs={"slug": merchant.slug, "pk": theirs.pk})

    assert owner_client.get(theirs.get_absolute_url()).status_code == 404
    assert owner_client.get(wrong_merchant).status_code == 404


# What is not a duplicate


@pytest.mark.parametrize("state", [LifecycleState.REVOKED, LifecycleState.SUPERSEDED])
def test_key_retired_at_the_other_merchant_is_not_flagged(
    theirs, merchant, owner_client, secret, state
):
    Credential.objects.filter(pk=theirs.pk).update(lifecycle_state=state, secret=None)
    submit(owner_client, merchant, secret)
    credential = Credential.objects.get(merchant=merchant)

    credential_verify(credential_id=credential.pk)

    assert Credential.objects.get(pk=credential.pk).helpdesk_flags == []
    assert Credential.objects.get(pk=theirs.pk).helpdesk_flags == []


def test_different_keys_at_two_merchants_are_not_flagged(theirs, merchant, owner_client):
    submit(owner_client, merchant, fake_key("sk_live_"))
    credential = Credential.objects.get(merchant=merchant)

    credential_verify(credential_id=credential.pk)

    assert Credential.objects.get(pk=credential.pk).helpdesk_flags == []
