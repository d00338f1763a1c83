"""The reveal page's Copy button (issue #14): static JavaScript, no inline script, and the
secret on that page only."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from credentials.models import VerificationState
from teams.helpdesk import HELPDESK_LEAD_GROUP, helpdesk_groups_ensure
from tests.factories import CredentialFactory, UserFactory
from tests.helpers import assert_no_secret, page_html, totp_code, totp_device

REASON = "The merchant's integration needs it reinstalled."


@pytest.fixture
def lead(db):
    user = UserFactory(email="lead@demo.test", is_staff=True)
    user.groups.add(helpdesk_groups_ensure()[HELPDESK_LEAD_GROUP])
    return user


@pytest.fixture
def credential(merchant, owner, secret):
    return CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        secret_value=secret,
        verification_state=VerificationState.VERIFIED,
    )


def reveal_url(credential) -> str:
    return reverse("admin:credentials_credential_reveal", args=[credential.pk])


def revealed(client, user, credential):
    code = totp_code(totp_device(user))
    return client.post(reveal_url(credential), {"reason": REASON, "otp_token": code})


def test_revealed_page_offers_a_copy_button_bound_to_the_secret_by_a_data_attribute(
    lead, client_for, credential, secret
):
    body = page_html(revealed(client_for(lead), lead, credential))

    button = re.search(r"<button[^>]*data-copy-from=\"([^\"]+)\"[^>]*>Copy</button>", body)
    assert button, "no Copy button"
    assert re.search(rf'<code[^>]*id="{button.group(1)}"[^>]*>{re.escape(secret)}</code>', body)
    assert secret not in button.group(0)


def test_revealed_page_loads_the_copy_script_from_a_static_file_and_has_no_inline_script(
    lead, client_for, credential
):
    body = page_html(revealed(client_for(lead), lead, credential))

    assert '<script src="/static/credentials/js/copy-secret.js" defer></script>' in body
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), "an inline script"
    assert " onclick=" not in body
    assert finders.find("credentials/js/copy-secret.js")


def test_copy_script_keeps_the_secret_nowhere_but_the_clipboard():
    with open(finders.find("credentials/js/copy-secret.js")) as file:
        script = file.read()

    assert "navigator.clipboard.writeText" in script
    for keeper in ("localStorage", "sessionStorage", "document.cookie", "fetch(", "XMLHttp"):
        assert keeper not in script


def test_reveal_form_before_the_reveal_has_no_copy_button_and_no_secret(
    lead, client_for, credential, secret
):
    body = page_html(client_for(lead).get(reveal_url(credential)))

    assert "data-copy-from" not in body
    assert_no_secret(body, secret)


def test_plain_helpdesk_staff_get_no_copy_button_and_no_secret(
    helpdesk_user, client_for, credential, secret
):
    response = revealed(client_for(helpdesk_user), helpdesk_user, credential)

    assert response.status_code == 403
    assert "data-copy-from" not in page_html(response)
    assert_no_secret(page_html(response), secret)
