"""No key is stranded: a key Stripe could not be reached for is verified again on a back-off,
the helpdesk can verify a key again, the same key can be submitted again after a failure,
and a key this worker cannot decrypt is reported to the helpdesk once instead of looping."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.refusals import Refused
from credentials.models import Credential, HelpdeskFlag, LifecycleState, VerificationState
from credentials.providers.stripe import REASONS as STRIPE_REASONS
from credentials.services.checking import REASONS as SHARED_REASONS
from credentials.services.lifecycle import (
    UNREACHABLE_RECHECKS,
    credential_verify_again,
)
from credentials.services.notifications import HELPDESK_SUBMISSION, credential_topic
from credentials.services.rechecks import (
    ReverifyOutcome,
    credential_reverify,
    reverifications_queue_due,
)
from credentials.services.submission import VERIFY_TASK
from credentials.services.verification import credential_verify
from mail.models import OutgoingEmail
from tests.factories import CredentialFactory, UserFactory, fake_key
from tests.fake_stripe import error_reply

# Our own sentences: those every provider shares, and Stripe's.
REASONS = {**SHARED_REASONS, **STRIPE_REASONS}

pytestmark = pytest.mark.django_db

UNDECRYPTABLE = "gAAAAABnot-a-token-any-configured-key-decrypts-xxxxxxxxxxxxxxxxxxxx=="


@pytest.fixture
def sent_tasks(monkeypatch):
    from celery import current_app

    sent = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args=(), **options: sent.append((name, args))
    )
    return sent


@pytest.fixture(autouse=True)
def _one_attempt(settings):
    settings.VERIFY_MAX_ATTEMPTS = 1
    settings.STRIPE_MAX_NETWORK_RETRIES = 0


def reload(credential):
    """Return the key as stored, without its secret (which some of these cannot decrypt)."""
    return Credential.objects.defer("secret").get(pk=credential.pk)


def unreachable_key(fake_stripe, merchant, owner):
    key = fake_key("sk_test_")
    fake_stripe.on(key, "/v1/account", error_reply("api_error", key))
    credential = CredentialFactory(merchant=merchant, secret_value=key, submitted_by=owner)
    credential_verify(credential_id=credential.pk)
    assert reload(credential).verification_state == VerificationState.UNREACHABLE
    return key, reload(credential)


def mails_about(credential, kind):
    return OutgoingEmail.objects.filter(topic=credential_topic(credential.pk), kind=kind)


def test_an_unreachable_key_is_verified_again_after_the_first_back_off(
    fake_stripe, merchant, owner, sent_tasks, django_capture_on_commit_callbacks
):
    before = timezone.now()
    _key, credential = unreachable_key(fake_stripe, merchant, owner)

    assert before + UNREACHABLE_RECHECKS[0] <= credential.next_reverify_at
    assert credential.next_reverify_at <= timezone.now() + UNREACHABLE_RECHECKS[0]
    assert reverifications_queue_due(now=timezone.now()) == 0
    later = credential.next_reverify_at + timedelta(seconds=1)
    assert reverifications_queue_due(now=later) == 1

    with django_capture_on_commit_callbacks(execute=True):
        outcome = credential_reverify(credential_id=credential.pk, now=later)

    assert outcome == ReverifyOutcome.VERIFYING_AGAIN
    credential = reload(credential)
    assert credential.verification_state == VerificationState.PENDING
    assert (credential.verification_round, credential.verification_attempts) == (1, 0)
    assert (VERIFY_TASK, (credential.pk,)) in sent_tasks


def test_a_key_that_answers_on_a_later_round_is_verified_and_both_sides_told_again(
    fake_stripe, merchant, owner, sent_tasks
):
    key, credential = unreachable_key(fake_stripe, merchant, owner)
    fake_stripe.account(key)
    later = credential.next_reverify_at + timedelta(seconds=1)
    credential_reverify(credential_id=credential.pk, now=later)

    credential_verify(credential_id=credential.pk)

    assert reload(credential).verification_state == VerificationState.VERIFIED
    assert mails_about(credential, HELPDESK_SUBMISSION).count() == 2
    assert mails_about(credential, "merchant_verification_result").count() == 2


def test_a_key_still_unreachable_is_not_mailed_again_and_waits_longer_each_round(
    fake_stripe, merchant, owner, sent_tasks
):
    _key, credential = unreachable_key(fake_stripe, merchant, owner)
    waits = []
    for _round in range(1, len(UNREACHABLE_RECHECKS) + 1):
        later = credential.next_reverify_at + timedelta(seconds=1)
        credential_reverify(credential_id=credential.pk, now=later)
        decided = timezone.now()
        credential_verify(credential_id=credential.pk)
        credential = reload(credential)
        waits.append(credential.next_reverify_at - decided)

    assert credential.verification_state == VerificationState.UNREACHABLE
    assert [round(wait / timedelta(minutes=1)) for wait in waits] == [60, 360, 1440, 1440]
    assert mails_about(credential, HELPDESK_SUBMISSION).count() == 1


def test_the_helpdesk_can_verify_a_rejected_key_again_and_it_is_audited(
    fake_stripe, merchant, owner, helpdesk_user, sent_tasks, django_capture_on_commit_callbacks
):
    key = fake_key("sk_test_")
    fake_stripe.reject(key)
    credential = CredentialFactory(merchant=merchant, secret_value=key, submitted_by=owner)
    credential_verify(credential_id=credential.pk)

    with django_capture_on_commit_callbacks(execute=True):
        credential_verify_again(credential=credential, actor=helpdesk_user)

    assert reload(credential).verification_state == VerificationState.PENDING
    assert (VERIFY_TASK, (credential.pk,)) in sent_tasks
    event = AuditEvent.objects.get(action=AuditEvent.Action.KEY_VERIFY_AGAIN)
    assert (event.actor, event.merchant_id) == (helpdesk_user, merchant.pk)


def test_a_merchant_member_or_plain_staff_cannot_verify_again(
    fake_stripe, merchant, owner, sent_tasks
):
    _key, credential = unreachable_key(fake_stripe, merchant, owner)
    for actor in (owner, UserFactory(is_staff=True)):
        with pytest.raises(Refused):
            credential_verify_again(credential=credential, actor=actor)

    assert reload(credential).verification_state == VerificationState.UNREACHABLE
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED).count() == 2


def submit(client, merchant, secret):
    return client.post(
        reverse("credentials:submit", kwargs={"slug": merchant.slug}),
        {
            "publishable_key": fake_key("pk_test_"),
            "secret_key": secret,
            "requested_integrations": ["online_payments"],
            "note": "",
        },
    )


@pytest.mark.parametrize("outcome", ["rejected", "unreachable"])
def test_the_same_key_can_be_submitted_again_after_it_failed(
    fake_stripe, merchant, owner, owner_client, sent_tasks, outcome
):
    key = fake_key("sk_test_")
    if outcome == "rejected":
        fake_stripe.reject(key)
    else:
        fake_stripe.on(key, "/v1/account", error_reply("api_error", key))
    assert submit(owner_client, merchant, key).status_code == 302
    first = Credential.objects.get()
    credential_verify(credential_id=first.pk)

    response = submit(owner_client, merchant, key)

    assert response.status_code == 302
    first = reload(first)
    second = Credential.objects.exclude(pk=first.pk).get()
    assert first.lifecycle_state == LifecycleState.SUPERSEDED
    assert first.replaced_by == second
    assert second.verification_state == VerificationState.PENDING


def test_the_same_key_is_still_a_duplicate_while_it_is_verified(
    fake_stripe, merchant, owner_client, sent_tasks
):
    key = fake_key("sk_test_")
    fake_stripe.account(key)
    submit(owner_client, merchant, key)
    credential_verify(credential_id=Credential.objects.get().pk)

    response = submit(owner_client, merchant, key)

    assert response.status_code == 200
    assert "already stored" in response.content.decode()
    assert Credential.objects.count() == 1


def corrupt(credential):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE credentials_credential SET secret = %s WHERE id = %s",
            [UNDECRYPTABLE, credential.pk],
        )


def test_a_key_the_worker_cannot_decrypt_is_reported_once_instead_of_retried(
    fake_stripe, merchant, owner
):
    credential = CredentialFactory(merchant=merchant, submitted_by=owner)
    corrupt(credential)

    first = credential_verify(credential_id=credential.pk)
    again = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert first.retry_in is None
    assert again.state == "skipped"
    assert credential.verification_state == VerificationState.UNREACHABLE
    assert credential.verification_code == "undecryptable"
    assert credential.verification_reason == REASONS["undecryptable"]
    assert HelpdeskFlag.UNDECRYPTABLE in credential.helpdesk_flags
    assert mails_about(credential, HELPDESK_SUBMISSION).count() == 1


def test_a_verified_key_that_can_no_longer_be_decrypted_is_verified_again_not_pushed_a_day(
    fake_stripe, merchant, owner, sent_tasks
):
    credential = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        verification_state=VerificationState.VERIFIED,
        next_reverify_at=timezone.now() - timedelta(minutes=1),
    )
    corrupt(credential)

    outcome = credential_reverify(credential_id=credential.pk)
    credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert outcome == ReverifyOutcome.VERIFYING_AGAIN
    assert credential.verification_code == "undecryptable"
    assert HelpdeskFlag.UNDECRYPTABLE in credential.helpdesk_flags
    assert credential.next_reverify_at - timezone.now() <= UNREACHABLE_RECHECKS[1]


def test_the_helpdesk_sees_verify_again_on_a_rejected_key_and_uses_it(
    fake_stripe, merchant, owner, helpdesk_user, client_for, sent_tasks
):
    key = fake_key("sk_test_")
    fake_stripe.reject(key)
    credential = CredentialFactory(merchant=merchant, secret_value=key, submitted_by=owner)
    credential_verify(credential_id=credential.pk)
    client = client_for(helpdesk_user)
    page = reverse("admin:credentials_credential_change", args=[credential.pk])

    assert "Verify again" in client.get(page).content.decode()
    response = client.post(
        reverse("admin:credentials_credential_verify_again", args=[credential.pk]), follow=True
    )

    assert response.status_code == 200
    assert "is being verified again" in response.content.decode()
    assert reload(credential).verification_state == VerificationState.PENDING
    assert "Verify again" not in client.get(page).content.decode()


def test_verify_again_is_not_offered_on_a_verified_key_and_refused_if_posted(
    fake_stripe, merchant, owner, helpdesk_user, client_for, sent_tasks
):
    key = fake_key("sk_test_")
    fake_stripe.account(key)
    credential = CredentialFactory(merchant=merchant, secret_value=key, submitted_by=owner)
    credential_verify(credential_id=credential.pk)
    client = client_for(helpdesk_user)

    page = client.get(reverse("admin:credentials_credential_change", args=[credential.pk]))
    response = client.post(
        reverse("admin:credentials_credential_verify_again", args=[credential.pk]), follow=True
    )

    assert "Verify again" not in page.content.decode()
    assert "Only an active key that its provider rejected" in response.content.decode()
    assert reload(credential).verification_state == VerificationState.VERIFIED
