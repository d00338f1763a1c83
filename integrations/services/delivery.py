"""Sending webhook deliveries to the integrator's endpoints: signed, marked delivered only after
a 2xx, retried with back-off, swept when a task was lost, and resent from the admin.

The rules:

- One attempt is one POST of the event's body (`event_body`), encoded once and signed as Stripe
  signs its own: `Keyhouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
  with the endpoint's signing secret. Redirects are not followed; the answer's body is never
  read. WEBHOOK_TIMEOUT_SECONDS bounds the connection and the wait for the answer.
- Any 2xx delivers it. Everything else is a failed attempt and is retried: timeouts, refused
  or dropped connections, 408, 429 and 5xx, and also every other 4xx and 3xx. A receiver that
  answers 400, 401, 404 or a redirect is most often misconfigured for a while (a deploy with
  the wrong signing secret, a route not live yet, a moved host) and fixed within the window;
  giving up at once would lose the event for good, while a retry costs one request.
- Retries wait WEBHOOK_RETRY_BASE_SECONDS, doubling per attempt up to an hour, half of it
  random (so that endpoints coming back from an outage are not hit all at once). A delivery
  whose next attempt would fall after WEBHOOK_GIVE_UP_AFTER from its creation is given up:
  failed, with the reason in `last_error`. The admin's "Send again" gives any delivery one
  more attempt (`redelivery.delivery_resend`).
- One attempt at a time: a worker first claims the delivery with a conditional update, so of
  two workers with the same task one sends and the other does nothing. A claim older than
  WEBHOOK_STALE_AFTER belongs to a worker that died; the sweep hands that delivery out again.
- A delivery whose endpoint was switched off, whose service account was revoked or expired or
  no longer serves the merchant, or whose endpoint no longer takes that type, is not sent: it
  fails at once with `last_error` saying why.
- `last_error` is short and ours ("HTTP 500", "timed out", "connection refused"): never the
  answer's body, never the signing secret.

`claimed_at` is when the delivery was last handed to a worker: claimed for an attempt, or
queued by the sweep or a resend. A pending delivery handed out less than WEBHOOK_STALE_AFTER
ago is not queued again by the sweep; a failed attempt clears it, so the sweep sends the retry
when it is due.
"""

import hashlib
import hmac
import json
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import requests
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from core.fields import SecretDecryptionError
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.services.events import event_body

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Keyhouse-Signature"
EVENT_ID_HEADER = "Keyhouse-Event-Id"
USER_AGENT = "Keyhouse-Webhooks/1"
# The longest wait between two attempts: an endpoint back after an outage gets its events
# within the hour.
WEBHOOK_RETRY_MAX_SECONDS = 3600
# Deliveries one sweep hands out: bounded, the next sweep takes the rest.
SWEEP_BATCH = 500

State = WebhookDelivery.State


class DeliveryOutcome(StrEnum):
    """What one call of `delivery_send` did."""

    SKIPPED = "skipped"  # not this worker's: not due, delivered, or claimed by another
    DELIVERED = "delivered"
    RETRYING = "retrying"  # a failed attempt; another is due later
    FAILED = "failed"  # a failed attempt after which it was given up
    CANCELLED = "cancelled"  # not sent: its endpoint may no longer receive it


@dataclass(frozen=True)
class _Attempt:
    """How one POST ended: the answer's status (None without one) and, unless it was a 2xx,
    what went wrong, in a few words."""

    status: int | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def webhook_sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the `Keyhouse-Signature` header of `body` sent at `timestamp` (unix seconds):
    `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with secret>`."""
    signed = str(int(timestamp)).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={int(timestamp)},v1={digest}"


def claims_stale_before(now):
    return now - timedelta(seconds=settings.WEBHOOK_STALE_AFTER)


def _retry_delay(attempts: int) -> float:
    """Return the wait after failed attempt number `attempts`: doubling from
    WEBHOOK_RETRY_BASE_SECONDS up to an hour, with "equal jitter" (half fixed, half random)."""
    delay = min(
        WEBHOOK_RETRY_MAX_SECONDS, settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1)
    )
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311  jitter, not cryptography


def _duration_words(seconds: float) -> str:
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = round(seconds / length)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = round(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


def why_not_sent(delivery: WebhookDelivery, now=None) -> str:
    """Return why `delivery` may no longer be sent to its endpoint, or "" if it may."""
    endpoint, account, event = delivery.endpoint, delivery.endpoint.account, delivery.event
    if account.revoked_at is not None:
        return "the service account was revoked"
    if not account.is_usable(now):
        return "the service account has expired"
    if not endpoint.active:
        return "the endpoint was switched off"
    if not endpoint.wants(event.type):
        return f"the endpoint no longer takes {event.type} events"
    served = account.all_merchants or (
        event.merchant_id is not None and account.merchants.filter(pk=event.merchant_id).exists()
    )
    if not served:
        return "the service account no longer serves this merchant"
    return ""


def _claim(delivery_id: int, now) -> WebhookDelivery | None:
    """Take `delivery_id` for one attempt by this worker; return it, or None if it is not
    this worker's to send (delivered, failed, waiting for its back-off, or being sent by
    another worker whose claim is fresh)."""
    # One conditional update: of two workers with the same task, one claims, the other finds
    # nothing to update.
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .filter(
            Q(state=State.PENDING, next_attempt_at__lte=now)
            | Q(state=State.SENDING, claimed_at__lte=claims_stale_before(now))
        )
        .update(state=State.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    # Still ours: a worker that stalled longer than WEBHOOK_STALE_AFTER may have lost it.
    return (
        WebhookDelivery.objects.select_related("event", "endpoint__account")
        .defer("endpoint__signing_secret")
        .filter(pk=delivery_id, state=State.SENDING, claimed_at=now)
        .first()
    )


def delivery_send(delivery_id: int) -> DeliveryOutcome:
    """Make one attempt at delivery `delivery_id` if it is due and nobody else is sending it,
    and record how it ended; return that. Idempotent: a delivered one is never sent again.

    Called by the worker, outside any transaction: nothing is locked while the endpoint is
    waited for. See the module's docstring for the rules.
    """
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return DeliveryOutcome.SKIPPED
    if why := why_not_sent(delivery, now):
        return _record_cancelled(delivery, claimed_at=now, why=why)
    attempt = _post(delivery)
    return _record_attempt(delivery, claimed_at=now, attempt=attempt)


@sensitive_variables("secret")
def _post(delivery: WebhookDelivery) -> _Attempt:
    """POST the delivery's event to its endpoint, signed; return how it ended."""
    try:
        secret = WebhookEndpoint.objects.values_list("signing_secret", flat=True).get(
            pk=delivery.endpoint_id
        )
    except SecretDecryptionError:
        # Not the receiver's fault, and nothing was sent: retried, the operator fixes the key.
        return _Attempt(None, "signing secret cannot be decrypted (FIELD_ENCRYPTION_KEY)")
    event = delivery.event
    body = json.dumps(event_body(event), separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: event.event_id,
        SIGNATURE_HEADER: webhook_sign(secret, int(time.time()), body),
    }
    del secret
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        # stream=True: the answer's headers are all that is read; its body is never kept.
        with requests.post(
            delivery.endpoint.url,
            data=body,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            status = response.status_code
    except requests.Timeout:
        return _Attempt(None, "timed out")
    except requests.ConnectionError as error:
        return _Attempt(None, _connection_words(error))
    except requests.RequestException as error:
        # An address requests cannot use (no scheme, bad characters): named by its type only.
        return _Attempt(None, f"request failed ({type(error).__name__})")
    if 200 <= status < 300:
        return _Attempt(status)
    if 300 <= status < 400:
        return _Attempt(status, f"HTTP {status}: redirects are not followed")
    return _Attempt(status, f"HTTP {status}")


def _connection_words(error: Exception) -> str:
    """Name what went wrong with the connection, from the errors `error` wraps."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "host not found"
        if isinstance(current, ssl.SSLError | requests.exceptions.SSLError):
            return "TLS handshake failed"
        if isinstance(current, ConnectionResetError):
            return "connection reset"
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, Exception))
    return "connection failed"


def _record_attempt(delivery: WebhookDelivery, *, claimed_at, attempt: _Attempt) -> DeliveryOutcome:
    now = timezone.now()
    if attempt.delivered:
        # The endpoint has it, whoever holds the claim now: recorded as delivered once.
        WebhookDelivery.objects.filter(pk=delivery.pk).exclude(state=State.DELIVERED).update(
            state=State.DELIVERED,
            delivered_at=now,
            last_status=attempt.status,
            last_error="",
        )
        return DeliveryOutcome.DELIVERED
    attempts = delivery.attempts
    give_up_at = delivery.created_at + timedelta(seconds=settings.WEBHOOK_GIVE_UP_AFTER)
    next_attempt_at = now + timedelta(seconds=_retry_delay(attempts))
    if next_attempt_at > give_up_at:
        state, outcome = State.FAILED, DeliveryOutcome.FAILED
        last_error = (
            f"Gave up: no 2xx answer in "
            f"{_duration_words(settings.WEBHOOK_GIVE_UP_AFTER)} "
            f"({attempts} attempt{'s' if attempts != 1 else ''}); the last: {attempt.error}"
        )
    else:
        state, outcome = State.PENDING, DeliveryOutcome.RETRYING
        last_error = attempt.error
    # Recorded only while the claim is this worker's: one that took it over records its own.
    WebhookDelivery.objects.filter(
        pk=delivery.pk, state=State.SENDING, claimed_at=claimed_at
    ).update(
        state=state,
        next_attempt_at=next_attempt_at if state == State.PENDING else F("next_attempt_at"),
        claimed_at=None,
        last_status=attempt.status,
        last_error=last_error[:255],
    )
    logger.warning(
        "Webhook delivery %s (%s) failed: %s; %s.",
        delivery.pk,
        delivery.event.type,
        attempt.error,
        "given up" if state == State.FAILED else f"attempt {attempts}, trying again later",
    )
    return outcome


def _record_cancelled(delivery: WebhookDelivery, *, claimed_at, why: str) -> DeliveryOutcome:
    WebhookDelivery.objects.filter(
        pk=delivery.pk, state=State.SENDING, claimed_at=claimed_at
    ).update(
        state=State.FAILED,
        claimed_at=None,
        # The claim counted an attempt that was never made.
        attempts=F("attempts") - 1,
        last_error=f"Not sent: {why}."[:255],
    )
    return DeliveryOutcome.CANCELLED


def deliveries_cancel(*, endpoints, why: str) -> int:
    """Fail the deliveries waiting for `endpoints` (a queryset or ids) without sending them,
    with `last_error` saying `why` (such as "the service account was revoked"); return how
    many. For the service that switches endpoints off, in its transaction; one being sent
    right now finishes its attempt."""
    return WebhookDelivery.objects.filter(endpoint__in=endpoints, state=State.PENDING).update(
        state=State.FAILED, claimed_at=None, last_error=f"Not sent: {why}."[:255]
    )
