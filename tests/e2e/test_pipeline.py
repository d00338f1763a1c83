"""A key submitted through the portal is verified by a real worker; both sides are mailed.

The whole path is real: the view, the on-commit publish to Redis, a Celery worker, the stripe
SDK talking HTTP to the fake Stripe, PostgreSQL, and Django's SMTP backend to a real SMTP sink.
"""

import pytest
from django.conf import settings

from credentials.models import Credential, VerificationState
from credentials.services.notifications import credential_admin_url
from mail.models import OutgoingEmail
from tests.e2e.leaks import Secret, mail_findings
from tests.e2e.waiting import wait_until
from tests.factories import fake_key
from tests.fake_stripe import account_reply

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def submitted_credential(response, merchant) -> Credential:
    assert response.status_code == 302, "The portal did not accept the submission."
    return Credential.objects.get(merchant=merchant)


def test_a_submitted_key_is_verified_and_both_sides_are_mailed_without_the_secret(
    submit_keys, merchant, owner, fake_stripe, smtp_sink, celery_worker
):
    publishable, secret = fake_key("pk_test_"), Secret(fake_key("sk_test_"))

    response = submit_keys(
        publishable_key=publishable, secret_key=secret, note="Please start with the webshop."
    )
    credential = submitted_credential(response, merchant)
    assert response["Location"] == credential.get_absolute_url() + "?submitted=1"

    wait_until(lambda: len(smtp_sink.received) >= 2, what="the merchant's and helpdesk's mail")
    celery_worker.wait_until_idle()

    credential.refresh_from_db()
    account_id = account_reply(secret).body["id"]
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.account_id == account_id
    assert len(fake_stripe.requests_for(secret)) == 1
    assert len(smtp_sink.received) == 2

    (to_merchant,) = smtp_sink.received_by(owner.email)
    assert to_merchant.recipients == (owner.email,)
    assert "is verified" in to_merchant.subject
    assert credential.secret_hint in to_merchant.subject
    for body in (to_merchant.text, to_merchant.html):
        assert credential.secret_hint in body
        assert account_id in body
        assert merchant.name in body
    assert "Stripe accepted the test key" in to_merchant.text
    assert settings.SITE_URL + credential.get_absolute_url() in to_merchant.text

    (to_helpdesk,) = smtp_sink.received_by(settings.HELPDESK_EMAIL)
    assert to_helpdesk.recipients == (settings.HELPDESK_EMAIL,)
    assert merchant.name in to_helpdesk.subject
    assert "verified" in to_helpdesk.subject
    admin_url = credential_admin_url(credential)
    assert admin_url.startswith(settings.SITE_URL + "/admin/")
    for body in (to_helpdesk.text, to_helpdesk.html):
        assert credential.secret_hint in body
        assert account_id in body
        assert admin_url in body
        assert "Please start with the webshop." in body
    assert "Outcome: Verified" in to_helpdesk.text
    assert "Mode: Test" in to_helpdesk.text
    assert "Online payments, Subscriptions and billing" in to_helpdesk.text
    assert merchant.contact_email in to_helpdesk.text

    leaks = mail_findings(smtp_sink.received, secret)
    assert not leaks, f"The secret is in these mails: {leaks}"
    assert set(OutgoingEmail.objects.values_list("state", flat=True)) == {"sent"}
    credential.refresh_from_db()
    assert credential.helpdesk_notified_at is not None


def test_a_key_stripe_rejects_tells_the_merchant_what_to_do(
    submit_keys, merchant, owner, fake_stripe, smtp_sink, celery_worker
):
    publishable, secret = fake_key("pk_live_"), Secret(fake_key("sk_live_"))
    fake_stripe.reject(secret)  # a 401 invalid_api_key, as Stripe answers it

    credential = submitted_credential(
        submit_keys(publishable_key=publishable, secret_key=secret), merchant
    )

    wait_until(lambda: len(smtp_sink.received) >= 2, what="the merchant's and helpdesk's mail")
    celery_worker.wait_until_idle()

    credential.refresh_from_db()
    assert credential.verification_state == VerificationState.REJECTED
    assert credential.verification_code == "invalid_api_key"
    assert credential.account_id == ""
    assert len(smtp_sink.received) == 2

    (to_merchant,) = smtp_sink.received_by(owner.email)
    assert to_merchant.subject.startswith("Action needed: Stripe did not accept")
    assert credential.secret_hint in to_merchant.subject
    text = to_merchant.text
    assert "Stripe did not accept the live key" in text
    assert "Check the key in the Stripe dashboard" in text
    assert "roll it there, and submit it again" in text
    assert f"{settings.SITE_URL}/m/{merchant.slug}/keys/new/" in text

    (to_helpdesk,) = smtp_sink.received_by(settings.HELPDESK_EMAIL)
    assert "rejected by stripe" in to_helpdesk.subject.lower()
    assert "Stripe account: unknown" in to_helpdesk.text
    assert credential_admin_url(credential) in to_helpdesk.text

    # Stripe's own error message echoes the key (masked); neither it nor the key is mailed.
    leaks = mail_findings(smtp_sink.received, secret)
    assert not leaks, f"The secret is in these mails: {leaks}"
    assert "*" * 8 not in to_merchant.text + to_helpdesk.text
