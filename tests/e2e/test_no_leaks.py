"""After a full flow, the secret is nowhere but in its encrypted column.

The flow: a key submitted through the portal, verified by the worker, both mails sent, a
reminder sent by the follow-up sweep, and the submission acknowledged in the admin. Then every
place it could have leaked to is read: each mail as the SMTP server received it, each log
record at the most talkative level, every Redis command and key, every row of every table.
A finding names the place, never the text, so that a failure does not print the secret.
"""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from credentials.fields import decrypt_stored_value
from credentials.models import Credential, VerificationState
from credentials.services.helpdesk import followups_send_due
from credentials.services.submission import VERIFY_TASK
from tests.e2e.leaks import (
    RecordingHandler,
    Secret,
    database_findings,
    everything_logged_to,
    expanded,
    holds_secret,
    mail_findings,
    redis_findings,
    redis_snapshot,
)
from tests.e2e.waiting import wait_until
from tests.factories import UserFactory, fake_key

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def secret() -> Secret:
    return Secret(fake_key("sk_live_"))


@pytest.fixture
def debug_logs(settings, secret):
    """Record every log record at DEBUG, wherever it is handled.

    DEBUG=True as well: Django logs SQL with its parameters only then.
    """
    settings.DEBUG = True
    with everything_logged_to(RecordingHandler(secret)) as recorder:
        yield recorder


def is_verify_message_for(credential_pk: int):
    """Return a predicate: does this Redis value hold the Celery message verifying the key?

    Celery's message names the task in plain JSON and carries the arguments in a base64 body;
    finding both proves the scan decodes what Celery writes.
    """

    def predicate(value) -> bool:
        texts = expanded(value)
        return VERIFY_TASK in texts[0] and any(
            text.startswith(f"[[{credential_pk}]") for text in texts[1:]
        )

    return predicate


def test_after_a_full_flow_the_secret_is_in_no_mail_log_redis_key_or_column(
    submit_keys,
    merchant,
    smtp_sink,
    start_celery_worker,
    redis_client,
    redis_monitor,
    debug_logs,
    client_for,
    secret,
):
    response = submit_keys(
        publishable_key=fake_key("pk_live_"),
        secret_key=secret,
        note="Online payments first, please.",
    )
    assert response.status_code == 302
    credential = Credential.objects.get(merchant=merchant)

    # No worker yet: the verification's message waits in Redis, where it is read.
    queued = [value for value in redis_snapshot(redis_client) if value]
    assert any(map(is_verify_message_for(credential.pk), queued)), (
        f"The verification message was not found in {settings.CELERY_TASK_DEFAULT_QUEUE!r}."
    )
    findings = redis_findings(redis_client, secret)
    assert not findings, f"The secret is in Redis while the task is queued: {findings}"

    worker = start_celery_worker()
    wait_until(lambda: len(smtp_sink.received) >= 2, what="the merchant's and helpdesk's mail")
    worker.wait_until_idle()
    credential.refresh_from_db()
    assert credential.verification_state == VerificationState.VERIFIED

    later = timezone.now() + timedelta(seconds=settings.FOLLOWUP_AFTER + 1)
    assert followups_send_due(now=later) == 1
    wait_until(lambda: len(smtp_sink.received) >= 3, what="the helpdesk's reminder")
    worker.wait_until_idle()

    superuser = UserFactory(email="platform@keyhouse.test", is_staff=True, is_superuser=True)
    response = client_for(superuser).post(
        reverse("admin:credentials_credential_changelist"),
        {"action": "acknowledge_selected", "_selected_action": [credential.pk]},
    )
    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.acknowledged_by == superuser
    # Acknowledged: however late it gets, no more reminders.
    assert followups_send_due(now=later + timedelta(seconds=3 * settings.FOLLOWUP_AFTER)) == 0
    worker.wait_until_idle()
    assert len(smtp_sink.received) == 3
    reminder = smtp_sink.received[-1]
    assert reminder.recipients == (settings.HELPDESK_EMAIL,)
    assert reminder.subject.startswith("[Keyhouse] Reminder 1:")

    # Mail: every message as the SMTP server got it, raw and with every part decoded.
    findings = mail_findings(smtp_sink.received, secret)
    assert not findings, f"The secret is in mail: {findings}"

    # Logs: every record of the run, at DEBUG.
    assert any(level == logging.DEBUG for _name, level, _text in debug_logs.records)
    assert any(VERIFY_TASK in text for _name, _level, text in debug_logs.records)
    findings = sorted(
        f"a {logging.getLevelName(level)} record of logger {name!r}"
        for name, level, text in debug_logs.records
        if holds_secret(text, secret)
    )
    assert not findings, f"The secret is in log records: {findings}"

    # Redis: every command the run sent (each Celery message as published), then every key.
    commands = redis_monitor.commands
    assert any(map(is_verify_message_for(credential.pk), commands)), (
        "MONITOR did not see the verification message published."
    )
    leaking_commands = [
        command.split(b'"', 2)[1].decode("ascii", "replace")
        for command in commands
        if holds_secret(command, secret)
    ]
    assert not leaking_commands, f"The secret was sent to Redis in: {leaking_commands}"
    findings = redis_findings(redis_client, secret)
    assert not findings, f"The secret is in Redis after the flow: {findings}"

    # Database: every column of every row, read with raw SQL.
    findings = database_findings(connection, secret)
    assert not findings, f"The secret is stored in plain text in: {findings}"
    secret_column = Credential._meta.get_field("secret").column
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(secret_column)} "  # noqa: S608
            f"FROM {connection.ops.quote_name(Credential._meta.db_table)} WHERE id = %s",
            [credential.pk],
        )
        (stored,) = cursor.fetchone()
    stored_is_plaintext = stored == secret
    stored_is_its_ciphertext = decrypt_stored_value(stored) == secret
    assert not stored_is_plaintext, "The secret column holds the plaintext."
    assert stored_is_its_ciphertext, "The secret column does not hold the secret's ciphertext."
