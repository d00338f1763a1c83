"""Re-verification: verified keys are checked again with Stripe every REVERIFY_EVERY.

The sweep queues the due checks spread over its own interval (the broker, which is what
leaves the process, is replaced by a recorder); each check runs credential_reverify with the
real SDK against the fake Stripe. A key Stripe now refuses is flagged and both sides are
told once, however many sweeps follow; a transient failure flags nothing.
"""

import dataclasses
import socket
import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config import celery_app
from credentials.models import Credential, LifecycleState, Mode, VerificationState
from credentials.providers import stripe as stripe_provider
from credentials.providers.stripe import REASONS as STRIPE_REASONS
from credentials.services.checking import REASONS as SHARED_REASONS
from credentials.services.rechecks import (
    REVERIFY_TASK,
    credential_reverify,
    reverifications_queue_due,
)
from credentials.services.verification import credential_verify
from credentials.tasks import reverifications_queue_due as reverifications_queue_due_task
from credentials.tasks import reverify_credential
from mail.models import OutgoingEmail
from mail.services import emails_send_due
from tests.factories import CredentialFactory, MerchantFactory, fake_key
from tests.fake_stripe import account_reply, error_reply
from tests.helpers import reload

# Our own sentences: those every provider shares, and Stripe's.
REASONS = {**SHARED_REASONS, **STRIPE_REASONS}

MERCHANT_MAIL = "merchant_key_no_longer_valid"
HELPDESK_MAIL = "helpdesk_key_no_longer_valid"


@pytest.fixture
def merchant(merchant):
    merchant.contact_email = "accounts@democoffee.test"
    merchant.save(update_fields=["contact_email"])
    return merchant


@pytest.fixture
def sent_tasks(monkeypatch):
    """Record what the sweep publishes to the broker: name, arguments and countdown."""
    sent = []

    def send_task(name, args=None, kwargs=None, countdown=None, **options):
        sent.append((name, tuple(args or ()), countdown))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return sent


@pytest.fixture
def verify(merchant, owner, fake_stripe, django_capture_on_commit_callbacks):
    """Return a function storing `secret` for a merchant and verifying it with Stripe, its
    outcome mails sent as the worker sends them after commit.

    A second key of the same merchant and mode would be a roll, so several keys belong to
    several merchants (`merchant=`).
    """

    def make(secret: str, **fields) -> Credential:
        credential = CredentialFactory(
            merchant=fields.pop("merchant", merchant),
            mode=Mode.LIVE if "_live_" in secret else Mode.TEST,
            secret_value=secret,
            submitted_by=owner,
            **fields,
        )
        with django_capture_on_commit_callbacks(execute=True):
            verified = credential_verify(credential_id=credential.pk)
        assert verified.state == VerificationState.VERIFIED
        mail.outbox.clear()
        return reload(credential)

    return make


@pytest.fixture
def secret():
    return fake_key("sk_live_")


@pytest.fixture
def verified(verify, secret):
    return verify(secret)


def make_due(credential: Credential, ago: timedelta = timedelta(minutes=1)) -> None:
    """Move time forward for this key: its next re-check is now in the past."""
    Credential.objects.filter(pk=credential.pk).update(next_reverify_at=timezone.now() - ago)


def notifications() -> dict[str, int]:
    kinds = OutgoingEmail.objects.filter(kind__in=[MERCHANT_MAIL, HELPDESK_MAIL])
    return {kind: kinds.filter(kind=kind).count() for kind in (MERCHANT_MAIL, HELPDESK_MAIL)}


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_about(value, expected, *, within: timedelta = timedelta(seconds=5)) -> None:
    assert expected - within <= value <= expected + within


# Scheduling


def test_verified_key_is_due_again_after_reverify_every_give_or_take_a_tenth(verified, settings):
    period = timedelta(seconds=settings.REVERIFY_EVERY)

    assert verified.checked_at is not None
    assert verified.checked_at + period * 0.9 <= verified.next_reverify_at
    assert verified.next_reverify_at <= verified.checked_at + period * 1.1


def test_keys_verified_together_come_due_at_different_times(verify):
    keys = [verify(fake_key("sk_test_"), merchant=MerchantFactory()) for _ in range(5)]

    assert len({key.next_reverify_at for key in keys}) == 5


def test_key_rejected_at_submission_is_not_scheduled_for_re_checks(
    fake_stripe, merchant, owner, settings
):
    settings.VERIFY_MAX_ATTEMPTS = 1
    key = fake_key("sk_test_")
    fake_stripe.reject(key)
    credential = CredentialFactory(merchant=merchant, secret_value=key, submitted_by=owner)

    credential_verify(credential_id=credential.pk)

    credential = reload(credential)
    assert credential.verification_state == VerificationState.REJECTED
    assert credential.next_reverify_at is None


# The sweep


def test_sweep_queues_only_verified_or_unreachable_active_keys_that_are_due(
    verify, merchant, owner, sent_tasks, settings
):
    now = timezone.now()
    due = [verify(fake_key("sk_test_"), merchant=MerchantFactory()) for _ in range(3)]
    for minutes, credential in zip((30, 20, 10), due, strict=True):
        Credential.objects.filter(pk=credential.pk).update(
            next_reverify_at=now - timedelta(minutes=minutes)
        )
    not_yet = verify(fake_key("sk_live_"))
    past = now - timedelta(hours=1)
    unreachable = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        next_reverify_at=now - timedelta(hours=2),
        verification_state=VerificationState.UNREACHABLE,
    )
    for fields in (
        {"verification_state": VerificationState.REJECTED},
        {"verification_state": VerificationState.PENDING},
        {"lifecycle_state": LifecycleState.REVOKED, "secret": None},
        {"lifecycle_state": LifecycleState.SUPERSEDED, "secret": None},
    ):
        CredentialFactory(merchant=merchant, submitted_by=owner, next_reverify_at=past, **fields)

    queued = reverifications_queue_due(now=now)

    assert queued == 4
    assert [(name, args) for name, args, _ in sent_tasks] == [
        (REVERIFY_TASK, (credential.pk,)) for credential in (unreachable, *due)
    ]
    assert not_yet.next_reverify_at > now


def test_sweep_spreads_the_checks_over_its_interval(verify, sent_tasks, settings):
    settings.REVERIFY_SWEEP_EVERY = 600
    now = timezone.now()
    keys = [verify(fake_key("sk_test_"), merchant=MerchantFactory()) for _ in range(4)]
    for number, credential in enumerate(keys):
        Credential.objects.filter(pk=credential.pk).update(
            next_reverify_at=now - timedelta(minutes=10 - number)
        )

    reverifications_queue_due(now=now)

    countdowns = [countdown for _, _, countdown in sent_tasks]
    assert countdowns == [0, 150, 300, 450]
    assert max(countdowns) < settings.REVERIFY_SWEEP_EVERY


def test_sweep_queues_at_most_its_limit_the_longest_due_first(verify, sent_tasks, settings):
    settings.REVERIFY_SWEEP_LIMIT = 2
    now = timezone.now()
    keys = [verify(fake_key("sk_test_"), merchant=MerchantFactory()) for _ in range(3)]
    for minutes, credential in zip((10, 30, 20), keys, strict=True):
        Credential.objects.filter(pk=credential.pk).update(
            next_reverify_at=now - timedelta(minutes=minutes)
        )

    assert reverifications_queue_due(now=now) == 2

    assert [args for _, args, _ in sent_tasks] == [(keys[1].pk,), (keys[2].pk,)]


def test_sweep_with_nothing_due_queues_nothing(verified, sent_tasks):
    assert reverifications_queue_due() == 0
    assert sent_tasks == []


def test_sweep_does_not_move_the_due_time_so_a_lost_task_is_queued_again(verified, sent_tasks):
    make_due(verified)

    first = reverifications_queue_due()
    second = reverifications_queue_due()

    assert (first, second) == (1, 1)
    assert [args for _, args, _ in sent_tasks] == [(verified.pk,), (verified.pk,)]


def test_sweep_stops_quietly_when_the_broker_is_down(verify, monkeypatch):
    keys = [verify(fake_key("sk_test_"), merchant=MerchantFactory()) for _ in range(2)]
    for credential in keys:
        make_due(credential)

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker unreachable")

    monkeypatch.setattr(celery_app, "send_task", broker_down)

    assert reverifications_queue_due() == 0
    # Nothing was claimed: the next sweep queues them again.
    assert all(reload(key).next_reverify_at <= timezone.now() for key in keys)


def test_sweep_task_returns_none(verified, sent_tasks):
    make_due(verified)

    result = reverifications_queue_due_task.apply()

    assert result.get() is None
    assert [args for _, args, _ in sent_tasks] == [(verified.pk,)]


# A key Stripe now refuses


@pytest.mark.parametrize(
    ("case", "code"),
    [("invalid_api_key", "invalid_api_key"), ("expired_api_key", "api_key_expired")],
    ids=["rolled-or-deleted", "expired"],
)
def test_key_stripe_now_refuses_is_marked_rejected_with_our_reason(
    verified, secret, fake_stripe, case, code
):
    fake_stripe.reject(secret, case)
    make_due(verified)
    before = timezone.now()

    outcome = credential_reverify(credential_id=verified.pk)

    assert outcome == "rejected"
    credential = reload(verified)
    assert credential.verification_state == VerificationState.REJECTED
    assert credential.verification_code == code
    assert credential.verification_reason == REASONS["no_longer_valid"].format(
        provider="Stripe", reason=REASONS[code]
    )
    assert credential.verification_reason.startswith("Stripe no longer accepts this key")
    assert before <= credential.checked_at <= timezone.now()
    assert credential.next_reverify_at is None
    # Still the merchant's key until a new one replaces it; only its verification changed.
    assert credential.lifecycle_state == LifecycleState.ACTIVE
    assert credential.secret == secret
    assert secret[-4:] in credential.secret_hint
    assert secret[8:-4] not in credential.verification_reason


def test_key_stripe_now_refuses_is_audited_without_the_secret(verified, secret, fake_stripe):
    fake_stripe.reject(secret)
    make_due(verified)

    credential_reverify(credential_id=verified.pk)

    event = AuditEvent.objects.get(action=AuditEvent.Action.KEY_REVERIFICATION)
    assert event.merchant == verified.merchant
    assert event.target == f"live key {verified.secret_hint}"
    assert event.details == {"outcome": "rejected", "code": "invalid_api_key"}
    assert secret[8:-4] not in f"{event.target} {event.details}"


def test_key_stripe_now_refuses_is_told_to_the_merchant_and_the_helpdesk(
    verified, secret, fake_stripe, merchant, owner
):
    fake_stripe.reject(secret)
    make_due(verified)

    credential_reverify(credential_id=verified.pk)

    assert notifications() == {MERCHANT_MAIL: 1, HELPDESK_MAIL: 1}
    told = OutgoingEmail.objects.get(kind=MERCHANT_MAIL)
    assert sorted(told.to) == sorted([owner.email, merchant.contact_email])
    assert told.subject == (
        f"Action needed: Stripe no longer accepts your live key {verified.secret_hint}"
    )
    submit_url = django_settings.SITE_URL + reverse(
        "credentials:submit", kwargs={"slug": merchant.slug}
    )
    assert submit_url in told.body_text
    assert "Stripe no longer accepts this key" in told.body_text
    helpdesk = OutgoingEmail.objects.get(kind=HELPDESK_MAIL)
    assert helpdesk.to == [django_settings.HELPDESK_EMAIL]
    assert merchant.name in helpdesk.subject
    assert verified.secret_hint in helpdesk.body_text
    assert "invalid_api_key" in helpdesk.body_text
    for email in (told, helpdesk):
        for part in (email.subject, email.body_text, email.body_html):
            assert secret not in part
            assert secret[8:-4] not in part


def test_refused_key_is_told_once_however_many_sweeps_follow(
    verified, secret, fake_stripe, sent_tasks, django_capture_on_commit_callbacks
):
    fake_stripe.reject(secret)
    asked_before = len(fake_stripe.requests_for(secret))
    outcomes = []

    for _ in range(4):
        make_due(verified)
        sent_tasks.clear()
        reverifications_queue_due()
        # A worker runs what the sweep queued, and a redelivered copy runs once more.
        with django_capture_on_commit_callbacks(execute=True):
            for _, (pk,), _ in sent_tasks:
                outcomes.append(credential_reverify(credential_id=pk))
            outcomes.append(credential_reverify(credential_id=verified.pk))

    assert outcomes.count("rejected") == 1
    assert set(outcomes) == {"rejected", "not_due"}
    assert len(fake_stripe.requests_for(secret)) - asked_before == 1
    assert notifications() == {MERCHANT_MAIL: 1, HELPDESK_MAIL: 1}
    assert AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REVERIFICATION).count() == 1
    assert emails_send_due() == 0
    no_longer = [m for m in mail.outbox if "no longer" in m.subject]
    assert len(no_longer) == 2
    assert len([m for m in no_longer if m.to == [django_settings.HELPDESK_EMAIL]]) == 1


# Transient failures


def _always_500(fake, key):
    fake.on(key, "/v1/account", error_reply("api_error", key))


def _rate_limited(fake, key):
    fake.on(key, "/v1/account", error_reply("rate_limited", key))


def _slow(fake, key):
    fake.on(key, "/v1/account", dataclasses.replace(account_reply(key), delay=1.0))


def _refused(fake, key):
    return f"http://127.0.0.1:{closed_port()}"


@pytest.mark.parametrize(
    "setup",
    [_always_500, _rate_limited, _refused, _slow],
    ids=["500", "429", "connection-refused", "timeout"],
)
def test_transient_failure_does_not_flag_the_key_and_checks_again_in_an_hour(
    verified, secret, fake_stripe, settings, setup
):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_TIMEOUT_SECONDS = 0.3
    checked_at = verified.checked_at
    base = setup(fake_stripe, secret)
    if base:
        settings.STRIPE_API_BASE = base
    make_due(verified)

    for _ in range(3):
        now = timezone.now()
        outcome = credential_reverify(credential_id=verified.pk)
        assert outcome == "unavailable"
        credential = reload(verified)
        assert_about(credential.next_reverify_at, now + timedelta(hours=1))
        make_due(verified)

    credential = reload(verified)
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.verification_code == "verified"
    assert credential.checked_at == checked_at
    assert credential.lifecycle_state == LifecycleState.ACTIVE
    assert notifications() == {MERCHANT_MAIL: 0, HELPDESK_MAIL: 0}
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REVERIFICATION).exists()


def test_transient_failure_then_a_refusal_flags_the_key_once(
    verified, secret, fake_stripe, settings
):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    fake_stripe.on(
        secret,
        "/v1/account",
        [error_reply("api_error", secret), error_reply("invalid_api_key", secret)],
    )
    make_due(verified)
    assert credential_reverify(credential_id=verified.pk) == "unavailable"
    make_due(verified)

    assert credential_reverify(credential_id=verified.pk) == "rejected"
    assert notifications() == {MERCHANT_MAIL: 1, HELPDESK_MAIL: 1}


# A key that still works


def test_key_that_still_works_stays_verified_and_is_checked_again_in_a_day(
    verified, secret, fake_stripe, settings
):
    fake_stripe.account(secret, charges_enabled=False, payouts_enabled=False)
    make_due(verified, ago=timedelta(hours=2))
    before = timezone.now()

    outcome = credential_reverify(credential_id=verified.pk)

    assert outcome == "still_valid"
    credential = reload(verified)
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.checked_at >= before > verified.checked_at
    period = timedelta(seconds=settings.REVERIFY_EVERY)
    assert before + period * 0.9 <= credential.next_reverify_at
    assert credential.next_reverify_at <= timezone.now() + period * 1.1
    # What Stripe says about the account now is recorded.
    assert credential.charges_enabled is False
    assert credential.payouts_enabled is False
    assert notifications() == {MERCHANT_MAIL: 0, HELPDESK_MAIL: 0}


def test_key_not_due_yet_is_not_checked(verified, secret, fake_stripe):
    asked_before = len(fake_stripe.requests_for(secret))

    assert credential_reverify(credential_id=verified.pk) == "not_due"

    assert len(fake_stripe.requests_for(secret)) == asked_before
    assert reload(verified).next_reverify_at == verified.next_reverify_at


def test_unknown_credential_is_not_due(db):
    assert credential_reverify(credential_id=987654) == "not_due"


# Claims: one check per due key, whoever runs it


def test_second_check_while_the_first_waits_for_stripe_does_not_ask_stripe(
    verified, secret, fake_stripe, monkeypatch
):
    make_due(verified)
    asked_before = len(fake_stripe.requests_for(secret))
    ask_stripe = stripe_provider.stripe_account_facts
    meanwhile = []

    def ask_while_another_worker_runs(key):
        if not meanwhile:
            meanwhile.append(credential_reverify(credential_id=verified.pk))
        return ask_stripe(key)

    monkeypatch.setattr(stripe_provider, "stripe_account_facts", ask_while_another_worker_runs)

    outcome = credential_reverify(credential_id=verified.pk)

    assert (outcome, meanwhile) == ("still_valid", ["not_due"])
    assert len(fake_stripe.requests_for(secret)) - asked_before == 1


@pytest.fixture(scope="module")
def migrated_rows_restored_afterwards(django_db_setup, django_db_blocker):
    """Put back the rows migrations wrote (roles, permissions, groups) once this module's
    transactional test is done: its flush empties every table, and serialized_rollback
    spares that flush from re-creating some of them under new ids."""
    yield
    from django.contrib.contenttypes.models import ContentType

    with django_db_blocker.unblock():
        if not ContentType.objects.exists():
            connection.creation.deserialize_db_from_string(connection._test_serialized_contents)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("migrated_rows_restored_afterwards")
def test_two_concurrent_checks_of_the_same_due_key_ask_stripe_once(verify, fake_stripe):
    secret = fake_key("sk_live_")
    credential = verify(secret)
    make_due(credential)
    fake_stripe.latency = 0.3
    asked_before = len(fake_stripe.requests_for(secret))
    start = threading.Barrier(2)
    outcomes = []

    def check():
        try:
            start.wait()
            outcomes.append(credential_reverify(credential_id=credential.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["not_due", "still_valid"]
    assert len(fake_stripe.requests_for(secret)) - asked_before == 1


# Keys retired while a check waits for Stripe


@pytest.mark.parametrize(
    "answer",
    [
        lambda key: error_reply("invalid_api_key", key),
        lambda key: error_reply("api_error", key),
    ],
    ids=["refused", "stripe-down"],
)
@pytest.mark.parametrize("state", [LifecycleState.REVOKED, LifecycleState.SUPERSEDED])
def test_key_retired_while_its_check_waits_for_stripe_gets_no_mail_and_no_next_check(
    verified, secret, fake_stripe, monkeypatch, settings, answer, state
):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    fake_stripe.on(secret, "/v1/account", answer(secret))
    make_due(verified)
    ask_stripe = stripe_provider.stripe_account_facts

    def ask_then_retire(key):
        try:
            return ask_stripe(key)
        finally:
            Credential.objects.filter(pk=verified.pk).update(
                lifecycle_state=state, secret=None, next_reverify_at=None
            )

    monkeypatch.setattr(stripe_provider, "stripe_account_facts", ask_then_retire)

    credential_reverify(credential_id=verified.pk)

    credential = reload(verified)
    assert credential.lifecycle_state == state
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.next_reverify_at is None
    assert notifications() == {MERCHANT_MAIL: 0, HELPDESK_MAIL: 0}


# The task


def test_reverify_task_takes_an_id_and_returns_none(verified, secret, fake_stripe):
    fake_stripe.reject(secret)
    make_due(verified)

    result = reverify_credential.apply(args=[verified.pk])

    assert result.get() is None
    assert reload(verified).verification_state == VerificationState.REJECTED


def test_reverify_task_for_a_key_still_valid_returns_none(verified):
    make_due(verified)

    assert reverify_credential.apply(args=[verified.pk]).get() is None
    assert reload(verified).verification_state == VerificationState.VERIFIED
