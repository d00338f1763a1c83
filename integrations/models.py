"""The integrator's own systems: service accounts with their API tokens, and the signed events
(webhooks) their endpoints receive when a key changes.

Tokens are stored only as a SHA-256 of the whole token (it is random and long, so a fast hash
is enough; nobody can guess their way back), next to the public part of the token
(`kh_<key id>_…`) that finds it and makes a leaked token recognisable. Webhook signing
secrets must be read to sign, so they are encrypted like provider secrets.
"""

import ipaddress

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.fields import EncryptedSecretField
from integrations.scopes import EventType, Scope


class ServiceAccount(models.Model):
    """One of the integrator's systems (its POS back end, its billing service): what it may
    read, for which merchants, until when and from where."""

    name = models.SlugField(
        max_length=64, unique=True, help_text="Lower-case letters, digits and dashes."
    )
    description = models.CharField(max_length=255, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    all_merchants = models.BooleanField(
        default=False, help_text="Every merchant, present and future; else only those listed."
    )
    merchants = models.ManyToManyField(
        "merchants.Merchant", blank=True, related_name="service_accounts"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    allowed_ips = models.JSONField(
        default=list,
        blank=True,
        help_text="Addresses or networks (203.0.113.7, 203.0.113.0/24) calls may come from; "
        "empty: any.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(name=""), name="service_account_named"),
        ]
        # No helpdesk group holds it: superusers only.
        permissions = [("manage_service_accounts", "Manage service accounts and their tokens")]

    def __str__(self):
        return self.name

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def allows_ip(self, ip: str | None) -> bool:
        """Return whether a call from `ip` is allowed (any address when no list is set)."""
        if not self.allowed_ips:
            return True
        if not ip:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net, strict=False) for net in self.allowed_ips)

    @property
    def scope_labels(self) -> list[str]:
        labels = dict(Scope.choices)
        return [labels.get(scope, scope) for scope in self.scopes]


class ServiceToken(models.Model):
    """A bearer token of a service account. `valid_until` is set on the old token when the
    account's token is rolled (its grace period); `revoked_at` ends it at once."""

    account = models.ForeignKey(ServiceAccount, on_delete=models.CASCADE, related_name="tokens")
    key_id = models.CharField(max_length=16, unique=True, help_text="The token's public part.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.prefix}…"

    @property
    def prefix(self) -> str:
        """The recognisable start of the token, safe to show: `kh_<key id>_`."""
        return f"kh_{self.key_id}_"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.valid_until is None or self.valid_until > now)


class WebhookEndpoint(models.Model):
    """Where a service account receives signed events, and which types."""

    account = models.ForeignKey(ServiceAccount, on_delete=models.CASCADE, related_name="endpoints")
    url = models.URLField(max_length=500)
    signing_secret = EncryptedSecretField(max_length=255, editable=False)
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types sent here; empty: every type."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account__name", "pk"]

    def __str__(self):
        return f"{self.account} → {self.url}"

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    """Something that happened to a key, as the integrator's systems are told it: never a
    secret (`data` holds the merchant's slug and name and the key's public facts)."""

    event_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=64, choices=EventType)
    merchant = models.ForeignKey(
        "merchants.Merchant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_events",
    )
    topic = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="What it is about (credential:42)."
    )
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.type} {self.event_id}"


class WebhookDelivery(models.Model):
    """One event to one endpoint: an outbox row, written in the transaction that caused the
    event, sent by the worker after commit, retried with back-off, and marked delivered only
    after a 2xx answer."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Given up (retries exhausted)"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(max_length=16, choices=State, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_due")]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_once_per_endpoint"),
            models.CheckConstraint(
                condition=models.Q(state="delivered", delivered_at__isnull=False)
                | (~models.Q(state="delivered") & models.Q(delivered_at__isnull=True)),
                name="webhook_delivered_at_iff_delivered",
            ),
        ]

    def __str__(self):
        return f"{self.event} → {self.endpoint.url}"
