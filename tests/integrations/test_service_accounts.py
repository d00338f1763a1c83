"""Service accounts, their tokens and endpoints (integrations.services.accounts): a token is
returned once and stored only as a hash, rolls keep the old token for a grace period, revoking
ends everything at once, and every change is audited and refused to anybody but a superuser
(or the system)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from audit.refusals import Refused
from integrations.models import ServiceAccount, ServiceToken, WebhookEndpoint
from integrations.scopes import EventType, Scope
from integrations.services.accounts import (
    service_account_create,
    service_account_revoke,
    service_account_update,
    service_token_roll,
    webhook_endpoint_add,
)
from integrations.services.tokens import TOKEN_SHAPE, TokenRefused, token_authenticate, token_hash
from tests.factories import UserFactory


def create(**overrides):
    values = {
        "name": "pos-backend",
        "scopes": [Scope.SECRETS_READ],
        "all_merchants": True,
        "actor": None,
    }
    return service_account_create(**{**values, **overrides})


def stored_rows() -> dict:
    """Every row the services write, to prove a refused or invalid call wrote none."""
    return {
        "accounts": list(ServiceAccount.objects.values_list("pk", flat=True)),
        "tokens": list(ServiceToken.objects.values_list("pk", "valid_until", "revoked_at")),
        "endpoints": list(WebhookEndpoint.objects.values_list("pk", "active")),
        "changes": list(
            AuditEvent.objects.filter(action__startswith="service_").values_list("pk", flat=True)
        ),
    }


@pytest.fixture
def account(db):
    account, _, _ = create()
    return account


@pytest.fixture
def staff_user(db):
    """Staff, but no superuser and in no group."""
    return UserFactory(email="staff@demo.test", is_staff=True)


# Creating ---------------------------------------------------------------------------------


def test_create_returns_a_token_once_and_stores_only_its_hash(superuser, merchant):
    account, token, signing_secret = create(
        merchants=[merchant], all_merchants=False, actor=superuser
    )

    row = account.tokens.get()
    assert row.token_hash == token_hash(token)
    assert signing_secret == ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_servicetoken")
        stored = " ".join(str(value) for value in cursor.fetchone())
    assert token not in stored
    assert token.split("_", 2)[2] not in stored
    assert list(account.merchants.all()) == [merchant]
    assert account.created_by == superuser


def test_token_starts_with_its_recognisable_public_part(account):
    _, token, _ = create(name="billing")

    row = ServiceToken.objects.get(account__name="billing")
    assert TOKEN_SHAPE.match(token)
    assert token.startswith(row.prefix)
    assert row.prefix == f"kh_{row.key_id}_"
    assert str(row) == f"{row.prefix}…"


def test_created_token_authenticates_as_its_account(db):
    account, token, _ = create()

    caller = token_authenticate(token)

    assert caller.account == account
    assert caller.token == account.tokens.get()


def test_a_changed_token_does_not_authenticate(db):
    _, token, _ = create()

    with pytest.raises(TokenRefused) as refusal:
        token_authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))

    assert refusal.value.code == "invalid_token"


def test_create_with_a_webhook_returns_its_signing_secret_once_stored_encrypted(db):
    account, _, signing_secret = create(
        webhook_url="https://pos.example.com/hook", event_types=[EventType.VERIFIED]
    )

    endpoint = account.endpoints.get()
    assert signing_secret.startswith("whsec_")
    assert endpoint.signing_secret == signing_secret
    assert endpoint.event_types == [EventType.VERIFIED]
    with connection.cursor() as cursor:
        cursor.execute("SELECT signing_secret FROM integrations_webhookendpoint")
        assert signing_secret not in cursor.fetchone()[0]


def test_create_is_audited_without_the_token(superuser, merchant):
    account, token, _ = create(merchants=[merchant], all_merchants=False, actor=superuser)

    event = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_ACCOUNT_CREATED)
    assert event.actor == superuser
    assert event.target == f"service_account:{account.pk}"
    assert event.details["merchants"] == [merchant.slug]
    assert token not in str(event.details)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scopes": ["secrets:write"]}, "Unknown scope secrets:write"),
        ({"scopes": []}, "Give at least one scope"),
        ({"allowed_ips": ["10.0.0.0/8", "office"]}, "'office' is not an IP address"),
        ({"webhook_url": "https://x.test/h", "event_types": ["key.eaten"]}, "Unknown event"),
        ({"webhook_url": "not a url"}, "Enter a valid URL"),
        ({"name": "Not A Slug!"}, "slug"),
    ],
    ids=["scope", "no scope", "ip", "event type", "webhook url", "name"],
)
def test_invalid_account_is_refused_and_creates_nothing(db, overrides, message):
    before = stored_rows()

    with pytest.raises(ValidationError) as refusal:
        create(**overrides)

    assert message in " ".join(refusal.value.messages)
    assert stored_rows() == before


def test_duplicate_name_is_refused_and_creates_nothing(account):
    before = stored_rows()

    with pytest.raises(ValidationError, match="exists already"):
        create(name=account.name)

    assert stored_rows() == before


# Rolling ----------------------------------------------------------------------------------


def test_roll_keeps_the_old_token_working_until_the_grace_period_ends(superuser):
    account, old, _ = create()
    rolled_at = timezone.now()

    new = service_token_roll(account=account, grace=timedelta(hours=1), actor=superuser)

    assert new != old
    assert token_authenticate(new).account == account
    assert token_authenticate(old, now=rolled_at + timedelta(minutes=59)).account == account
    with pytest.raises(TokenRefused) as refusal:
        token_authenticate(old, now=rolled_at + timedelta(hours=1, seconds=5))
    assert refusal.value.code == "token_expired"
    assert token_authenticate(new, now=rolled_at + timedelta(days=2)).account == account


def test_roll_without_grace_refuses_the_old_token_at_once(superuser):
    account, old, _ = create()

    new = service_token_roll(account=account, grace=timedelta(0), actor=superuser)

    with pytest.raises(TokenRefused):
        token_authenticate(old)
    assert token_authenticate(new).account == account


def test_roll_is_audited_with_the_new_tokens_public_part_only(superuser):
    account, _, _ = create()

    new = service_token_roll(account=account, actor=superuser)

    event = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_TOKEN_ROLLED)
    assert event.actor == superuser
    assert new.startswith(event.details["new_token"])
    assert new not in str(event.details)


def test_roll_of_a_revoked_account_is_refused(superuser, account):
    service_account_revoke(account=account, actor=superuser)

    with pytest.raises(ValidationError, match="revoked"):
        service_token_roll(account=account, actor=superuser)

    assert account.tokens.count() == 1


# Revoking ---------------------------------------------------------------------------------


def test_revoke_refuses_every_token_and_stops_every_endpoint(superuser):
    account, token, _ = create(webhook_url="https://pos.example.com/hook")
    in_grace = token
    token = service_token_roll(account=account, grace=timedelta(days=1), actor=superuser)

    service_account_revoke(account=account, actor=superuser)

    for refused in (token, in_grace):
        with pytest.raises(TokenRefused) as refusal:
            token_authenticate(refused)
        assert refusal.value.code == "token_revoked"
    assert not account.endpoints.filter(active=True).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_ACCOUNT_REVOKED)
    assert event.actor == superuser
    assert event.details == {"name": account.name}


def test_revoking_twice_is_refused_and_audited_once(superuser, account):
    service_account_revoke(account=account, actor=superuser)

    with pytest.raises(ValidationError, match="revoked already"):
        service_account_revoke(account=account, actor=superuser)

    assert AuditEvent.objects.filter(action=AuditEvent.Action.SERVICE_ACCOUNT_REVOKED).count() == 1


# Updating ---------------------------------------------------------------------------------


def test_update_is_audited_with_what_changed(superuser, account, merchant):
    service_account_update(
        account=account,
        scopes=[Scope.SECRETS_READ, Scope.MERCHANTS_READ],
        merchants=[merchant],
        all_merchants=False,
        allowed_ips=["203.0.113.0/24"],
        actor=superuser,
    )

    account.refresh_from_db()
    assert account.scopes == [Scope.MERCHANTS_READ, Scope.SECRETS_READ]
    assert not account.allows_ip("198.51.100.1")
    event = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_ACCOUNT_CHANGED)
    assert event.actor == superuser
    assert event.details["changed"] == {
        "scopes": [[Scope.SECRETS_READ], [Scope.MERCHANTS_READ, Scope.SECRETS_READ]],
        "all_merchants": [True, False],
        "merchants": [[], [merchant.slug]],
        "allowed_ips": [[], ["203.0.113.0/24"]],
    }


def test_update_that_changes_nothing_writes_no_event(superuser, account):
    service_account_update(
        account=account, scopes=account.scopes, all_merchants=True, actor=superuser
    )

    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SERVICE_ACCOUNT_CHANGED).exists()


def test_invalid_update_changes_nothing(superuser, account):
    before = stored_rows()

    with pytest.raises(ValidationError):
        service_account_update(account=account, scopes=[], all_merchants=True, actor=superuser)

    assert stored_rows() == before
    assert ServiceAccount.objects.get(pk=account.pk).scopes == [Scope.SECRETS_READ]


# Endpoints --------------------------------------------------------------------------------


def test_endpoint_add_returns_its_signing_secret_once_and_is_audited(superuser, account):
    endpoint, signing_secret = webhook_endpoint_add(
        account=account, url="https://pos.example.com/hook", actor=superuser
    )

    assert endpoint.signing_secret == signing_secret
    assert endpoint.wants(EventType.REVOKED)
    event = AuditEvent.objects.get(action=AuditEvent.Action.WEBHOOK_ENDPOINT_CHANGED)
    assert event.details == {"added": "https://pos.example.com/hook", "event_types": "all"}
    assert signing_secret not in str(event.details)


# Refused to everybody but a superuser ------------------------------------------------------


def _calls(account):
    return {
        "create": lambda actor: create(name="refused", actor=actor),
        "update": lambda actor: service_account_update(
            account=account, scopes=[Scope.MERCHANTS_READ], all_merchants=True, actor=actor
        ),
        "roll": lambda actor: service_token_roll(account=account, actor=actor),
        "revoke": lambda actor: service_account_revoke(account=account, actor=actor),
        "endpoint": lambda actor: webhook_endpoint_add(
            account=account, url="https://evil.example.com/hook", actor=actor
        ),
    }


SERVICES = {
    "create": "service_account_create",
    "update": "service_account_update",
    "roll": "service_token_roll",
    "revoke": "service_account_revoke",
    "endpoint": "webhook_endpoint_add",
}


@pytest.mark.parametrize("who", ["helpdesk_user", "staff_user", "owner"])
@pytest.mark.parametrize("call", list(SERVICES))
def test_everybody_but_a_superuser_is_refused_audited_and_changes_nothing(
    request, account, call, who
):
    actor = request.getfixturevalue(who)
    before = stored_rows()

    with pytest.raises(Refused):
        _calls(account)[call](actor)

    assert stored_rows() == before
    refusal = AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED)
    assert refusal.actor == actor
    assert refusal.target == SERVICES[call]
    assert refusal.details["permission"] == "integrations.manage_service_accounts"


def test_a_superuser_who_is_not_staff_is_refused(account):
    actor = UserFactory(is_superuser=True, is_staff=False)

    with pytest.raises(Refused):
        service_token_roll(account=account, actor=actor)

    assert account.tokens.count() == 1
