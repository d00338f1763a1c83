"""Events the integrator's systems are told about: written to the webhook outbox in the
transaction that caused them, one delivery per endpoint that wants them, sent after commit."""

import functools
import secrets

from django.db import transaction
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.queue import enqueue
from core.sql import column, columns_of, quoted, table
from integrations.models import ServiceAccount, WebhookDelivery, WebhookEndpoint, WebhookEvent
from integrations.scopes import EventType

DELIVER_TASK = "integrations.tasks.deliver_webhook"


def event_id_make() -> str:
    return f"evt_{secrets.token_hex(12)}"


def _endpoints_seeing(merchant_id):
    now = timezone.now()
    return WebhookEndpoint.objects.filter(
        active=True,
        account__revoked_at__isnull=True,
    ).filter(
        Q(account__expires_at__isnull=True) | Q(account__expires_at__gt=now),
        Q(account__all_merchants=True) | Q(account__merchants__id=merchant_id),
    )


def endpoints_exist(merchant_column: str) -> RawSQL:
    """Whether any active endpoint of a usable service account sees the merchant in
    `merchant_column` (a qualified column of the annotated query, `core.sql.column`), as an
    annotation: a caller that loads the merchant's key anyway learns in the same query that it
    can skip `event_emit` (most merchants have none). The same rule as `endpoints_for`'s."""
    return RawSQL(  # noqa: S611  values are parameters
        _endpoints_seeing_sql(merchant_column), (timezone.now(),), output_field=BooleanField()
    )


@functools.cache
def _endpoints_seeing_sql(merchant_column: str) -> str:
    listed = ServiceAccount.merchants.through

    endpoint = columns_of(WebhookEndpoint, "endpoint")
    account = columns_of(ServiceAccount, "account")
    return (
        f"EXISTS (SELECT 1 FROM {table(WebhookEndpoint)} AS {quoted('endpoint')} "  # noqa: S608  names from the models
        f"JOIN {table(ServiceAccount)} AS {quoted('account')} "
        f"ON {account('id')} = {endpoint('account')} "
        f"WHERE {endpoint('active')} AND {account('revoked_at')} IS NULL "
        f"AND ({account('expires_at')} IS NULL OR {account('expires_at')} > %s) "
        f"AND ({account('all_merchants')} OR EXISTS (SELECT 1 FROM {table(listed)} AS "
        f"{quoted('listed')} WHERE {column(listed, 'serviceaccount', 'listed')} = "
        f"{account('id')} AND {column(listed, 'merchant', 'listed')} = {merchant_column})))"
    )


def endpoints_for(*, event_type: str, merchant_id: int):
    """Return the active endpoints of usable service accounts that see `merchant_id` and
    want `event_type`."""
    endpoints = _endpoints_seeing(merchant_id)
    # The signing secret is not read here: one that cannot be decrypted must not fail the
    # key's submission or verification (its delivery reports it instead).
    endpoints = endpoints.distinct().defer("signing_secret")
    return [endpoint for endpoint in endpoints if endpoint.wants(event_type)]


def event_emit(
    *, event_type: EventType | str, merchant, topic: str, data: dict
) -> WebhookEvent | None:
    """Write an event about `merchant` and a delivery for each endpoint that wants it; queue
    their sending once the caller's transaction commits. `data` must hold no secret.

    Returns None (and writes nothing) when no endpoint wants it.
    """
    events = events_emit(event_type=event_type, merchant=merchant, items=[(topic, data)])
    return events[0] if events else None


def events_emit(
    *, event_type: EventType | str, merchant, items: list[tuple[str, dict]]
) -> list[WebhookEvent]:
    """`event_emit` for several events of one type about one merchant (the keys a roll
    supersedes), with the endpoints that want them found once."""
    endpoints = endpoints_for(event_type=str(event_type), merchant_id=merchant.pk)
    if not endpoints or not items:
        return []
    events = [
        WebhookEvent.objects.create(
            event_id=event_id_make(),
            type=str(event_type),
            merchant=merchant,
            topic=topic,
            data=data,
        )
        for topic, data in items
    ]
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=endpoint)
            for event in events
            for endpoint in endpoints
        ]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: [enqueue(DELIVER_TASK, pk) for pk in ids])
    return events


def event_body(event: WebhookEvent) -> dict:
    """Return what an endpoint receives: `{"id", "type", "created", "data"}`."""
    return {
        "id": event.event_id,
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "data": event.data,
    }
