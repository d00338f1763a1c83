"""`manage.py create_service_account`: creates the account as the system, prints its token (and
the webhook signing secret) once with a curl example, and refuses every mistake with a message
that says how to fix it, creating nothing."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from integrations.models import ServiceAccount, ServiceToken, WebhookEndpoint
from integrations.scopes import EventType, Scope
from integrations.services.tokens import token_authenticate

TOKEN = re.compile(r"API token:\s+(kh_\S+)")
SIGNING_SECRET = re.compile(r"Signing secret:\s+(whsec_\S+)")


def run(*args) -> str:
    out = StringIO()
    call_command("create_service_account", *args, stdout=out)
    return out.getvalue()


def nothing_created() -> bool:
    return not (
        ServiceAccount.objects.exists()
        or ServiceToken.objects.exists()
        or WebhookEndpoint.objects.exists()
        or AuditEvent.objects.filter(action=AuditEvent.Action.SERVICE_ACCOUNT_CREATED).exists()
    )


def test_prints_a_token_that_works_once_with_a_curl_example(settings, merchant):
    output = run("pos-backend", "--scope", "secrets:read", "--merchant", merchant.slug)

    token = TOKEN.search(output).group(1)
    account = ServiceAccount.objects.get(name="pos-backend")
    assert token_authenticate(token).account == account
    assert output.count(token) == 2  # the token, and in the curl example
    assert "not shown again" in output
    assert (
        f'curl -H "Authorization: Bearer {token}" {settings.SITE_URL}/api/v1/merchants/' in output
    )
    assert list(account.merchants.all()) == [merchant]
    assert SIGNING_SECRET.search(output) is None


def test_creates_the_account_as_the_system_with_every_option(db):
    before = timezone.now()

    output = run(
        "demo-pos",
        "--scope",
        "secrets:read",
        "--scope",
        "credentials:read",
        "--scope",
        "merchants:read",
        "--all-merchants",
        "--webhook-url",
        "http://127.0.0.1:9000/hook",
        "--event",
        "credential.verified",
        "--event",
        "credential.revoked",
        "--expires-in",
        "90d",
        "--allow-ip",
        "127.0.0.1",
        "--allow-ip",
        "10.0.0.0/8",
        "--description",
        "The demo point of sale",
    )

    account = ServiceAccount.objects.get(name="demo-pos")
    assert sorted(account.scopes) == sorted(Scope.values)
    assert account.all_merchants
    assert account.allowed_ips == ["127.0.0.1", "10.0.0.0/8"]
    assert account.description == "The demo point of sale"
    assert account.created_by is None
    days = (account.expires_at - before).total_seconds() / 86400
    assert 89.99 < days < 90.01
    endpoint = account.endpoints.get()
    assert endpoint.url == "http://127.0.0.1:9000/hook"
    assert endpoint.event_types == sorted([EventType.VERIFIED, EventType.REVOKED])
    signing_secret = SIGNING_SECRET.search(output).group(1)
    assert endpoint.signing_secret == signing_secret
    assert output.count(signing_secret) == 1
    event = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_ACCOUNT_CREATED)
    assert event.actor is None
    assert event.details["merchants"] == "all"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "secrets:write", "--all-merchants"], "Unknown scope secrets:write"),
        (["--all-merchants"], "Give at least one scope"),
        (["--scope", "secrets:read", "--merchant", "no-such-shop"], "no-such-shop"),
        (
            ["--scope", "secrets:read", "--merchant", "demo-coffee-co", "--all-merchants"],
            "either --merchant",
        ),
        (["--scope", "secrets:read"], "--all-merchants"),
        (["--scope", "secrets:read", "--all-merchants", "--webhook-url", "nope"], "valid URL"),
        (
            ["--scope", "secrets:read", "--all-merchants", "--event", "credential.verified"],
            "--event needs --webhook-url",
        ),
        (
            [
                "--scope",
                "secrets:read",
                "--all-merchants",
                "--webhook-url",
                "https://x.test/h",
                "--event",
                "credential.eaten",
            ],
            "Unknown event type credential.eaten",
        ),
        (["--scope", "secrets:read", "--all-merchants", "--expires-in", "soon"], "--expires-in"),
        (["--scope", "secrets:read", "--all-merchants", "--allow-ip", "office"], "office"),
    ],
    ids=[
        "unknown scope",
        "no scope",
        "unknown merchant",
        "both merchant and all",
        "neither merchant nor all",
        "bad url",
        "event without url",
        "unknown event",
        "bad duration",
        "bad ip",
    ],
)
def test_each_mistake_is_a_command_error_that_creates_nothing(merchant, args, message):
    with pytest.raises(CommandError) as error:
        run("pos-backend", *args)

    assert message in str(error.value)
    # manage.py prints a CommandError and exits with its return code.
    assert error.value.returncode == 1
    assert nothing_created()


def test_a_name_taken_already_is_a_command_error_that_creates_nothing_more(db):
    run("pos-backend", "--scope", "secrets:read", "--all-merchants")

    with pytest.raises(CommandError, match="exists already"):
        run("pos-backend", "--scope", "merchants:read", "--all-merchants")

    assert ServiceToken.objects.count() == 1
    assert ServiceAccount.objects.get().scopes == [Scope.SECRETS_READ]


def test_a_name_that_is_no_slug_is_a_command_error(db):
    with pytest.raises(CommandError, match="slug"):
        run("POS Backend", "--scope", "secrets:read", "--all-merchants")

    assert nothing_created()
