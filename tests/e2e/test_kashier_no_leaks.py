"""After a full Kashier flow, neither of its secrets is anywhere but in its encrypted column.

Kashier keys have two secrets: the secret key and the Payment API key (a UUID). The flow:
both submitted through the portal, verified by the worker against the fake Kashier hosts,
both mails sent, the portal's pages and the admin's pages viewed by the merchant, the helpdesk
and a platform admin, then the key revoked (its mails sent by the worker). Then every place a
secret could have leaked to is read: every page, each mail as the SMTP server received it,
each log record at the most talkative level, each task the app published, every Redis command
and key, every audit row and every row of every table. Revealing the secrets in the admin, and
a crash while storing them with DEBUG on, are checked on their own.
A finding names the place, never the text, so that a failure does not print a secret.
"""

import logging

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from config import celery_app
from credentials.fields import decrypt_stored_value
from credentials.models import Credential, LifecycleState, VerificationState
from credentials.services.submission import VERIFY_TASK
from mail.models import OutgoingEmail
from tests.e2e.leaks import (
    RecordingHandler,
    Secret,
    database_findings,
    everything_logged_to,
    holds_secret,
    mail_findings,
    redis_findings,
)
from tests.e2e.waiting import wait_until
from tests.fake_kashier import MERCHANT_ID, fake_payment_api_key, fake_secret_key
from tests.helpers import merchant_url, totp_code, totp_device

REVEAL_REASON = "Merchant asked us to set up the hosted checkout, ticket 4713"


@pytest.fixture
def kashier_secrets() -> dict[str, Secret]:
    """The two made-up Kashier secrets, by form field; they print as their hint only."""
    return {
        "secret_key": Secret(fake_secret_key()),
        "payment_api_key": Secret(fake_payment_api_key()),
    }


def findings_in(texts: list[tuple[str, str]], secrets: dict[str, Secret]) -> list[str]:
    """Return "<secret> in <place>" for every place of `texts` (place, text) holding one."""
    return [
        f"{name} in {place}"
        for place, text in texts
        for name, secret in secrets.items()
        if holds_secret(text, secret)
    ]


@pytest.fixture
def debug_logs(settings, kashier_secrets):
    """Record every log record at DEBUG, wherever it is handled.

    DEBUG=True as well: Django logs SQL with its parameters only then.
    """
    settings.DEBUG = True
    with everything_logged_to(RecordingHandler(*kashier_secrets.values())) as recorder:
        yield recorder


@pytest.fixture
def published(monkeypatch):
    """Record each task the app publishes (by the web side and by the worker), then publish
    it: its name, arguments and keyword arguments."""
    sent = []
    publish = celery_app.send_task

    def send_task(name, args=None, kwargs=None, *more, **options):
        sent.append((name, tuple(args or ()), dict(kwargs or {})))
        return publish(name, args, kwargs, *more, **options)

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return sent


def raw_secret_columns(credential: Credential) -> tuple:
    """Return what the database holds in both secret columns, bypassing the fields."""
    table = connection.ops.quote_name(Credential._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT secret, extra_secret FROM {table} WHERE id = %s",  # noqa: S608
            [credential.pk],
        )
        return cursor.fetchone()


def submission(secrets: dict[str, Secret], **fields) -> dict:
    return {
        "merchant_id": MERCHANT_ID,
        **secrets,
        "mode": "live",
        "requested_integrations": ["online_payments"],
        "note": "Online payments first, please.",
        **fields,
    }


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_after_a_full_kashier_flow_neither_secret_is_in_a_page_mail_log_task_or_column(
    owner_client,
    merchant,
    helpdesk_user,
    superuser,
    client_for,
    fake_kashier,
    smtp_sink,
    start_celery_worker,
    redis_client,
    redis_monitor,
    published,
    debug_logs,
    kashier_secrets,
):
    pages: list[tuple[str, str]] = []

    def visit(client, label: str, address: str, **post) -> None:
        """Open (or post to) a page, and keep its HTML to be read for secrets at the end."""
        response = client.post(address, post) if post else client.get(address)
        assert response.status_code == 200, f"{label}: {response.status_code}"
        pages.append((label, response.content.decode()))

    submit = merchant_url("credentials:submit", merchant) + "?provider=kashier"
    fake_kashier.live.accept(kashier_secrets["secret_key"])

    # The portal: the form, a refused submission, then the keys.
    visit(owner_client, "submit page", submit)
    refused = {**kashier_secrets, "secret_key": kashier_secrets["payment_api_key"]}
    visit(owner_client, "refused submission", submit, **submission(refused))
    response = owner_client.post(submit, submission(kashier_secrets))
    assert response.status_code == 302
    credential = Credential.objects.get(merchant=merchant)
    visit(owner_client, "key page after submitting", response.url)
    visit(owner_client, "duplicate submission", submit, **submission(kashier_secrets))

    # No worker yet: the verification's message waits in Redis, where it is read.
    for name, secret in kashier_secrets.items():
        findings = redis_findings(redis_client, secret)
        assert not findings, f"The {name} is in Redis while the task is queued: {findings}"

    worker = start_celery_worker()
    wait_until(lambda: len(smtp_sink.received) >= 2, what="the merchant's and helpdesk's mail")
    worker.wait_until_idle()
    credential.refresh_from_db()
    assert credential.verification_state == VerificationState.VERIFIED
    assert fake_kashier.live.requests_for(kashier_secrets["secret_key"]), "Kashier was not asked"

    # Both secrets are stored as their ciphertext, and nowhere else.
    stored = raw_secret_columns(credential)
    for column, secret in zip(stored, kashier_secrets.values(), strict=True):
        assert column != secret, "A secret column holds the plaintext."
        assert decrypt_stored_value(column) == secret, "A column does not hold its ciphertext."
    for name, secret in kashier_secrets.items():
        findings = database_findings(connection, secret)
        assert not findings, f"The {name} is stored in plain text in: {findings}"

    # The portal's pages about the verified key.
    key_page = credential.get_absolute_url()
    visit(owner_client, "key page", key_page)
    visit(
        owner_client, "key status", merchant_url("credentials:status", merchant, pk=credential.pk)
    )
    visit(owner_client, "merchant page", merchant_url("credentials:merchant", merchant))
    visit(
        owner_client,
        "roll page",
        merchant_url("credentials:submit", merchant) + f"?replaces={credential.pk}",
    )
    visit(
        owner_client, "revoke page", merchant_url("credentials:revoke", merchant, pk=credential.pk)
    )

    # The admin, as the helpdesk and as a platform admin.
    change = reverse("admin:credentials_credential_change", args=[credential.pk])
    reveal = reverse("admin:credentials_credential_reveal", args=[credential.pk])
    for who, user in (("helpdesk", helpdesk_user), ("platform admin", superuser)):
        client = client_for(user)
        for label, address in (
            ("key list", reverse("admin:credentials_credential_changelist")),
            (
                "key search",
                reverse("admin:credentials_credential_changelist") + f"?q={merchant.slug}",
            ),
            ("key change page", change),
            ("key history", reverse("admin:credentials_credential_history", args=[credential.pk])),
            ("revoke page", reverse("admin:credentials_credential_revoke", args=[credential.pk])),
            (
                "merchant change page",
                reverse("admin:merchants_merchant_change", args=[merchant.pk]),
            ),
            ("audit trail", reverse("admin:audit_auditevent_changelist")),
            ("mail list", reverse("admin:mail_outgoingemail_changelist")),
        ):
            visit(client, f"admin {label} ({who})", address)
    admin = client_for(superuser)
    visit(admin, "admin reveal form", reveal)
    for event in AuditEvent.objects.all():
        visit(
            admin,
            f"admin audit event {event.action}",
            reverse("admin:audit_auditevent_change", args=[event.pk]),
        )
    for email in OutgoingEmail.objects.all():
        visit(
            admin,
            f"admin mail {email.kind}",
            reverse("admin:mail_outgoingemail_change", args=[email.pk]),
        )

    # Revoked from the portal: both secrets erased, the mails sent by the worker.
    response = owner_client.post(
        merchant_url("credentials:revoke", merchant, pk=credential.pk),
        {"reason": "The keys were pasted in a public chat"},
    )
    assert response.status_code == 302
    wait_until(lambda: len(smtp_sink.received) >= 4, what="the revocation's two mails")
    worker.wait_until_idle()
    credential.refresh_from_db()
    assert credential.lifecycle_state == LifecycleState.REVOKED
    assert raw_secret_columns(credential) == (None, None)
    visit(
        owner_client, "merchant page after revoking", merchant_url("credentials:merchant", merchant)
    )
    visit(owner_client, "key page after revoking", key_page)
    visit(client_for(helpdesk_user), "admin key change page after revoking", change)

    # Pages: every page of the run, portal and admin.
    findings = findings_in(pages, kashier_secrets)
    assert not findings, f"A secret is in a page: {findings}"

    # Mail: every message as the SMTP server got it, raw and with every part decoded.
    assert len(smtp_sink.received) == 4
    for name, secret in kashier_secrets.items():
        findings = mail_findings(smtp_sink.received, secret)
        assert not findings, f"The {name} is in mail: {findings}"

    # Tasks: every task the app published, web side and worker side.
    assert (VERIFY_TASK, (credential.pk,), {}) in published
    assert any(name == "mail.tasks.send_email" for name, _args, _kwargs in published)
    findings = findings_in(
        [(name, repr((args, kwargs))) for name, args, kwargs in published], kashier_secrets
    )
    assert not findings, f"A secret is in a task's arguments: {findings}"

    # Logs: every record of the run, at DEBUG.
    assert any(level == logging.DEBUG for _name, level, _text in debug_logs.records)
    assert any(VERIFY_TASK in text for _name, _level, text in debug_logs.records)
    assert any("/v2/account" in text for _name, _level, text in debug_logs.records)
    findings = findings_in(
        [
            (f"a {logging.getLevelName(level)} record of logger {name!r}", text)
            for name, level, text in debug_logs.records
        ],
        kashier_secrets,
    )
    assert not findings, f"A secret is in log records: {sorted(set(findings))}"

    # Redis: every command the run sent (each Celery message as published), then every key.
    commands = redis_monitor.commands
    assert any(VERIFY_TASK.encode() in command for command in commands)
    for name, secret in kashier_secrets.items():
        leaking = [
            command.split(b'"', 2)[1].decode("ascii", "replace")
            for command in commands
            if holds_secret(command, secret)
        ]
        assert not leaking, f"The {name} was sent to Redis in: {leaking}"
        findings = redis_findings(redis_client, secret)
        assert not findings, f"The {name} is in Redis after the flow: {findings}"

    # The audit trail, row by row, then every column of every table, read with raw SQL.
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditEvent.Action.KEY_SUBMITTED, AuditEvent.Action.KEY_REVOKED} <= actions
    findings = findings_in(
        [
            (f"audit row {event.action}", f"{event.target} {event.details} {event.actor_email}")
            for event in AuditEvent.objects.all()
        ],
        kashier_secrets,
    )
    assert not findings, f"A secret is in the audit trail: {findings}"
    for name, secret in kashier_secrets.items():
        findings = database_findings(connection, secret)
        assert not findings, f"The {name} is stored in plain text in: {findings}"


def test_revealing_kashier_secrets_in_the_admin_writes_neither_to_a_log_record_or_the_audit(
    owner_client, merchant, superuser, client_for, debug_logs, kashier_secrets
):
    response = owner_client.post(
        merchant_url("credentials:submit", merchant) + "?provider=kashier",
        submission(kashier_secrets),
    )
    assert response.status_code == 302
    credential = Credential.objects.get(merchant=merchant)
    admin = client_for(superuser)
    debug_logs.records.clear()

    answer = admin.post(
        reverse("admin:credentials_credential_reveal", args=[credential.pk]),
        {"reason": REVEAL_REASON, "otp_token": totp_code(totp_device(superuser))},
    )

    # The answer is the one page meant to show them.
    assert all(secret in answer.content.decode() for secret in kashier_secrets.values())
    assert AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REVEALED).exists()
    assert any(level == logging.DEBUG for _name, level, _text in debug_logs.records)
    findings = findings_in(
        [
            (f"a {logging.getLevelName(level)} record of logger {name!r}", text)
            for name, level, text in debug_logs.records
        ],
        kashier_secrets,
    )
    assert not findings, f"A secret is in log records: {sorted(set(findings))}"
    findings = findings_in(
        [
            (f"audit row {event.action}", f"{event.target} {event.details} {event.actor_email}")
            for event in AuditEvent.objects.all()
        ],
        kashier_secrets,
    )
    assert not findings, f"A secret is in the audit trail: {findings}"


@pytest.mark.parametrize("accept", ["text/html", "text/plain"])
def test_debug_page_of_a_crash_while_storing_kashier_keys_shows_neither_secret(
    settings, owner, merchant, monkeypatch, kashier_secrets, accept
):
    settings.DEBUG = True

    def audit_trail_gone(**kwargs):
        raise RuntimeError("the audit table went away")

    monkeypatch.setattr("credentials.services.submission.audit_record", audit_trail_gone)
    client = Client(raise_request_exception=False)
    client.force_login(owner)

    response = client.post(
        merchant_url("credentials:submit", merchant) + "?provider=kashier",
        submission(kashier_secrets),
        HTTP_ACCEPT=accept,
    )

    report = response.content.decode()
    assert response.status_code == 500
    # Django's report, with the frames of the submission: still a useful report.
    assert "the audit table went away" in report
    assert "credential_submit" in report
    assert "payment_api_key" in report  # the POST's fields are listed, their values starred
    findings = findings_in([("the debug page", report)], kashier_secrets)
    assert not findings, f"A secret is in the debug page: {findings}"
    assert not Credential.objects.exists()
