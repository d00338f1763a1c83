"""The outbox: each mail stored once, sent once, and never recorded as sent before it was."""

import smtplib
from collections import defaultdict
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import IntegrityError, transaction
from django.utils import timezone

from credentials.models import VerificationState
from credentials.services.notifications import HELPDESK_REMINDER, credential_topic
from mail import services
from mail.compose import email_compose, message_id
from mail.models import OutgoingEmail
from mail.services import (
    EMAIL_SEND_LEASE,
    email_enqueue,
    email_send,
    emails_cancel,
    emails_enqueue,
    emails_send_due,
    on_sent,
)
from tests.factories import CredentialFactory

pytestmark = pytest.mark.django_db

BACKENDS = "tests.mail.test_services"


class FailingThenWorkingBackend(EmailBackend):
    """The locmem backend behind a mail server that hangs up the first `failures` times."""

    failures = 0
    calls = 0

    def send_messages(self, messages):
        cls = type(self)
        cls.calls += 1
        if cls.failures > 0:
            cls.failures -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


class WorkerDied(BaseException):
    """What a killed worker looks like from inside: nothing after this line runs."""


class DyingBackend(EmailBackend):
    """A mail server that is reached, but the worker dies before it answers."""

    def send_messages(self, messages):
        raise WorkerDied


class StateRecordingBackend(EmailBackend):
    """The locmem backend that records each mail's stored state while the server has it."""

    seen: list = []

    def send_messages(self, messages):
        type(self).seen.extend(OutgoingEmail.objects.values_list("state", "sent_at").order_by("pk"))
        return super().send_messages(messages)


class SecondWorkerBackend(EmailBackend):
    """The locmem backend during whose send a second worker tries the same mail."""

    second_worker_sent: list = []

    def send_messages(self, messages):
        email = OutgoingEmail.objects.get()
        type(self).second_worker_sent.append(email_send(email_id=email.pk))
        return super().send_messages(messages)


class ConnectionCountingBackend(EmailBackend):
    """The locmem backend that counts the connections opened to the mail server."""

    opened = 0

    def open(self):
        type(self).opened += 1
        return super().open()


class HangsUpAfterOneBackend(EmailBackend):
    """A mail server that accepts one message per connection, then hangs up."""

    def open(self):
        self.accepted = 0

    def send_messages(self, messages):
        if self.accepted:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        self.accepted += len(messages)
        return super().send_messages(messages)


class RefusesFirstMessageBackend(EmailBackend):
    """A mail server that answers "451 try again later" to the first message it is given."""

    refused = False

    def send_messages(self, messages):
        if not type(self).refused:
            type(self).refused = True
            raise smtplib.SMTPDataError(451, b"4.3.0 Try again later")
        return super().send_messages(messages)


@pytest.fixture
def flaky_mail_server(settings):
    """Return a function that makes the mail server fail its next `failures` sends."""
    settings.EMAIL_BACKEND = f"{BACKENDS}.FailingThenWorkingBackend"
    FailingThenWorkingBackend.calls = 0

    def fail_next(failures):
        FailingThenWorkingBackend.failures = failures

    yield fail_next
    FailingThenWorkingBackend.failures = 0


@pytest.fixture
def clock(monkeypatch):
    """Return a function that moves the services' clock forward by a timedelta."""
    offset = timedelta()
    real_now = timezone.now

    def advance(by: timedelta):
        nonlocal offset
        offset += by

    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)
    return advance


@pytest.fixture
def credential(db):
    return CredentialFactory(verification_state=VerificationState.VERIFIED)


def reminder(
    credential, *, dedupe_key="reminder:test:1", kind=HELPDESK_REMINDER, topic=None
) -> dict:
    """Return the arguments of a reminder mail about `credential` (its topic unless given)."""
    return {
        "dedupe_key": dedupe_key,
        "kind": kind,
        "to": [settings.HELPDESK_EMAIL],
        "template": "helpdesk_reminder",
        "context": {
            "credential": credential,
            "merchant": credential.merchant,
            "number": 1,
            "admin_url": "http://testserver/admin/",
        },
        "topic": credential_topic(credential.pk) if topic is None else topic,
    }


def enqueue(credential, **mail) -> OutgoingEmail | None:
    return email_enqueue(**reminder(credential, **mail))


def compose(credential, dedupe_key: str) -> OutgoingEmail:
    return email_compose(**reminder(credential, dedupe_key=dedupe_key))


def stored(email) -> OutgoingEmail:
    return OutgoingEmail.objects.get(pk=email.pk)


# Stored once


def test_enqueue_stores_a_pending_mail_rendered_from_the_templates(credential):
    email = enqueue(credential)

    email = stored(email)
    assert email.state == OutgoingEmail.State.PENDING
    assert email.sent_at is None
    assert email.attempts == 0
    assert email.to == [settings.HELPDESK_EMAIL]
    assert email.topic == credential_topic(credential.pk)
    assert credential.secret_hint in email.subject
    assert credential.secret_hint in email.body_text
    assert credential.secret_hint in email.body_html
    assert credential.secret not in email.body_text + email.body_html + email.subject


def test_enqueue_with_the_same_dedupe_key_twice_stores_one_mail_and_returns_none(credential):
    first = enqueue(credential)

    second = enqueue(credential)

    assert first is not None
    assert second is None
    assert OutgoingEmail.objects.count() == 1


def test_a_batch_with_one_mail_stored_before_stores_only_the_new_one(credential):
    enqueue(credential, dedupe_key="reminder:test:1")

    with transaction.atomic():
        stored_now = emails_enqueue(
            [compose(credential, "reminder:test:1"), compose(credential, "reminder:test:2")]
        )
        # The duplicate did not break the caller's transaction.
        assert OutgoingEmail.objects.count() == 2

    assert [email.dedupe_key for email in stored_now] == ["reminder:test:2"]
    assert stored(stored_now[0]).subject == stored_now[0].subject


def test_enqueue_with_another_dedupe_key_stores_another_mail(credential):
    enqueue(credential, dedupe_key="reminder:test:1")

    assert enqueue(credential, dedupe_key="reminder:test:2") is not None

    assert OutgoingEmail.objects.count() == 2


# Sent once, and only once the server accepted it


def test_send_delivers_the_mail_and_marks_it_sent(credential):
    email = enqueue(credential)
    before = timezone.now()

    assert email_send(email_id=email.pk) is True

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [settings.HELPDESK_EMAIL]
    assert message.subject == email.subject
    assert message.body == email.body_text
    assert message.alternatives[0][0] == email.body_html
    email = stored(email)
    assert email.state == OutgoingEmail.State.SENT
    assert before <= email.sent_at <= timezone.now()
    assert email.attempts == 1
    assert email.last_error == ""


def test_send_marks_the_mail_sent_only_after_the_server_accepted_it(settings, credential):
    settings.EMAIL_BACKEND = f"{BACKENDS}.StateRecordingBackend"
    StateRecordingBackend.seen = []
    email = enqueue(credential)

    email_send(email_id=email.pk)

    assert StateRecordingBackend.seen == [(OutgoingEmail.State.PENDING, None)]
    assert stored(email).state == OutgoingEmail.State.SENT


def test_a_sent_mail_is_not_sent_again(credential):
    email = enqueue(credential)
    email_send(email_id=email.pk)

    assert email_send(email_id=email.pk) is False
    assert emails_send_due() == 0

    assert len(mail.outbox) == 1
    assert stored(email).attempts == 1


def test_a_second_worker_cannot_send_a_mail_while_the_first_holds_it(settings, credential):
    settings.EMAIL_BACKEND = f"{BACKENDS}.SecondWorkerBackend"
    SecondWorkerBackend.second_worker_sent = []
    email = enqueue(credential)

    assert email_send(email_id=email.pk) is True

    assert SecondWorkerBackend.second_worker_sent == [False]
    assert len(mail.outbox) == 1
    assert stored(email).attempts == 1


# Telling the sender once its mail went out


HOOKED = "hooked_notice"


@pytest.fixture
def told(monkeypatch):
    """Return the calls of a hook on mail of kind HOOKED, each (dedupe keys, sent_at).

    The hook goes into an empty registry, gone after the test.
    """
    monkeypatch.setattr(services, "_SENT_HOOKS", defaultdict(list))
    calls = []

    @on_sent(HOOKED)
    def record(emails, sent_at):
        calls.append(([email.dedupe_key for email in emails], sent_at))

    return calls


def test_a_hook_runs_once_for_each_sent_mail_of_its_kind_with_when_it_was_sent(told, credential):
    hooked = [enqueue(credential, dedupe_key=f"hooked:{n}", kind=HOOKED) for n in (1, 2)]
    enqueue(credential, dedupe_key="other:1")

    assert emails_send_due() == 3

    assert told == [
        (["hooked:1"], stored(hooked[0]).sent_at),
        (["hooked:2"], stored(hooked[1]).sent_at),
    ]


def test_a_failing_hook_does_not_undo_the_record_that_the_mail_went_out(
    monkeypatch, credential, caplog
):
    calls = []
    monkeypatch.setattr("mail.services._SENT_HOOKS", defaultdict(list))

    @on_sent(HOOKED)
    def broken(emails, sent_at):
        calls.append(emails)
        raise RuntimeError("the hook failed")

    email = enqueue(credential, kind=HOOKED)

    assert email_send(email_id=email.pk) is True

    assert stored(email).state == OutgoingEmail.State.SENT
    assert len(calls) == 1
    assert "A hook on sent mail" in caplog.text
    assert emails_send_due() == 0
    assert len(mail.outbox) == 1


def test_what_a_failing_hook_wrote_is_undone_and_the_mail_still_recorded_as_sent(
    monkeypatch, credential, caplog
):
    monkeypatch.setattr("mail.services._SENT_HOOKS", defaultdict(list))

    @on_sent(HOOKED)
    def half_done(emails, sent_at):
        type(credential).objects.filter(pk=credential.pk).update(note="written by the hook")
        raise RuntimeError("the hook failed after writing")

    email = enqueue(credential, kind=HOOKED)

    assert email_send(email_id=email.pk) is True

    assert stored(email).state == OutgoingEmail.State.SENT
    credential.refresh_from_db()
    assert credential.note != "written by the hook"
    assert "A hook on sent mail" in caplog.text


def test_a_hook_does_not_run_for_a_mail_the_server_did_not_take(
    flaky_mail_server, told, credential
):
    flaky_mail_server(1)
    email = enqueue(credential, kind=HOOKED)

    assert email_send(email_id=email.pk) is False

    assert told == []


# Cancelled before it went out


def test_cancel_cancels_only_the_unsent_mail_of_that_kind_about_that_topic(credential):
    sent = enqueue(credential, dedupe_key="reminder:sent")
    email_send(email_id=sent.pk)
    cancelled = enqueue(credential, dedupe_key="reminder:pending")
    other_kind = enqueue(credential, dedupe_key="other-kind", kind="another_kind")
    other_topic = enqueue(credential, dedupe_key="other-topic", topic="credential:0")

    assert emails_cancel(topic=credential_topic(credential.pk), kind=HELPDESK_REMINDER) == 1

    assert stored(cancelled).state == OutgoingEmail.State.CANCELLED
    assert stored(sent).state == OutgoingEmail.State.SENT
    assert stored(other_kind).state == OutgoingEmail.State.PENDING
    assert stored(other_topic).state == OutgoingEmail.State.PENDING


def test_a_cancelled_mail_is_never_sent(credential):
    email = enqueue(credential)
    emails_cancel(topic=credential_topic(credential.pk), kind=HELPDESK_REMINDER)

    assert email_send(email_id=email.pk) is False
    assert emails_send_due() == 0

    assert mail.outbox == []
    assert stored(email).state == OutgoingEmail.State.CANCELLED


# A failing mail server


def test_a_failed_send_keeps_the_mail_pending_with_the_error_and_a_later_attempt(
    flaky_mail_server, credential
):
    flaky_mail_server(1)
    email = enqueue(credential)
    before = timezone.now()

    assert email_send(email_id=email.pk) is False

    after = timezone.now()
    email = stored(email)
    assert email.state == OutgoingEmail.State.PENDING
    assert email.sent_at is None
    assert email.attempts == 1
    assert email.last_error == "SMTPServerDisconnected"
    first_delay = timedelta(seconds=settings.EMAIL_RETRY_BASE_SECONDS)
    assert before + first_delay <= email.next_attempt_at <= after + first_delay
    assert mail.outbox == []


def test_a_failed_mail_is_not_tried_again_before_its_retry_time(flaky_mail_server, credential):
    flaky_mail_server(1)
    email = enqueue(credential)
    email_send(email_id=email.pk)

    assert email_send(email_id=email.pk) is False
    assert emails_send_due() == 0

    assert FailingThenWorkingBackend.calls == 1
    assert stored(email).attempts == 1


def test_each_failure_pushes_the_next_attempt_back_twice_as_far(
    flaky_mail_server, clock, credential
):
    flaky_mail_server(4)
    email = enqueue(credential)
    base = timedelta(seconds=settings.EMAIL_RETRY_BASE_SECONDS)
    for failure in range(4):
        before = timezone.now()
        assert email_send(email_id=email.pk) is False
        after = timezone.now()
        retry_at = stored(email).next_attempt_at
        delay = base * 2**failure
        assert before + delay <= retry_at <= after + delay
        clock(retry_at - after)

    email = stored(email)
    assert (email.state, email.attempts, email.sent_at) == (OutgoingEmail.State.PENDING, 4, None)


def test_when_the_server_recovers_the_due_mail_is_sent_exactly_once(
    flaky_mail_server, clock, credential
):
    flaky_mail_server(2)
    email = enqueue(credential)
    email_send(email_id=email.pk)
    clock(timedelta(minutes=1))
    assert emails_send_due() == 0  # the second failure
    clock(timedelta(minutes=1))

    assert emails_send_due() == 1
    assert emails_send_due() == 0
    clock(timedelta(hours=2))
    assert emails_send_due() == 0

    assert len(mail.outbox) == 1
    assert FailingThenWorkingBackend.calls == 3
    email = stored(email)
    assert email.state == OutgoingEmail.State.SENT
    assert email.sent_at is not None
    assert email.attempts == 3
    assert email.last_error == ""


def test_a_mail_is_never_recorded_as_sent_while_the_server_keeps_failing(
    flaky_mail_server, clock, credential
):
    flaky_mail_server(10)
    email = enqueue(credential)
    for _ in range(5):
        emails_send_due()
        clock(timedelta(hours=2))

    email = stored(email)
    assert email.state == OutgoingEmail.State.PENDING
    assert email.sent_at is None
    assert email.attempts == 5
    assert mail.outbox == []


# Sent by the worker that stored them, right after commit


def test_mails_sent_in_process_go_out_after_commit_together_over_one_connection(
    settings, credential, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{BACKENDS}.ConnectionCountingBackend"
    ConnectionCountingBackend.opened = 0
    mails = [compose(credential, "batch:1"), compose(credential, "batch:2")]

    with django_capture_on_commit_callbacks() as callbacks:
        stored_mails = emails_enqueue(mails, send_in_process=True)
        assert mail.outbox == []
    for callback in callbacks:
        callback()

    assert len(stored_mails) == 2
    assert len(mail.outbox) == 2
    assert ConnectionCountingBackend.opened == 1
    assert {stored(m).state for m in stored_mails} == {OutgoingEmail.State.SENT}
    assert [stored(m).attempts for m in stored_mails] == [1, 1]


def test_a_mail_already_stored_is_left_out_of_a_batch(credential):
    enqueue(credential, dedupe_key="batch:1")

    stored_mails = emails_enqueue([compose(credential, "batch:1"), compose(credential, "batch:2")])

    assert [m.dedupe_key for m in stored_mails] == ["batch:2"]
    assert OutgoingEmail.objects.count() == 2


def test_a_batch_naming_one_event_twice_stores_it_once(credential):
    stored_mails = emails_enqueue([compose(credential, "batch:1"), compose(credential, "batch:1")])

    assert [m.dedupe_key for m in stored_mails] == ["batch:1"]
    assert OutgoingEmail.objects.get().pk == stored_mails[0].pk


def test_when_the_server_hangs_up_mid_batch_only_the_accepted_mail_is_marked_sent(
    settings, clock, credential, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{BACKENDS}.HangsUpAfterOneBackend"
    with django_capture_on_commit_callbacks(execute=True):
        first, second = emails_enqueue(
            [compose(credential, "batch:1"), compose(credential, "batch:2")],
            send_in_process=True,
        )

    assert len(mail.outbox) == 1
    assert stored(first).state == OutgoingEmail.State.SENT
    second = stored(second)
    assert (second.state, second.last_error) == (
        OutgoingEmail.State.PENDING,
        "SMTPServerDisconnected",
    )
    clock(timedelta(seconds=settings.EMAIL_RETRY_BASE_SECONDS + 1))
    assert emails_send_due() == 1
    assert emails_send_due() == 0
    assert len(mail.outbox) == 2
    assert stored(second).state == OutgoingEmail.State.SENT


def test_a_message_the_server_refuses_does_not_hold_back_the_next_one(
    settings, credential, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{BACKENDS}.RefusesFirstMessageBackend"
    RefusesFirstMessageBackend.refused = False
    other = compose(credential, "batch:2")
    other.to = ["someone-else@example.test"]  # another thread: not held back by the first
    with django_capture_on_commit_callbacks(execute=True):
        first, second = emails_enqueue(
            [compose(credential, "batch:1"), other], send_in_process=True
        )

    assert [m.subject for m in mail.outbox] == [second.subject]
    first = stored(first)
    assert (first.state, first.last_error) == (OutgoingEmail.State.PENDING, "SMTPDataError")
    assert stored(second).state == OutgoingEmail.State.SENT


def test_a_mail_stored_for_sending_in_process_is_left_to_its_worker_by_the_sweep(credential):
    # The worker committed and is about to send: the sweep must not send it as well.
    [email] = emails_enqueue([compose(credential, "batch:1")], send_in_process=True)

    assert emails_send_due() == 0
    assert email_send(email_id=email.pk) is False
    assert mail.outbox == []


def test_a_mail_whose_worker_died_after_commit_is_sent_once_by_the_sweep_after_the_lease(
    clock, credential
):
    # Stored and committed, but the worker died before its after-commit send ran.
    [email] = emails_enqueue([compose(credential, "batch:1")], send_in_process=True)
    clock(EMAIL_SEND_LEASE + timedelta(seconds=1))

    assert emails_send_due() == 1
    assert emails_send_due() == 0

    assert len(mail.outbox) == 1
    assert stored(email).state == OutgoingEmail.State.SENT


def test_the_sweep_sends_the_due_mails_over_one_connection(settings, credential):
    settings.EMAIL_BACKEND = f"{BACKENDS}.ConnectionCountingBackend"
    ConnectionCountingBackend.opened = 0
    for number in range(3):
        enqueue(credential, dedupe_key=f"reminder:test:{number}")

    assert emails_send_due() == 3

    assert len(mail.outbox) == 3
    assert ConnectionCountingBackend.opened == 1


# A worker that died while sending


def test_a_mail_held_by_a_worker_that_died_is_not_retried_before_the_lease_ends(
    settings, credential
):
    settings.EMAIL_BACKEND = f"{BACKENDS}.DyingBackend"
    email = enqueue(credential)
    with pytest.raises(WorkerDied):
        email_send(email_id=email.pk)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    assert email_send(email_id=email.pk) is False
    assert emails_send_due() == 0

    assert mail.outbox == []
    assert stored(email).state == OutgoingEmail.State.PENDING


def test_a_mail_held_by_a_worker_that_died_is_sent_after_the_lease(settings, clock, credential):
    settings.EMAIL_BACKEND = f"{BACKENDS}.DyingBackend"
    email = enqueue(credential)
    with pytest.raises(WorkerDied):
        email_send(email_id=email.pk)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    clock(EMAIL_SEND_LEASE + timedelta(seconds=1))

    assert emails_send_due() == 1

    assert len(mail.outbox) == 1
    email = stored(email)
    assert email.state == OutgoingEmail.State.SENT
    assert email.attempts == 2


# What the database refuses


def test_the_database_refuses_a_sent_mail_without_sent_at(credential):
    email = enqueue(credential)

    with pytest.raises(IntegrityError), transaction.atomic():
        OutgoingEmail.objects.filter(pk=email.pk).update(state=OutgoingEmail.State.SENT)

    assert stored(email).state == OutgoingEmail.State.PENDING


def test_the_database_accepts_a_sent_mail_with_sent_at(credential):
    email = enqueue(credential)

    OutgoingEmail.objects.filter(pk=email.pk).update(
        state=OutgoingEmail.State.SENT, sent_at=timezone.now()
    )

    assert stored(email).state == OutgoingEmail.State.SENT


def test_the_database_refuses_a_pending_mail_with_sent_at(credential):
    email = enqueue(credential)

    with pytest.raises(IntegrityError), transaction.atomic():
        OutgoingEmail.objects.filter(pk=email.pk).update(sent_at=timezone.now())


def test_the_database_refuses_a_second_mail_with_the_same_dedupe_key(credential):
    enqueue(credential)
    email = OutgoingEmail.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        OutgoingEmail.objects.create(
            dedupe_key=email.dedupe_key, kind=email.kind, to=email.to, subject="x", body_text="x"
        )


# Order and duplicates


def test_a_later_mail_to_the_same_recipient_about_the_same_thing_waits_for_an_earlier_one(
    flaky_mail_server, credential
):
    flaky_mail_server(1)
    notice = enqueue(credential, dedupe_key="order:notice")
    reminder = enqueue(credential, dedupe_key="order:reminder")

    assert email_send(email_id=notice.pk) is False  # the server is down for this one
    assert email_send(email_id=reminder.pk) is False  # held: the notice has not gone out

    assert stored(reminder).state == OutgoingEmail.State.PENDING
    assert mail.outbox == []


def test_once_the_earlier_mail_went_out_the_later_one_follows_in_order(clock, credential):
    notice = enqueue(credential, dedupe_key="order:notice")
    reminder = enqueue(credential, dedupe_key="order:reminder")
    OutgoingEmail.objects.filter(pk=notice.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    assert emails_send_due() == 0  # the reminder is due, but waits for the notice
    clock(timedelta(minutes=10))
    emails_send_due()
    emails_send_due()

    assert [m.subject for m in mail.outbox] == [notice.subject, reminder.subject]
    assert stored(notice).sent_at < stored(reminder).sent_at


def test_each_mail_keeps_one_message_id_across_attempts(flaky_mail_server, credential, clock):
    flaky_mail_server(1)
    email = enqueue(credential)
    email_send(email_id=email.pk)
    clock(timedelta(hours=2))

    email_send(email_id=email.pk)

    [sent] = mail.outbox
    assert sent.extra_headers["Message-ID"] == message_id(stored(email))
    assert message_id(stored(email)) == message_id(email)
    assert message_id(email) != message_id(enqueue(credential, dedupe_key="another"))
