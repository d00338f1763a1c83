"""Service accounts, their tokens and webhook endpoints: every change by a superuser (in the
admin) or the system (`manage.py create_service_account`), audited once here."""

import ipaddress
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEvent
from audit.refusals import authorize, refusals_audited
from audit.services import audit_record
from integrations.models import ServiceAccount, WebhookEndpoint
from integrations.scopes import MANAGE_SERVICE_ACCOUNTS, EventType, Scope
from integrations.services.delivery import deliveries_cancel
from integrations.services.tokens import token_make

# How long the old token keeps working after a roll, unless told otherwise.
DEFAULT_ROLL_GRACE = timedelta(hours=24)


def _target(account: ServiceAccount) -> str:
    return f"service_account:{account.pk}"


def _validate(*, scopes, allowed_ips, event_types=()) -> None:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValidationError(
            f"Unknown scope {', '.join(unknown)}: choose from {', '.join(Scope.values)}."
        )
    if not scopes:
        raise ValidationError(f"Give at least one scope: {', '.join(Scope.values)}.")
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown:
        raise ValidationError(
            f"Unknown event type {', '.join(unknown)}: choose from {', '.join(EventType.values)}."
        )
    for network in allowed_ips:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValidationError(
                f"{network!r} is not an IP address or network (such as 203.0.113.0/24)."
            ) from None


def _refuse_revoked(account: ServiceAccount) -> None:
    if account.revoked_at is not None:
        raise ValidationError("This service account is revoked: create a new one instead.")


def signing_secret_make() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


@refusals_audited
@sensitive_variables("token", "signing_secret")
@transaction.atomic
def service_account_create(
    *,
    name: str,
    scopes: list[str],
    merchants=(),
    all_merchants: bool = False,
    expires_at=None,
    allowed_ips=(),
    description: str = "",
    webhook_url: str = "",
    event_types=(),
    actor=None,
    request=None,
) -> tuple[ServiceAccount, str, str]:
    """Create a service account with its first token (and a webhook endpoint with its signing
    secret when `webhook_url` is given); return (account, token, signing secret or "").

    The token and the signing secret are returned once and stored only as a hash and
    encrypted. Superusers only (Refused otherwise); an actor of None is the system.
    """
    authorize(actor, MANAGE_SERVICE_ACCOUNTS)
    _validate(scopes=scopes, allowed_ips=allowed_ips, event_types=event_types)
    if ServiceAccount.objects.filter(name=name).exists():
        raise ValidationError(f"A service account named {name!r} exists already: pick another.")
    account = ServiceAccount(
        name=name,
        description=description,
        scopes=sorted(set(scopes)),
        all_merchants=all_merchants,
        expires_at=expires_at,
        allowed_ips=list(allowed_ips),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    account.full_clean()
    account.save()
    account.merchants.set(merchants)
    _, token = token_make(account)
    signing_secret = ""
    if webhook_url:
        _, signing_secret = _endpoint_add(account, url=webhook_url, event_types=event_types)
    audit_record(
        action=AuditEvent.Action.SERVICE_ACCOUNT_CREATED,
        actor=actor,
        target=_target(account),
        details={
            "name": account.name,
            "scopes": account.scopes,
            "merchants": "all" if all_merchants else sorted(m.slug for m in merchants),
            "webhook_url": webhook_url,
        },
        request=request,
    )
    return account, token, signing_secret


def _endpoint_add(account, *, url: str, event_types=()) -> tuple[WebhookEndpoint, str]:
    signing_secret = signing_secret_make()
    endpoint = WebhookEndpoint(
        account=account,
        url=url,
        signing_secret=signing_secret,
        event_types=sorted(set(event_types)),
    )
    endpoint.full_clean(exclude={"signing_secret"})
    endpoint.save()
    return endpoint, signing_secret


@refusals_audited
@sensitive_variables("signing_secret")
@transaction.atomic
def webhook_endpoint_add(
    *, account: ServiceAccount, url: str, event_types=(), actor=None, request=None
) -> tuple[WebhookEndpoint, str]:
    """Add a webhook endpoint to `account`; return it and its signing secret (shown once)."""
    authorize(actor, MANAGE_SERVICE_ACCOUNTS)
    _refuse_revoked(account)
    _validate(scopes=account.scopes, allowed_ips=(), event_types=event_types)
    endpoint, signing_secret = _endpoint_add(account, url=url, event_types=event_types)
    audit_record(
        action=AuditEvent.Action.WEBHOOK_ENDPOINT_CHANGED,
        actor=actor,
        target=_target(account),
        details={"added": url, "event_types": endpoint.event_types or "all"},
        request=request,
    )
    return endpoint, signing_secret


def _what_it_may(account: ServiceAccount) -> dict:
    """What an account may read, for whom, until when and from where, as the audit trail
    records a change of it."""
    return {
        "scopes": account.scopes,
        "all_merchants": account.all_merchants,
        "merchants": sorted(account.merchants.values_list("slug", flat=True)),
        "expires_at": account.expires_at.isoformat() if account.expires_at else None,
        "allowed_ips": account.allowed_ips,
        "description": account.description,
    }


@refusals_audited
@transaction.atomic
def service_account_update(
    *,
    account: ServiceAccount,
    scopes: list[str],
    merchants=(),
    all_merchants: bool = False,
    expires_at=None,
    allowed_ips=(),
    description: str = "",
    actor=None,
    request=None,
) -> ServiceAccount:
    """Change what `account` may read, for whom, until when and from where. Audited with
    what changed."""
    authorize(actor, MANAGE_SERVICE_ACCOUNTS)
    _validate(scopes=scopes, allowed_ips=allowed_ips)
    account = ServiceAccount.objects.select_for_update().get(pk=account.pk)
    _refuse_revoked(account)
    before = _what_it_may(account)
    account.scopes = sorted(set(scopes))
    account.all_merchants = all_merchants
    account.expires_at = expires_at
    account.allowed_ips = list(allowed_ips)
    account.description = description
    account.full_clean()
    account.save()
    account.merchants.set(merchants)
    after = _what_it_may(account)
    changed = {key: [before[key], after[key]] for key in after if before[key] != after[key]}
    if changed:
        audit_record(
            action=AuditEvent.Action.SERVICE_ACCOUNT_CHANGED,
            actor=actor,
            target=_target(account),
            details={"name": account.name, "changed": changed},
            request=request,
        )
    return account


@refusals_audited
@sensitive_variables("token")
@transaction.atomic
def service_token_roll(
    *, account: ServiceAccount, grace: timedelta = DEFAULT_ROLL_GRACE, actor=None, request=None
) -> str:
    """Give `account` a new token and return it (shown once); its current tokens keep
    working for `grace` (0: stop at once). Audited."""
    authorize(actor, MANAGE_SERVICE_ACCOUNTS)
    _refuse_revoked(account)
    if grace < timedelta(0) or grace > timedelta(days=30):
        raise ValidationError("The grace period is between 0 and 30 days.")
    now = timezone.now()
    ends = now + grace
    account.tokens.filter(revoked_at__isnull=True, valid_until__isnull=True).update(
        valid_until=ends
    )
    account.tokens.filter(revoked_at__isnull=True, valid_until__gt=ends).update(valid_until=ends)
    row, token = token_make(account)
    audit_record(
        action=AuditEvent.Action.SERVICE_TOKEN_ROLLED,
        actor=actor,
        target=_target(account),
        details={
            "name": account.name,
            "new_token": row.prefix,
            "old_tokens_until": ends.isoformat(),
        },
        request=request,
    )
    return token


@refusals_audited
@transaction.atomic
def service_account_revoke(*, account: ServiceAccount, actor=None, request=None) -> ServiceAccount:
    """Revoke `account` and every token at once: its calls are refused and its endpoints get
    no more events. Audited."""
    authorize(actor, MANAGE_SERVICE_ACCOUNTS)
    now = timezone.now()
    updated = ServiceAccount.objects.filter(pk=account.pk, revoked_at__isnull=True).update(
        revoked_at=now
    )
    if not updated:
        raise ValidationError("This service account is revoked already.")
    account.tokens.filter(revoked_at__isnull=True).update(revoked_at=now)
    account.endpoints.update(active=False)
    deliveries_cancel(endpoints=account.endpoints.all(), why="the service account was revoked")
    audit_record(
        action=AuditEvent.Action.SERVICE_ACCOUNT_REVOKED,
        actor=actor,
        target=_target(account),
        details={"name": account.name},
        request=request,
    )
    account.refresh_from_db()
    return account
