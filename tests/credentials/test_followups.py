"""The helpdesk's follow-up: one reminder per FOLLOWUP_AFTER for each unacknowledged submission,
and the record of when the helpdesk was first told of a submission.

The sweep is called with an explicit `now`, so the tests move the clock instead of waiting.
"""

import re
import threading
import time
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connections, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.refusals import Refused
from credentials.models import Credential, LifecycleState, VerificationState
from credentials.services import helpdesk
from credentials.services.helpdesk import credential_acknowledge, followups_send_due
from credentials.services.notifications import (
    HELPDESK_REMINDER,
    KeyEvent,
    credential_admin_url,
    credential_id_of_topic,
    credential_topic,
    key_event_notify,
)
from mail.models import OutgoingEmail
from mail.services import email_send, emails_send_due
from tests.factories import CredentialFactory, MerchantFactory, UserFactory

pytestmark = pytest.mark.django_db


def followup_after() -> timedelta:
    return timedelta(seconds=settings.FOLLOWUP_AFTER)


def decided_submission(*, due_at, **fields) -> Credential:
    """A verified, unacknowledged submission whose next follow-up is due at `due_at`."""
    fields.setdefault("verification_state", VerificationState.VERIFIED)
    return CredentialFactory(followup_due_at=due_at, **fields)


def reminders(credential=None):
    emails = OutgoingEmail.objects.filter(kind=HELPDESK_REMINDER)
    return emails.filter(topic=credential_topic(credential.pk)) if credential else emails


def reminded_pks() -> list[int]:
    """Return the pk of the key each stored reminder is about, in the order they were stored."""
    topics = reminders().order_by("pk").values_list("topic", flat=True)
    return [credential_id_of_topic(topic) for topic in topics]


def secret_fragments(secret: str) -> list[str]:
    """Every 12-character stretch of the secret's body: the hint shows only the last four."""
    body = secret.split("_", 2)[2]
    return [body[start : start + 12] for start in range(len(body) - 11)]


def assert_no_secret(text: str, secret: str):
    assert secret not in text
    assert not [fragment for fragment in secret_fragments(secret) if fragment in text]


def admin_pks(messages) -> list[int]:
    """Return the credential pk that each reminder mail links to in the admin."""
    pks = []
    for message in messages:
        match = re.search(r"/admin/credentials/credential/(\d+)/change/", message.body)
        assert match, "a reminder without an admin link"
        pks.append(int(match.group(1)))
    return pks


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def helpdesk_colleague(helpdesk_user):
    """A second member of the helpdesk, in the same groups as `helpdesk_user`."""
    colleague = UserFactory(email="colleague@demo.test", is_staff=True)
    colleague.groups.set(helpdesk_user.groups.all())
    return colleague


@pytest.fixture
def staff_outside_the_helpdesk(db):
    """Staff who are in no helpdesk group, so hold none of its permissions."""
    return UserFactory(email="staff@demo.test", is_staff=True)


# Due or not


def test_no_reminder_before_the_followup_is_due(now):
    credential = decided_submission(due_at=now + timedelta(seconds=1))

    assert followups_send_due(now=now) == 0

    assert not reminders().exists()
    credential.refresh_from_db()
    assert credential.reminders_sent == 0
    assert credential.followup_due_at == now + timedelta(seconds=1)


def test_a_due_submission_gets_exactly_one_reminder_to_the_helpdesk(now):
    credential = decided_submission(due_at=now)

    assert followups_send_due(now=now) == 1

    reminder = reminders().get()
    assert reminder.topic == credential_topic(credential.pk)
    assert reminder.to == [settings.HELPDESK_EMAIL]
    assert reminder.state == OutgoingEmail.State.PENDING
    credential.refresh_from_db()
    assert credential.reminders_sent == 1
    assert credential.last_reminded_at == now
    assert credential.followup_due_at == now + followup_after()


def test_undecided_submission_without_a_followup_time_gets_no_reminder(now):
    CredentialFactory(verification_state=VerificationState.PENDING, followup_due_at=None)

    assert followups_send_due(now=now + 10 * followup_after()) == 0

    assert not reminders().exists()


def test_the_sweep_reminds_only_the_due_submissions_among_several_merchants(now):
    due = [decided_submission(due_at=now - timedelta(minutes=n)) for n in range(3)]
    later = [decided_submission(due_at=now + timedelta(minutes=n + 1)) for n in range(2)]

    assert followups_send_due(now=now) == 3

    assert set(reminded_pks()) == {c.pk for c in due}
    assert not set(reminded_pks()) & {c.pk for c in later}


def test_the_reminder_mail_names_merchant_hint_number_and_absolute_admin_link(now):
    merchant = MerchantFactory(name="Demo Tea Co", slug="demo-tea-co")
    credential = decided_submission(due_at=now, merchant=merchant)
    followups_send_due(now=now)

    assert emails_send_due() == 1

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [settings.HELPDESK_EMAIL]
    assert "Reminder 1" in message.subject
    assert "Demo Tea Co" in message.subject
    admin_url = f"http://testserver/admin/credentials/credential/{credential.pk}/change/"
    assert credential_admin_url(credential) == admin_url
    for text in (message.body, message.alternatives[0][0]):
        assert "Demo Tea Co" in text
        assert credential.secret_hint in text
        assert admin_url in text
    assert "reminder 1" in message.body
    assert reminders().get().state == OutgoingEmail.State.SENT


def test_the_reminder_never_contains_the_secret(now):
    credential = decided_submission(due_at=now - 2 * followup_after())
    secret = credential.secret
    followups_send_due(now=now)
    emails_send_due()

    stored = reminders().get()
    for text in (stored.subject, stored.body_text, stored.body_html):
        assert_no_secret(text, secret)
    message = mail.outbox[0]
    for text in (message.subject, message.body, message.alternatives[0][0]):
        assert_no_secret(text, secret)


# One reminder per period


def test_a_second_sweep_at_the_same_time_sends_no_second_reminder(now):
    credential = decided_submission(due_at=now)
    followups_send_due(now=now)

    assert followups_send_due(now=now) == 0

    assert reminders(credential).count() == 1
    credential.refresh_from_db()
    assert credential.reminders_sent == 1


def test_the_next_reminder_goes_out_followup_after_later_and_not_sooner(now):
    credential = decided_submission(due_at=now)
    followups_send_due(now=now)

    assert followups_send_due(now=now + followup_after() - timedelta(seconds=1)) == 0
    assert followups_send_due(now=now + followup_after()) == 1

    credential.refresh_from_db()
    assert credential.reminders_sent == 2
    assert credential.followup_due_at == now + 2 * followup_after()
    emails_send_due()
    assert sorted(message.subject.split(":")[0] for message in mail.outbox) == [
        "[Keyhouse] Reminder 1",
        "[Keyhouse] Reminder 2",
    ]


def test_a_reminder_missed_while_workers_were_down_goes_out_once(now):
    credential = decided_submission(due_at=now - 3 * followup_after())

    assert followups_send_due(now=now) == 1
    assert followups_send_due(now=now) == 0
    assert followups_send_due(now=now + followup_after() - timedelta(seconds=1)) == 0

    assert reminders(credential).count() == 1
    credential.refresh_from_db()
    assert credential.reminders_sent == 1
    assert credential.followup_due_at == now + followup_after()
    assert emails_send_due() == 1


def test_after_a_missed_reminder_the_next_is_due_followup_after_the_late_run(now):
    credential = decided_submission(due_at=now - 3 * followup_after())
    followups_send_due(now=now)

    assert followups_send_due(now=now + followup_after()) == 1

    assert reminders(credential).count() == 2


def test_more_due_submissions_than_one_sweep_takes_are_each_reminded_once_over_runs(
    now, monkeypatch
):
    monkeypatch.setattr(helpdesk, "SWEEP_BATCH", 2)
    due = [decided_submission(due_at=now - timedelta(minutes=n)) for n in range(5)]

    runs = [followups_send_due(now=now) for _ in range(4)]

    assert runs == [2, 2, 1, 0]
    assert_each_reminded_once(due)
    # The longest overdue first.
    assert reminded_pks() == [credential.pk for credential in reversed(due)]


def test_a_reminder_stored_before_is_not_counted_again_and_the_others_are_stored(now):
    reminded, other = decided_submission(due_at=now), decided_submission(due_at=now)
    # Stored before under the key this sweep would use: the outbox stores a mail once.
    OutgoingEmail.objects.create(
        dedupe_key=f"reminder:{reminded.pk}:1",
        kind=HELPDESK_REMINDER,
        to=[settings.HELPDESK_EMAIL],
        subject="Reminder 1",
        topic=credential_topic(reminded.pk),
    )

    assert followups_send_due(now=now) == 1

    assert reminders(reminded).count() == 1
    assert reminders(other).count() == 1


# Acknowledgement


def test_acknowledgement_records_who_and_when_and_clears_the_followup(now, helpdesk_user):
    credential = decided_submission(due_at=now)
    before = timezone.now()

    assert credential_acknowledge(credential=credential, actor=helpdesk_user) is True

    credential.refresh_from_db()
    assert credential.acknowledged_by == helpdesk_user
    assert before <= credential.acknowledged_at <= timezone.now()
    assert credential.followup_due_at is None


@pytest.mark.parametrize("actor", ["staff_outside_the_helpdesk", "owner"])
def test_acknowledgement_by_anyone_outside_the_helpdesk_is_refused_audited_and_changes_nothing(
    request, now, merchant, actor
):
    actor = request.getfixturevalue(actor)
    credential = decided_submission(due_at=now, merchant=merchant)

    with pytest.raises(Refused):
        credential_acknowledge(credential=credential, actor=actor)

    credential.refresh_from_db()
    assert (credential.acknowledged_at, credential.acknowledged_by) == (None, None)
    assert credential.followup_due_at == now
    refusal = AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED)
    assert (refusal.actor, refusal.merchant) == (actor, merchant)
    assert followups_send_due(now=now) == 1


def test_acknowledged_submission_gets_no_reminder(now, helpdesk_user):
    credential = decided_submission(due_at=now - followup_after())
    credential_acknowledge(credential=credential, actor=helpdesk_user)

    assert followups_send_due(now=now + 10 * followup_after()) == 0

    assert not reminders().exists()


def test_acknowledging_after_a_reminder_stops_the_next_one(now, helpdesk_user):
    credential = decided_submission(due_at=now)
    followups_send_due(now=now)

    credential_acknowledge(credential=credential, actor=helpdesk_user)

    assert followups_send_due(now=now + 5 * followup_after()) == 0
    credential.refresh_from_db()
    assert credential.reminders_sent == 1
    assert reminders(credential).count() == 1


def test_a_reminder_queued_but_not_sent_is_cancelled_by_the_acknowledgement(now, helpdesk_user):
    credential = decided_submission(due_at=now)
    followups_send_due(now=now)  # queued, and the mail server is down until after the ack

    credential_acknowledge(credential=credential, actor=helpdesk_user)

    assert emails_send_due() == 0
    assert reminders(credential).get().state == OutgoingEmail.State.CANCELLED
    assert mail.outbox == []


def test_a_second_acknowledgement_keeps_the_first(now, helpdesk_user, helpdesk_colleague):
    credential = decided_submission(due_at=now)
    credential_acknowledge(credential=credential, actor=helpdesk_user)
    credential.refresh_from_db()
    first_at = credential.acknowledged_at

    assert credential_acknowledge(credential=credential, actor=helpdesk_colleague) is False

    credential.refresh_from_db()
    assert credential.acknowledged_by == helpdesk_user
    assert credential.acknowledged_at == first_at


# When the helpdesk was told


def test_sending_the_helpdesk_submission_records_when_the_helpdesk_was_told():
    credential = CredentialFactory(verification_state=VerificationState.VERIFIED)
    [notice] = key_event_notify(credential=credential, event=KeyEvent.VERIFICATION, merchant_to=[])

    assert email_send(email_id=notice.pk) is True

    notice.refresh_from_db()
    credential.refresh_from_db()
    assert credential.helpdesk_notified_at == notice.sent_at
    assert credential.followup_due_at == notice.sent_at + followup_after()


def test_no_reminder_while_the_notice_itself_has_not_gone_out(now):
    # The notice is queued but has not gone out (the mail server is down): the clock waits.
    credential = CredentialFactory(verification_state=VerificationState.VERIFIED)
    key_event_notify(credential=credential, event=KeyEvent.VERIFICATION, merchant_to=[])

    assert followups_send_due(now=now + 10 * followup_after()) == 0

    credential.refresh_from_db()
    assert (credential.helpdesk_notified_at, credential.followup_due_at) == (None, None)
    assert not reminders().exists()


def test_an_acknowledged_submission_gets_no_clock_when_its_notice_goes_out(helpdesk_user):
    credential = CredentialFactory(verification_state=VerificationState.VERIFIED)
    [notice] = key_event_notify(credential=credential, event=KeyEvent.VERIFICATION, merchant_to=[])
    credential_acknowledge(credential=credential, actor=helpdesk_user)

    email_send(email_id=notice.pk)

    credential.refresh_from_db()
    assert credential.followup_due_at is None


def test_a_reminder_does_not_count_as_telling_the_helpdesk_of_the_submission(now):
    credential = decided_submission(due_at=now)
    followups_send_due(now=now)

    assert emails_send_due() == 1

    credential.refresh_from_db()
    assert credential.helpdesk_notified_at is None


# Keys that are no longer current


def test_an_active_key_is_reminded_beside_a_replaced_one(now):
    active = decided_submission(due_at=now)
    decided_submission(due_at=now, secret=None, lifecycle_state=LifecycleState.SUPERSEDED)

    assert followups_send_due(now=now) == 1

    assert reminded_pks() == [active.pk]


@pytest.mark.parametrize("lifecycle_state", [LifecycleState.SUPERSEDED, LifecycleState.REVOKED])
def test_a_superseded_or_revoked_key_gets_no_reminder(now, lifecycle_state):
    credential = decided_submission(
        due_at=now - followup_after(), secret=None, lifecycle_state=lifecycle_state
    )

    assert followups_send_due(now=now) == 0

    assert not reminders().exists()
    credential.refresh_from_db()
    assert credential.reminders_sent == 0


# The operators' command


def test_command_reminds_a_due_submission_sends_the_mail_and_prints_the_counts():
    credential = decided_submission(due_at=timezone.now() - timedelta(seconds=1))
    out = StringIO()

    call_command("followups_send_due", stdout=out)

    assert out.getvalue().strip() == "1 reminder(s) queued; 1 mail(s) sent."
    assert len(mail.outbox) == 1
    assert credential.secret_hint in mail.outbox[0].body
    assert reminders(credential).get().state == OutgoingEmail.State.SENT


def test_command_run_again_at_once_reminds_nobody_a_second_time():
    decided_submission(due_at=timezone.now() - timedelta(seconds=1))
    call_command("followups_send_due", stdout=StringIO())
    out = StringIO()

    call_command("followups_send_due", stdout=out)

    assert out.getvalue().strip() == "0 reminder(s) queued; 0 mail(s) sent."
    assert len(mail.outbox) == 1


def test_command_sends_nothing_when_nothing_is_due():
    decided_submission(due_at=timezone.now() + timedelta(hours=1))
    out = StringIO()

    call_command("followups_send_due", stdout=out)

    assert out.getvalue().strip() == "0 reminder(s) queued; 0 mail(s) sent."
    assert mail.outbox == []


# Concurrency: several sweeps at once, on PostgreSQL (SQLite has no row locks to skip)


@pytest.fixture(scope="module")
def migrated_rows_restored_afterwards(django_db_setup, django_db_blocker):
    """Put back the rows that migrations wrote once this module's transactional tests are done.

    Their flush empties every table (permissions, default roles, the encryption canary), and
    tests that reach the database only through a fixture chosen at run time are ordered after
    the transactional ones: they would find no permissions.
    """
    yield
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    with django_db_blocker.unblock():
        if not ContentType.objects.exists():
            connection.creation.deserialize_db_from_string(connection._test_serialized_contents)


def on_postgresql_with_real_transactions(test):
    """Mark `test` to run on PostgreSQL with committed transactions, as concurrent sweeps do.

    serialized_rollback restores the rows that migrations wrote (default roles, permissions)
    for each such test, and spares the flush from re-running post_migrate handlers.
    """
    test = pytest.mark.django_db(transaction=True, serialized_rollback=True)(test)
    test = pytest.mark.usefixtures("migrated_rows_restored_afterwards")(test)
    return pytest.mark.postgres(test)


def run_in_threads(count: int, work, *, start_together: bool) -> list:
    """Run `work()` in `count` threads, each with its own connection; return the results.

    With `start_together` the threads wait at a barrier so that they call `work` at once.
    An exception in a thread is returned as its result, for the test to re-raise.
    """
    barrier = threading.Barrier(count) if start_together else None
    results: list = [None] * count

    def run(index):
        try:
            if barrier is not None:
                barrier.wait(timeout=30)
            results[index] = work()
        except Exception as error:  # noqa: BLE001  handed back to the test
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a sweep hung"
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


@pytest.fixture
def two_hundred_due(now):
    """200 verified, unacknowledged submissions of ten merchants, all due now."""
    merchants = MerchantFactory.create_batch(10)
    submitter = UserFactory()
    return [
        decided_submission(
            due_at=now - timedelta(seconds=number),
            merchant=merchants[number % len(merchants)],
            submitted_by=submitter,
        )
        for number in range(200)
    ]


def assert_each_reminded_once(credentials, *, number: int = 1):
    pks = [credential.pk for credential in credentials]
    per_credential = Counter(reminded_pks())
    assert per_credential == Counter(dict.fromkeys(pks, number))
    counted = Credential.objects.filter(pk__in=pks).values_list("reminders_sent", flat=True)
    assert set(counted) == {number}


def assert_reminders_went_out_in_order():
    """Assert that no key's reminder went out before an earlier one about the same key."""
    numbers = {}
    for message in mail.outbox:
        number = int(re.search(r"Reminder (\d+)", message.subject)[1])
        [pk] = admin_pks([message])
        assert number == numbers.get(pk, 0) + 1, message.subject
        numbers[pk] = number


def assert_each_mailed_once(credentials, *, number: int = 1):
    per_credential = Counter(admin_pks(mail.outbox))
    assert per_credential == Counter(dict.fromkeys((c.pk for c in credentials), number))


@on_postgresql_with_real_transactions
def test_two_sweeps_in_two_threads_remind_each_of_200_submissions_exactly_once(
    now, two_hundred_due
):
    queued = run_in_threads(2, lambda: followups_send_due(now=now), start_together=False)

    assert sum(queued) == 200
    assert reminders().count() == 200
    assert_each_reminded_once(two_hundred_due)
    assert emails_send_due() == 200
    assert len(mail.outbox) == 200
    assert_each_mailed_once(two_hundred_due)


@on_postgresql_with_real_transactions
def test_two_sweeps_started_together_remind_each_of_200_submissions_exactly_once(
    now, two_hundred_due
):
    queued = run_in_threads(2, lambda: followups_send_due(now=now), start_together=True)

    assert sum(queued) == 200
    assert_each_reminded_once(two_hundred_due)
    sent = run_in_threads(2, emails_send_due, start_together=True)
    assert sum(sent) == 200
    assert len(mail.outbox) == 200
    assert_each_mailed_once(two_hundred_due)


@on_postgresql_with_real_transactions
def test_four_sweeps_of_the_same_submissions_remind_once_per_period(now, two_hundred_due):
    first = run_in_threads(4, lambda: followups_send_due(now=now), start_together=True)
    again = run_in_threads(4, lambda: followups_send_due(now=now), start_together=True)
    next_period = now + followup_after()
    second = run_in_threads(4, lambda: followups_send_due(now=next_period), start_together=True)

    assert (sum(first), sum(again), sum(second)) == (200, 0, 200)
    assert_each_reminded_once(two_hundred_due, number=2)
    # A second reminder waits while another sweep is still sending the first one about the
    # same key; a later sweep sends it. Bounded: at most a few more sweeps.
    sent = sum(run_in_threads(4, emails_send_due, start_together=True))
    for _ in range(10):
        if sent == 400:
            break
        time.sleep(settings.EMAIL_RETRY_BASE_SECONDS * 2)
        sent += emails_send_due()
    assert sent == 400
    assert_each_mailed_once(two_hundred_due, number=2)
    assert_reminders_went_out_in_order()


@on_postgresql_with_real_transactions
def test_a_sweep_skips_submissions_another_sweep_holds_instead_of_waiting(now):
    held = decided_submission(due_at=now)
    free = decided_submission(due_at=now)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        # What another sweep does between its SELECT … FOR UPDATE and its commit.
        try:
            with transaction.atomic():
                list(Credential.objects.select_for_update().filter(pk=held.pk).values_list("pk"))
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        assert followups_send_due(now=now) == 1
    finally:
        release.set()
        holder.join(timeout=30)

    assert reminded_pks() == [free.pk]
    assert followups_send_due(now=now) == 1
    assert_each_reminded_once([held, free])
