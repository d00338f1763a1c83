"""Verifying a stored key: credential_verify end to end with the real SDK and the fake Stripe.

Each row of DESIGN.md's Verify table is played by the fake server and checked in what is
recorded (state, code, our own sentence, account facts, follow-up clock), in the mails queued
for the merchant and the helpdesk, and in what must never appear anywhere: the key, any long
piece of it, or Stripe's own message.
"""

import dataclasses
import html
import re
import socket
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse
from django.utils import timezone

from config import celery_app
from credentials.models import (
    Credential,
    HelpdeskFlag,
    Kind,
    LifecycleState,
    Mode,
    VerificationState,
)
from credentials.providers import stripe as stripe_provider
from credentials.providers.stripe import REASONS as STRIPE_REASONS
from credentials.services import stale as stale_sweep
from credentials.services.checking import REASONS as SHARED_REASONS
from credentials.services.lifecycle import credential_revoke
from credentials.services.notifications import HELPDESK_SUBMISSION, credential_topic
from credentials.services.stale import verifications_requeue_stale
from credentials.services.submission import VERIFY_TASK
from credentials.services.verification import VerifyResult, credential_verify
from credentials.tasks import verify_credential
from mail.models import OutgoingEmail
from mail.services import emails_send_due
from merchants.models import Integration
from tests.factories import CredentialFactory, fake_key
from tests.fake_stripe import account_reply, error_reply, load_fixture, masked
from tests.helpers import reload

# Our own sentences: those every provider shares, and Stripe's.
REASONS = {**SHARED_REASONS, **STRIPE_REASONS}

MERCHANT_MAIL = "merchant_verification_result"
STRIPE_MESSAGES = [
    spec["body"]["error"]["message"]
    for name, spec in load_fixture("errors").items()
    if not name.startswith("_")
]
NOTE = "Please switch on the terminal in the Leeds shop first."


@pytest.fixture
def merchant(merchant):
    merchant.contact_email = "accounts@democoffee.test"
    merchant.contact_phone = "+44 20 7946 0000"
    merchant.save(update_fields=["contact_email", "contact_phone"])
    return merchant


@pytest.fixture
def submit_key(merchant, owner):
    """Return a function storing `key` as a pending credential submitted by the owner."""

    def make(key: str, *, for_merchant=None, submitted_by=owner, **fields) -> Credential:
        prefix = key[: key.index("_", 3) + 1]
        fields.setdefault(
            "requested_integrations", [Integration.ONLINE_PAYMENTS, Integration.IN_PERSON]
        )
        return CredentialFactory(
            merchant=for_merchant or merchant,
            mode=Mode.LIVE if "_live_" in prefix else Mode.TEST,
            kind=Kind.RESTRICTED if prefix.startswith("rk_") else Kind.SECRET,
            secret_value=key,
            secret_hint=f"{prefix}…{key[-4:]}",
            submitted_by=submitted_by,
            note=NOTE,
            **fields,
        )

    return make


@pytest.fixture
def sent_tasks(monkeypatch):
    """Record what would be published to the broker (the only thing that leaves the process)."""
    sent = []

    def send_task(name, args=None, kwargs=None, **options):
        sent.append((name, tuple(args or ())))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return sent


class RefusingMailBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server unreachable")


def queued_mails(credential: Credential) -> dict[str, OutgoingEmail]:
    mails = OutgoingEmail.objects.filter(topic=credential_topic(credential.pk))
    return {email.kind: email for email in mails}


def mail_texts(email) -> list[str]:
    """Return every part of a queued or sent mail a person could read."""
    if isinstance(email, OutgoingEmail):
        parts = [email.subject, email.body_text, email.body_html]
    else:
        parts = [email.subject, email.body, *(content for content, _ in email.alternatives)]
    return [*parts, *(html.unescape(part) for part in parts)]


def assert_no_piece_of(key: str, texts) -> None:
    """Assert that neither `key`, its masked form nor any 12 characters of its body appear."""
    body = key[key.index("_", 3) + 1 :]
    pieces = {body[i : i + 12] for i in range(len(body) - 11)}
    for text in texts:
        assert key not in text
        assert masked(key) not in text
        for piece in pieces:
            assert piece not in text
        for message in STRIPE_MESSAGES:
            assert message not in text


def is_own_sentence(reason: str) -> bool:
    """Return True if `reason` is one of REASONS, with its placeholders filled in."""
    for template in REASONS.values():
        parts = re.split(r"\{\w+\}", template)
        if re.fullmatch(r"[\w ,'.:]+".join(map(re.escape, parts)), reason):
            return True
    return False


def assert_decided(credential: Credential, *, state: str, code: str, key: str, before) -> None:
    """Assert a recorded outcome: state, code, our own sentence, and the helpdesk's clock."""
    after = timezone.now()
    assert credential.verification_state == state
    assert credential.verification_code == code
    assert is_own_sentence(credential.verification_reason)
    assert_no_piece_of(key, [credential.verification_reason, credential.verification_code])
    assert before <= credential.checked_at <= after
    assert credential.verification_next_attempt_at is None
    # Queued, not sent yet: the follow-up clock starts when the helpdesk's mail goes out.
    assert credential.helpdesk_notified_at is None
    assert credential.followup_due_at is None
    mails = queued_mails(credential)
    assert set(mails) == {MERCHANT_MAIL, HELPDESK_SUBMISSION}
    for email in mails.values():
        assert_no_piece_of(key, mail_texts(email))


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Outcomes


def test_valid_test_key_is_verified_with_the_account_facts_recorded(fake_stripe, submit_key):
    key = fake_key("sk_test_")
    credential = submit_key(key)
    fake_stripe.account(
        key,
        id="acct_1DemoCoffeeTest",
        display_name="Demo Coffee Co",
        country="GB",
        charges_enabled=True,
        payouts_enabled=False,
        details_submitted=True,
    )
    before = timezone.now()

    result = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert result == VerifyResult(state=VerificationState.VERIFIED, retry_in=None)
    assert_decided(credential, state="verified", code="verified", key=key, before=before)
    assert credential.verification_reason == REASONS["verified"]
    assert credential.verification_attempts == 1
    assert credential.account_id == "acct_1DemoCoffeeTest"
    assert credential.account_name == "Demo Coffee Co"
    assert credential.account_country == "GB"
    assert credential.charges_enabled is True
    assert credential.payouts_enabled is False
    assert credential.details_submitted is True
    assert credential.livemode is False
    assert credential.limited_permissions is False
    assert credential.helpdesk_flags == []


def test_valid_live_key_is_verified_in_live_mode(fake_stripe, submit_key):
    key = fake_key("sk_live_")
    credential = submit_key(key)
    fake_stripe.account(key, id="acct_1DemoCoffeeLive", country="DE")
    before = timezone.now()

    credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert_decided(credential, state="verified", code="verified", key=key, before=before)
    assert credential.account_id == "acct_1DemoCoffeeLive"
    assert credential.account_country == "DE"
    assert credential.livemode is True


@pytest.mark.parametrize(
    ("prefix", "setup", "code"),
    [
        ("sk_live_", lambda fake, key: fake.reject(key, "invalid_api_key"), "invalid_api_key"),
        ("sk_live_", lambda fake, key: fake.reject(key, "expired_api_key"), "api_key_expired"),
        (
            "rk_live_",
            lambda fake, key: fake.restricted_without_account_access(key, balance_ok=False),
            "insufficient_permissions",
        ),
    ],
    ids=["invalid", "expired", "restricted-without-access"],
)
def test_key_refused_by_stripe_is_rejected_with_our_own_reason(
    fake_stripe, submit_key, prefix, setup, code
):
    key = fake_key(prefix)
    # No integrations named: a restricted key is then asked only for the balance.
    credential = submit_key(key, requested_integrations=[])
    setup(fake_stripe, key)
    before = timezone.now()

    result = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert result.state == VerificationState.REJECTED
    assert result.retry_in is None
    assert_decided(credential, state="rejected", code=code, key=key, before=before)
    assert credential.verification_reason == REASONS[code]
    assert credential.account_id == ""
    assert credential.livemode is None


def test_a_secret_key_stripe_forbids_is_rejected_saying_the_account_is_held_back(
    fake_stripe, submit_key
):
    key = fake_key("sk_live_")
    credential = submit_key(key)
    fake_stripe.restricted_without_account_access(key, balance_ok=False)

    credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert credential.verification_state == VerificationState.REJECTED
    assert credential.verification_code == "insufficient_permissions"
    assert credential.verification_reason == REASONS["secret_key_forbidden"]
    assert "restricted key" not in credential.verification_reason


def test_restricted_key_with_only_balance_access_is_verified_with_limited_permissions(
    fake_stripe, submit_key
):
    key = fake_key("rk_live_")
    # No integrations named: nothing to probe but the balance (see test_least_privilege.py).
    credential = submit_key(key, requested_integrations=[])
    fake_stripe.restricted_without_account_access(key, balance_ok=True)
    before = timezone.now()

    credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert_decided(credential, state="verified", code="limited_permissions", key=key, before=before)
    assert credential.verification_reason == REASONS["limited_permissions"]
    assert credential.limited_permissions is True
    assert credential.livemode is True
    assert credential.account_id == ""
    assert credential.helpdesk_flags == [HelpdeskFlag.LIMITED_PERMISSIONS]
    helpdesk = queued_mails(credential)[HELPDESK_SUBMISSION]
    assert "Restricted key without access to the account" in helpdesk.body_text


@pytest.mark.parametrize(
    ("prefix", "answered_livemode", "mode_word"),
    [("sk_live_", False, "live"), ("sk_test_", True, "test")],
    ids=["live-key-answered-in-test-mode", "test-key-answered-in-live-mode"],
)
def test_key_whose_account_answers_in_the_other_mode_is_rejected(
    fake_stripe, submit_key, prefix, answered_livemode, mode_word
):
    key = fake_key(prefix)
    credential = submit_key(key)
    fake_stripe.account(key, livemode=answered_livemode)
    before = timezone.now()

    result = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert result.state == VerificationState.REJECTED
    assert_decided(credential, state="rejected", code="livemode_mismatch", key=key, before=before)
    assert credential.verification_reason == REASONS["livemode_mismatch"].format(mode=mode_word)
    assert credential.livemode is answered_livemode


# Transient failures


def test_transient_failure_counts_the_attempt_and_asks_for_a_retry_later(
    fake_stripe, submit_key, settings
):
    settings.VERIFY_RETRY_BASE_SECONDS = 60
    key = fake_key("sk_test_")
    credential = submit_key(key)
    fake_stripe.on(key, "/v1/account", error_reply("rate_limited", key))
    before = timezone.now()

    result = credential_verify(credential_id=credential.pk)

    after = timezone.now()
    credential = reload(credential)
    assert result.state == VerificationState.PENDING
    assert 30 <= result.retry_in <= 60
    assert credential.verification_state == VerificationState.PENDING
    assert credential.verification_attempts == 1
    assert credential.verification_code == "rate_limited"
    assert credential.verification_reason == REASONS["retrying"].format(
        provider="Stripe", what="too many requests at once"
    )
    retry_at = timedelta(seconds=result.retry_in)
    assert before + retry_at <= credential.verification_next_attempt_at <= after + retry_at
    assert credential.checked_at is None
    assert credential.followup_due_at is None
    assert not OutgoingEmail.objects.exists()


def test_retry_before_the_back_off_has_passed_does_nothing(fake_stripe, submit_key, settings):
    settings.VERIFY_RETRY_BASE_SECONDS = 60
    key = fake_key("sk_test_")
    credential = submit_key(key)
    fake_stripe.on(key, "/v1/account", [error_reply("rate_limited", key), account_reply(key)])
    credential_verify(credential_id=credential.pk)

    result = credential_verify(credential_id=credential.pk)

    assert result == VerifyResult(state="skipped")
    assert reload(credential).verification_attempts == 1
    assert len(fake_stripe.requests_for(key)) == 1


def test_back_off_grows_and_the_last_attempt_marks_the_key_unreachable(
    fake_stripe, submit_key, settings
):
    settings.VERIFY_RETRY_BASE_SECONDS = 60
    key = fake_key("sk_live_")
    credential = submit_key(key)
    fake_stripe.on(key, "/v1/account", error_reply("rate_limited", key))
    retry_ins = []

    for attempt in range(1, settings.VERIFY_MAX_ATTEMPTS):
        result = credential_verify(credential_id=credential.pk)
        assert result.state == VerificationState.PENDING
        full = settings.VERIFY_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
        assert full / 2 <= result.retry_in <= full
        retry_ins.append(result.retry_in)
        assert reload(credential).verification_attempts == attempt
        assert reload(credential).verification_next_attempt_at > timezone.now()
        Credential.objects.filter(pk=credential.pk).update(
            verification_next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
    before = timezone.now()
    result = credential_verify(credential_id=credential.pk)

    assert retry_ins == sorted(retry_ins)
    assert retry_ins[-1] > retry_ins[0]
    assert result == VerifyResult(state=VerificationState.UNREACHABLE, retry_in=None)
    credential = reload(credential)
    assert_decided(credential, state="unreachable", code="rate_limited", key=key, before=before)
    assert credential.verification_attempts == settings.VERIFY_MAX_ATTEMPTS
    assert credential.verification_reason == REASONS["unreachable"].format(
        provider="Stripe", attempts=settings.VERIFY_MAX_ATTEMPTS, what="too many requests at once"
    )
    assert len(fake_stripe.requests_for(key)) == settings.VERIFY_MAX_ATTEMPTS
    mails = queued_mails(credential)
    helpdesk = mails[HELPDESK_SUBMISSION]
    assert "Outcome: Stripe could not be reached" in helpdesk.body_text
    assert helpdesk.subject.endswith("Stripe could not be reached")
    merchant_mail = mails[MERCHANT_MAIL]
    assert "We could not verify your Stripe live key" in merchant_mail.subject
    assert "The helpdesk has been told" in merchant_mail.body_text
    assert "there is nothing you need to do" in merchant_mail.body_text
    assert "Submit the new key" not in merchant_mail.body_text


# Each outage: set it up for `key`, returning another Stripe address to use if it needs one.


def _rate_limited(fake, key):
    fake.on(key, "/v1/account", error_reply("rate_limited", key))


def _always_500(fake, key):
    fake.on(key, "/v1/account", error_reply("api_error", key))


def _slow(fake, key):
    fake.on(key, "/v1/account", dataclasses.replace(account_reply(key), delay=1.0))


def _refused(fake, key):
    return f"http://127.0.0.1:{closed_port()}"


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (_rate_limited, "rate_limited"),
        (_always_500, "stripe_error"),
        (_slow, "timed_out"),
        (_refused, "connection_failed"),
    ],
    ids=["429", "500", "timeout", "connection-refused"],
)
def test_each_kind_of_outage_is_retried_then_reported_unreachable(
    fake_stripe, submit_key, settings, setup, code
):
    settings.VERIFY_MAX_ATTEMPTS = 2
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_TIMEOUT_SECONDS = 0.3
    key = fake_key("sk_test_")
    credential = submit_key(key)
    base = setup(fake_stripe, key)
    if base:
        settings.STRIPE_API_BASE = base

    first = credential_verify(credential_id=credential.pk)
    Credential.objects.filter(pk=credential.pk).update(
        verification_next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    before = timezone.now()
    last = credential_verify(credential_id=credential.pk)

    assert first.state == VerificationState.PENDING
    assert first.retry_in is not None
    assert last.state == VerificationState.UNREACHABLE
    assert_decided(reload(credential), state="unreachable", code=code, key=key, before=before)


def test_transient_failure_then_success_verifies_on_the_next_attempt(fake_stripe, submit_key):
    key = fake_key("sk_test_")
    credential = submit_key(key)
    fake_stripe.on(key, "/v1/account", [error_reply("rate_limited", key), account_reply(key)])
    credential_verify(credential_id=credential.pk)
    Credential.objects.filter(pk=credential.pk).update(
        verification_next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    before = timezone.now()

    result = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert result.state == VerificationState.VERIFIED
    assert_decided(credential, state="verified", code="verified", key=key, before=before)
    assert credential.verification_attempts == 2


# Idempotency and claims


def test_verifying_twice_queues_and_sends_one_mail_to_each_side(
    fake_stripe, submit_key, owner, django_capture_on_commit_callbacks
):
    key = fake_key("sk_test_")
    credential = submit_key(key)

    with django_capture_on_commit_callbacks(execute=True):
        first = credential_verify(credential_id=credential.pk)
    with django_capture_on_commit_callbacks(execute=True):
        second = credential_verify(credential_id=credential.pk)

    assert first.state == VerificationState.VERIFIED
    assert second == VerifyResult(state="skipped")
    assert len(fake_stripe.requests_for(key)) == 1
    assert reload(credential).verification_attempts == 1
    assert sorted(OutgoingEmail.objects.values_list("kind", flat=True)) == sorted(
        [HELPDESK_SUBMISSION, MERCHANT_MAIL]
    )
    # Sent right after the outcome was committed; nothing is left for the sweep.
    assert emails_send_due() == 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [owner.email, django_settings.HELPDESK_EMAIL]
    )


def test_running_the_verify_task_twice_sends_one_mail_to_each_side(
    fake_stripe, submit_key, owner, django_capture_on_commit_callbacks
):
    key = fake_key("sk_live_")
    credential = submit_key(key)

    results = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            results.append(verify_credential.apply(args=[credential.pk]))

    assert [result.get() for result in results] == [None, None]
    assert reload(credential).verification_state == VerificationState.VERIFIED
    assert len(fake_stripe.requests_for(key)) == 1
    assert OutgoingEmail.objects.filter(topic=credential_topic(credential.pk)).count() == 2
    assert emails_send_due() == 0
    assert len(mail.outbox) == 2
    assert [m.to for m in mail.outbox if m.to == [owner.email]] == [[owner.email]]
    helpdesk_mails = [m for m in mail.outbox if m.to == [django_settings.HELPDESK_EMAIL]]
    assert len(helpdesk_mails) == 1


def test_credential_claimed_by_another_worker_just_now_is_left_to_it(fake_stripe, submit_key):
    key = fake_key("sk_test_")
    claimed_at = timezone.now()
    credential = submit_key(
        key,
        verification_state=VerificationState.VERIFYING,
        verification_claimed_at=claimed_at,
        verification_attempts=1,
    )

    result = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert result == VerifyResult(state="skipped")
    assert credential.verification_state == VerificationState.VERIFYING
    assert credential.verification_claimed_at == claimed_at
    assert credential.verification_attempts == 1
    assert fake_stripe.requests_for(key) == []
    assert not OutgoingEmail.objects.exists()


def test_stale_claim_of_a_dead_worker_is_taken_over(fake_stripe, submit_key, settings):
    key = fake_key("sk_test_")
    credential = submit_key(
        key,
        verification_state=VerificationState.VERIFYING,
        verification_claimed_at=timezone.now()
        - timedelta(seconds=settings.VERIFY_STALE_AFTER + 60),
        verification_attempts=1,
    )

    result = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert result.state == VerificationState.VERIFIED
    assert credential.verification_attempts == 2
    assert len(fake_stripe.requests_for(key)) == 1
    assert len(queued_mails(credential)) == 2


@pytest.mark.parametrize("lifecycle_state", [LifecycleState.REVOKED, LifecycleState.SUPERSEDED])
def test_credential_no_longer_active_is_not_verified(fake_stripe, submit_key, lifecycle_state):
    key = fake_key("sk_live_")
    credential = submit_key(key, lifecycle_state=lifecycle_state, secret=None)

    result = credential_verify(credential_id=credential.pk)

    assert result == VerifyResult(state="skipped")
    credential = reload(credential)
    assert credential.verification_state == VerificationState.PENDING
    assert credential.verification_attempts == 0
    assert fake_stripe.requests == []
    assert not OutgoingEmail.objects.exists()


def test_credential_already_decided_is_not_verified_again(fake_stripe, submit_key):
    key = fake_key("sk_test_")
    credential = submit_key(
        key, verification_state=VerificationState.REJECTED, verification_code="invalid_api_key"
    )

    result = credential_verify(credential_id=credential.pk)

    assert result == VerifyResult(state="skipped")
    assert reload(credential).verification_code == "invalid_api_key"
    assert fake_stripe.requests == []
    assert not OutgoingEmail.objects.exists()


def _meanwhile(monkeypatch, change):
    """Make `change` happen while Stripe (the real call, to the fake server) is being asked."""
    ask_stripe = stripe_provider.stripe_account_facts

    def ask_then_change(secret):
        facts = ask_stripe(secret)
        change()
        return facts

    monkeypatch.setattr(stripe_provider, "stripe_account_facts", ask_then_change)


def test_outcome_is_discarded_when_another_worker_took_the_claim_over_meanwhile(
    fake_stripe, submit_key, monkeypatch
):
    key = fake_key("sk_test_")
    credential = submit_key(key)
    taken_over_at = timezone.now() + timedelta(seconds=5)
    _meanwhile(
        monkeypatch,
        lambda: Credential.objects.filter(pk=credential.pk).update(
            verification_claimed_at=taken_over_at
        ),
    )

    result = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert result == VerifyResult(state="skipped")
    assert credential.verification_state == VerificationState.VERIFYING
    assert credential.checked_at is None
    assert not OutgoingEmail.objects.exists()


def test_key_revoked_while_stripe_is_asked_gets_no_outcome_and_no_mail(
    fake_stripe, submit_key, monkeypatch
):
    key = fake_key("sk_live_")
    credential = submit_key(key)
    _meanwhile(
        monkeypatch,
        lambda: Credential.objects.filter(pk=credential.pk).update(
            lifecycle_state=LifecycleState.REVOKED, secret=None
        ),
    )

    result = credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert result == VerifyResult(state="skipped")
    assert len(fake_stripe.requests_for(key)) == 1
    assert credential.verification_state != VerificationState.VERIFIED
    assert credential.checked_at is None
    assert credential.followup_due_at is None
    assert not OutgoingEmail.objects.exists()


def test_unknown_credential_id_is_skipped(db):
    assert credential_verify(credential_id=987654) == VerifyResult(state="skipped")


# Helpdesk flags


def test_same_key_active_at_another_merchant_is_flagged_to_the_helpdesk_only(
    fake_stripe, submit_key, other_merchant, other_owner
):
    key = fake_key("sk_live_")
    submit_key(key, for_merchant=other_merchant, submitted_by=other_owner)
    credential = submit_key(key)

    credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert credential.helpdesk_flags == [HelpdeskFlag.DUPLICATE_ELSEWHERE]
    mails = queued_mails(credential)
    helpdesk = mails[HELPDESK_SUBMISSION]
    assert "The same key is active at another merchant" in helpdesk.body_text
    assert "The same key is active at another merchant" in html.unescape(helpdesk.body_html)
    assert "please check" in helpdesk.subject
    for text in mail_texts(mails[MERCHANT_MAIL]):
        assert "another merchant" not in text
        assert other_merchant.name not in text
        assert other_merchant.slug not in text
        assert other_owner.email not in text


def test_same_key_revoked_at_another_merchant_is_not_flagged(
    fake_stripe, submit_key, other_merchant
):
    key = fake_key("sk_live_")
    submit_key(
        key, for_merchant=other_merchant, lifecycle_state=LifecycleState.REVOKED, secret=None
    )
    credential = submit_key(key)

    credential_verify(credential_id=credential.pk)

    assert reload(credential).helpdesk_flags == []


def test_test_and_live_keys_of_different_stripe_accounts_are_flagged(fake_stripe, submit_key):
    test_key, live_key = fake_key("sk_test_"), fake_key("sk_live_")
    fake_stripe.account(test_key, id="acct_1DemoCoffee")
    fake_stripe.account(live_key, id="acct_1SomeoneElse")
    test_credential, live_credential = submit_key(test_key), submit_key(live_key)

    credential_verify(credential_id=test_credential.pk)
    credential_verify(credential_id=live_credential.pk)

    live_credential = reload(live_credential)
    assert live_credential.helpdesk_flags == [HelpdeskFlag.ACCOUNT_MISMATCH]
    helpdesk = queued_mails(live_credential)[HELPDESK_SUBMISSION]
    assert "Test and live keys belong to different accounts" in helpdesk.body_text
    for text in mail_texts(queued_mails(live_credential)[MERCHANT_MAIL]):
        assert "different accounts" not in text


def test_test_and_live_keys_of_the_same_stripe_account_are_not_flagged(fake_stripe, submit_key):
    test_key, live_key = fake_key("sk_test_"), fake_key("sk_live_")
    fake_stripe.account(test_key, id="acct_1DemoCoffee")
    fake_stripe.account(live_key, id="acct_1DemoCoffee")
    test_credential, live_credential = submit_key(test_key), submit_key(live_key)

    credential_verify(credential_id=test_credential.pk)
    credential_verify(credential_id=live_credential.pk)

    assert reload(test_credential).helpdesk_flags == []
    assert reload(live_credential).helpdesk_flags == []


# Mails


def test_merchant_mail_for_a_verified_key_gives_the_account_facts(
    fake_stripe, submit_key, owner, merchant, django_capture_on_commit_callbacks
):
    key = fake_key("sk_live_")
    credential = submit_key(key)
    fake_stripe.account(key, id="acct_1DemoCoffeeLive", display_name="Demo Coffee Co", country="GB")

    with django_capture_on_commit_callbacks(execute=True):
        credential_verify(credential_id=credential.pk)

    [sent] = [m for m in mail.outbox if m.to == [owner.email]]
    assert sent.subject == f"Your Stripe live key {credential.secret_hint} is verified"
    assert "acct_1DemoCoffeeLive (Demo Coffee Co), GB" in sent.body
    assert "Charges enabled: yes" in sent.body
    assert "Payouts enabled: yes" in sent.body
    assert "Online payments, In-person / terminal" in sent.body
    [(html_body, _)] = sent.alternatives
    assert "acct_1DemoCoffeeLive" in html_body
    assert NOTE not in sent.body
    assert_no_piece_of(key, mail_texts(sent))


def test_merchant_mail_for_a_rejected_key_says_to_check_or_roll_it_and_links_to_submit(
    fake_stripe, submit_key, owner, merchant, settings, django_capture_on_commit_callbacks
):
    key = fake_key("sk_live_")
    credential = submit_key(key)
    fake_stripe.reject(key, "invalid_api_key")

    with django_capture_on_commit_callbacks(execute=True):
        credential_verify(credential_id=credential.pk)

    [sent] = [m for m in mail.outbox if m.to == [owner.email]]
    submit_url = settings.SITE_URL + reverse("credentials:submit", kwargs={"slug": merchant.slug})
    assert sent.subject.startswith("Action needed: Stripe did not accept your live key")
    assert REASONS["invalid_api_key"] in sent.body
    assert "roll it" in sent.body
    assert submit_url in sent.body
    [(html_body, _)] = sent.alternatives
    assert f'href="{submit_url}"' in html_body
    assert_no_piece_of(key, mail_texts(sent))


def test_helpdesk_mail_gives_everything_the_helpdesk_needs_without_the_secret(
    fake_stripe, submit_key, merchant, settings, django_capture_on_commit_callbacks
):
    key = fake_key("sk_live_")
    credential = submit_key(key)
    fake_stripe.account(key, id="acct_1DemoCoffeeLive", display_name="Demo Coffee Co")

    with django_capture_on_commit_callbacks(execute=True):
        credential_verify(credential_id=credential.pk)

    [sent] = [m for m in mail.outbox if m.to == [settings.HELPDESK_EMAIL]]
    admin_url = settings.SITE_URL + reverse(
        "admin:credentials_credential_change", args=[credential.pk]
    )
    assert admin_url.startswith(settings.SITE_URL + "/")
    assert merchant.name in sent.subject
    assert credential.secret_hint in sent.subject
    [(html_body, _)] = sent.alternatives
    for body in (sent.body, html.unescape(html_body)):
        assert merchant.name in body
        assert merchant.contact_email in body
        assert merchant.contact_phone in body
        assert "Online payments, In-person / terminal" in body
        assert "Live" in body
        assert "Secret key" in body
        assert credential.secret_hint in body
        assert "Verified" in body
        assert "acct_1DemoCoffeeLive" in body
        assert NOTE in body
        assert admin_url in body
    assert f"Outcome: Verified — {REASONS['verified']}" in sent.body
    assert_no_piece_of(key, mail_texts(sent))


def test_helpdesk_mail_is_still_sent_when_the_submitter_has_left(fake_stripe, submit_key):
    key = fake_key("sk_test_")
    credential = submit_key(key, submitted_by=None)

    credential_verify(credential_id=credential.pk)

    assert set(queued_mails(credential)) == {HELPDESK_SUBMISSION}
    assert "a former member" in queued_mails(credential)[HELPDESK_SUBMISSION].body_text


def test_helpdesk_is_recorded_as_notified_only_once_its_mail_was_sent(
    fake_stripe, submit_key, settings
):
    key = fake_key("sk_test_")
    credential = submit_key(key)
    credential_verify(credential_id=credential.pk)
    assert reload(credential).helpdesk_notified_at is None

    settings.EMAIL_BACKEND = f"{__name__}.RefusingMailBackend"
    assert emails_send_due() == 0
    assert reload(credential).helpdesk_notified_at is None
    assert not OutgoingEmail.objects.filter(state=OutgoingEmail.State.SENT).exists()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    OutgoingEmail.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    before = timezone.now()
    assert emails_send_due() == 2

    notified_at = reload(credential).helpdesk_notified_at
    assert notified_at is not None
    assert before <= notified_at <= timezone.now()
    assert len(mail.outbox) == 2


# Requeueing what no worker is doing


def test_pending_credential_older_than_stale_after_is_queued_and_a_fresh_one_is_not(
    submit_key, settings, sent_tasks
):
    now = timezone.now()
    stale_at = now - timedelta(seconds=settings.VERIFY_STALE_AFTER + 1)
    stale = submit_key(fake_key("sk_test_"), submitted_at=stale_at)
    stale_retry = submit_key(fake_key("sk_live_"), verification_next_attempt_at=stale_at)
    recently = now - timedelta(seconds=10)
    fresh = submit_key(
        fake_key("sk_test_"), submitted_at=recently, verification_next_attempt_at=recently
    )

    queued = verifications_requeue_stale(now=now)

    assert queued == 2
    assert sorted(sent_tasks) == sorted(
        [(VERIFY_TASK, (stale.pk,)), (VERIFY_TASK, (stale_retry.pk,))]
    )
    assert reload(stale).verification_next_attempt_at == now
    assert reload(stale_retry).verification_next_attempt_at == now
    assert reload(fresh).verification_next_attempt_at == recently


def test_verifying_credential_with_a_stale_claim_is_released_and_queued(
    fake_stripe, submit_key, settings, sent_tasks
):
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.VERIFY_STALE_AFTER + 60)
    key = fake_key("sk_test_")
    dead = submit_key(
        key,
        submitted_at=long_ago,
        verification_next_attempt_at=long_ago,
        verification_state=VerificationState.VERIFYING,
        verification_claimed_at=long_ago,
        verification_attempts=1,
    )
    busy = submit_key(
        fake_key("sk_live_"),
        submitted_at=long_ago,
        verification_next_attempt_at=long_ago,
        verification_state=VerificationState.VERIFYING,
        verification_claimed_at=now,
        verification_attempts=1,
    )

    queued = verifications_requeue_stale(now=now)

    assert queued == 1
    assert sent_tasks == [(VERIFY_TASK, (dead.pk,))]
    dead = reload(dead)
    assert dead.verification_state == VerificationState.PENDING
    assert dead.verification_next_attempt_at == now
    assert reload(busy).verification_state == VerificationState.VERIFYING
    # The queued task then verifies it.
    assert credential_verify(credential_id=dead.pk).state == VerificationState.VERIFIED


def test_requeueing_twice_in_a_row_queues_once(submit_key, settings, sent_tasks):
    now = timezone.now()
    credential = submit_key(
        fake_key("sk_test_"),
        submitted_at=now - timedelta(seconds=settings.VERIFY_STALE_AFTER + 1),
    )

    first = verifications_requeue_stale(now=now)
    second = verifications_requeue_stale(now=now + timedelta(seconds=1))

    assert (first, second) == (1, 0)
    assert sent_tasks == [(VERIFY_TASK, (credential.pk,))]


def test_decided_and_inactive_credentials_are_not_requeued(submit_key, settings, sent_tasks):
    long_ago = timezone.now() - timedelta(seconds=settings.VERIFY_STALE_AFTER + 60)
    submit_key(
        fake_key("sk_test_"), submitted_at=long_ago, verification_state=VerificationState.VERIFIED
    )
    submit_key(
        fake_key("sk_live_"),
        submitted_at=long_ago,
        lifecycle_state=LifecycleState.REVOKED,
        secret=None,
    )

    assert verifications_requeue_stale() == 0
    assert sent_tasks == []


def test_more_stale_keys_than_one_sweep_takes_are_queued_once_each_the_longest_waiting_first(
    submit_key, settings, sent_tasks, monkeypatch
):
    monkeypatch.setattr(stale_sweep, "SWEEP_LIMIT", 2)
    now = timezone.now()

    def waiting_since(minutes: int):
        return now - timedelta(seconds=settings.VERIFY_STALE_AFTER, minutes=minutes)

    def pending(minutes: int, **fields):
        return submit_key(fake_key("sk_test_"), submitted_at=waiting_since(minutes), **fields)

    def abandoned(minutes: int):
        return pending(
            60,
            verification_next_attempt_at=waiting_since(60),
            verification_state=VerificationState.VERIFYING,
            verification_claimed_at=waiting_since(minutes),
            verification_attempts=1,
        )

    # Pending since submission (never queued), pending after a lost retry, and claimed by
    # workers that died: interleaved by how long each has waited.
    keys = [
        pending(50, verification_next_attempt_at=None),
        abandoned(40),
        pending(90, verification_next_attempt_at=waiting_since(30)),
        abandoned(20),
        pending(10, verification_next_attempt_at=None),
    ]

    runs = [verifications_requeue_stale(now=now) for _ in range(4)]

    assert runs == [2, 2, 1, 0]
    assert sent_tasks == [(VERIFY_TASK, (key.pk,)) for key in keys]


def test_the_stale_sweep_never_puts_back_to_wait_a_key_revoked_while_it_runs(
    submit_key, owner, settings, monkeypatch
):
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.VERIFY_STALE_AFTER + 60)
    stale = {
        "submitted_at": long_ago,
        "verification_state": VerificationState.VERIFYING,
        "verification_claimed_at": long_ago,
        "verification_attempts": 1,
    }
    keys = [submit_key(fake_key("sk_test_"), **stale), submit_key(fake_key("sk_live_"), **stale)]
    queued = []

    def enqueue(name, pk, **options):
        # While the sweep works through its list, the merchant reports the other key.
        queued.append(pk)
        for other in keys:
            if other.pk != pk and reload(other).is_active:
                credential_revoke(credential=reload(other), actor=owner, reason="")
        return True

    monkeypatch.setattr(stale_sweep, "enqueue", enqueue)

    assert verifications_requeue_stale(now=now) == 1

    (revoked,) = [reload(key) for key in keys if key.pk not in queued]
    assert revoked.lifecycle_state == LifecycleState.REVOKED
    assert revoked.verification_state == VerificationState.NOT_VERIFIED
    assert revoked.verification_claimed_at is None
    assert revoked.verification_next_attempt_at is None


def test_the_migration_settles_retired_keys_left_waiting_and_leaves_active_ones(submit_key):
    superseded = submit_key(
        fake_key("sk_test_"), lifecycle_state=LifecycleState.SUPERSEDED, secret=None
    )
    revoked = submit_key(
        fake_key("sk_live_"),
        lifecycle_state=LifecycleState.REVOKED,
        secret=None,
        verification_state=VerificationState.VERIFYING,
        verification_claimed_at=timezone.now(),
    )
    rejected = submit_key(
        fake_key("sk_test_"),
        lifecycle_state=LifecycleState.SUPERSEDED,
        secret=None,
        verification_state=VerificationState.REJECTED,
    )
    waiting = submit_key(fake_key("sk_test_"))
    migration = import_module("credentials.migrations.0006_retired_keys_not_verified")

    migration.settle_retired_verifications(django_apps, None)

    assert reload(superseded).verification_state == VerificationState.NOT_VERIFIED
    assert reload(revoked).verification_state == VerificationState.NOT_VERIFIED
    assert reload(revoked).verification_claimed_at is None
    assert reload(rejected).verification_state == VerificationState.REJECTED
    assert reload(waiting).verification_state == VerificationState.PENDING
