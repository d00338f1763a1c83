"""Submitted provider keys: stored encrypted, shown only as a hint."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from credentials.fields import EncryptedSecretField
from merchants.models import Integration


class Provider(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    KASHIER = "kashier", "Kashier"


class Mode(models.TextChoices):
    TEST = "test", "Test"
    LIVE = "live", "Live"


class Kind(models.TextChoices):
    SECRET = "secret", "Secret key"
    RESTRICTED = "restricted", "Restricted key"


class VerificationState(models.TextChoices):
    PENDING = "pending", "Waiting to be verified"
    VERIFYING = "verifying", "Being verified"
    VERIFIED = "verified", "Verified"
    REJECTED = "rejected", "Rejected by the provider"
    UNREACHABLE = "unreachable", "The provider could not be reached"
    # Retired (replaced or revoked) before Stripe answered: nothing will verify it any more.
    NOT_VERIFIED = "not_verified", "Not verified"


class HelpdeskFlag(models.TextChoices):
    DUPLICATE_ELSEWHERE = "duplicate_elsewhere", "The same key is active at another merchant"
    ACCOUNT_MISMATCH = "account_mismatch", "Test and live keys belong to different accounts"
    LIMITED_PERMISSIONS = "limited_permissions", "Restricted key without access to the account"
    MISSING_PERMISSIONS = (
        "missing_permissions",
        "Restricted key without permissions the requested integrations need",
    )
    SECRET_KEY = "secret_key", "A Stripe secret key, where Stripe recommends a restricted key"
    UNDECRYPTABLE = (
        "undecryptable",
        "Keyhouse cannot decrypt this key: check FIELD_ENCRYPTION_KEY on the workers",
    )


class LifecycleState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Replaced by a newer key"
    REVOKED = "revoked", "Revoked"


DECIDED_STATES = frozenset(
    {VerificationState.VERIFIED, VerificationState.REJECTED, VerificationState.UNREACHABLE}
)


class CredentialQuerySet(models.QuerySet):
    def bulk_update(self, objs, fields, *args, **kwargs):
        # bulk_update hands the field a CASE WHEN expression, which the encryption library
        # encrypts as text: the row then holds "CASE WHEN … THEN Value('sk_live_…')" instead
        # of the secret. Secrets are saved row by row instead.
        if {"secret", "extra_secret"} & set(fields):
            raise TypeError(
                "bulk_update() would store secrets unencrypted; save each credential with "
                "save(update_fields=['secret']) instead."
            )
        return super().bulk_update(objs, fields, *args, **kwargs)

    def active(self):
        return self.filter(lifecycle_state=LifecycleState.ACTIVE)


# The helpdesk queue's ORDER BY (credentials.admin_queue), as its indexes must spell it.
QUEUE_ORDER = (
    models.Case(
        models.When(
            acknowledged_at__isnull=True,
            lifecycle_state="active",
            verification_state="rejected",
            then=1,
        ),
        default=0,
    ),
    # ASC puts NULLs last in PostgreSQL, as the queue's order asks (SQLite has no NULLS LAST
    # in an index).
    "followup_due_at",
    models.F("submitted_at").desc(),
    models.F("id").desc(),
)


class Credential(models.Model):
    """One submitted key pair for one merchant, provider and mode.

    The secret is encrypted at rest and never displayed: people see `secret_hint`. Duplicate
    detection goes through `fingerprint`, since encrypted values cannot be compared in SQL.
    A superseded or revoked credential keeps its hint, fingerprint and history, but its secret
    is erased (NULL).
    """

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="credentials"
    )
    provider = models.CharField(max_length=16, choices=Provider, default=Provider.STRIPE)
    mode = models.CharField(max_length=8, choices=Mode)
    kind = models.CharField(max_length=16, choices=Kind)
    public_key = models.CharField(
        max_length=255,
        help_text="The provider's public value, shown in full: Stripe's publishable key, "
        "Kashier's merchant id.",
    )
    secret = EncryptedSecretField(max_length=255, null=True, editable=False)
    extra_secret = EncryptedSecretField(
        max_length=255,
        null=True,
        blank=True,
        editable=False,
        help_text="A second secret, where the provider has one (Kashier's Payment API key).",
    )
    secret_hint = models.CharField(max_length=32)
    fingerprint = models.CharField(max_length=64, db_index=True, editable=False)
    requested_integrations = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True, max_length=2000)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="submitted_credentials",
    )
    submitted_at = models.DateTimeField(default=timezone.now)

    # What verification with the provider learned.
    verification_state = models.CharField(
        max_length=16, choices=VerificationState, default=VerificationState.PENDING
    )
    verification_attempts = models.PositiveSmallIntegerField(default=0)
    verification_round = models.PositiveSmallIntegerField(
        default=0,
        help_text=(
            "How many times verification started again (re-checks of a key Stripe could not be "
            "reached for, the helpdesk's Verify again); each round's outcome is mailed once."
        ),
    )
    verification_claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker took it; stale claims are retried."
    )
    verification_next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    verification_code = models.CharField(max_length=64, blank=True)
    verification_reason = models.CharField(
        max_length=500, blank=True, help_text="Our own sentence; never the provider's message."
    )
    account_id = models.CharField(max_length=255, blank=True)
    account_name = models.CharField(max_length=255, blank=True)
    account_country = models.CharField(max_length=2, blank=True)
    charges_enabled = models.BooleanField(null=True, blank=True)
    payouts_enabled = models.BooleanField(null=True, blank=True)
    details_submitted = models.BooleanField(null=True, blank=True)
    livemode = models.BooleanField(null=True, blank=True)
    limited_permissions = models.BooleanField(
        default=False, help_text="A restricted key that cannot read the account, only balances."
    )
    missing_permissions = models.JSONField(
        default=list,
        blank=True,
        help_text="Permissions the requested integrations need that the key lacks (rak_…).",
    )
    helpdesk_flags = models.JSONField(
        default=list, blank=True, help_text="Codes of what the helpdesk should look at."
    )

    lifecycle_state = models.CharField(
        max_length=16, choices=LifecycleState, default=LifecycleState.ACTIVE
    )
    lifecycle_changed_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replaced",
        help_text="The newer key that superseded this one.",
    )
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="revoked_credentials",
    )
    revoked_reason = models.CharField(max_length=500, blank=True)
    next_reverify_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When the daily re-check is due."
    )

    # The helpdesk's progress with this submission.
    helpdesk_notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="acknowledged_credentials",
    )
    followup_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reminders_sent = models.PositiveIntegerField(default=0)
    last_reminded_at = models.DateTimeField(null=True, blank=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        indexes = [
            models.Index(
                fields=["merchant", "provider", "mode", "lifecycle_state"],
                name="cred_merchant_mode_state",
            ),
            # The sweeps' due rows (credentials/services): each index holds only the keys its
            # sweep may take, in the order it takes them, so a run reads the rows it handles
            # and no others however many keys are stored.
            models.Index(
                fields=["followup_due_at", "id"],
                condition=models.Q(acknowledged_at__isnull=True, lifecycle_state="active")
                & ~models.Q(verification_state="rejected"),
                name="cred_followup_due",
            ),
            models.Index(
                # Since when a pending key waits for a worker (stale.py's PENDING_SINCE).
                Coalesce("verification_next_attempt_at", "submitted_at"),
                "id",
                condition=models.Q(lifecycle_state="active", verification_state="pending"),
                name="cred_pending_since",
            ),
            models.Index(
                fields=["verification_claimed_at", "id"],
                condition=models.Q(lifecycle_state="active", verification_state="verifying"),
                name="cred_verifying_since",
            ),
            models.Index(
                fields=["next_reverify_at", "id"],
                condition=models.Q(
                    lifecycle_state="active", verification_state__in=["verified", "unreachable"]
                ),
                name="cred_reverify_due",
            ),
            # A page of the helpdesk queue (waiting keys; "All keys") reads its rows in order
            # from these instead of sorting every key that passes its filters.
            models.Index(
                *QUEUE_ORDER,
                condition=models.Q(acknowledged_at__isnull=True, lifecycle_state="active"),
                name="cred_waiting_queue_order",
            ),
            models.Index(*QUEUE_ORDER, name="cred_queue_order"),
        ]
        constraints = [
            # The same secret cannot be active twice for one merchant, provider and mode.
            models.UniqueConstraint(
                fields=["merchant", "provider", "mode", "fingerprint"],
                condition=models.Q(lifecycle_state="active"),
                name="cred_unique_active_secret",
            ),
            # Active keys hold their secret; superseded and revoked ones have it erased.
            models.CheckConstraint(
                condition=(
                    models.Q(lifecycle_state="active", secret__isnull=False)
                    | (
                        ~models.Q(lifecycle_state="active")
                        & models.Q(secret__isnull=True, extra_secret__isnull=True)
                    )
                ),
                name="cred_secret_only_while_active",
            ),
            models.CheckConstraint(
                condition=models.Q(mode__in=["test", "live"]), name="cred_mode_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(provider__in=["stripe", "kashier"]), name="cred_provider_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["secret", "restricted"]), name="cred_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    verification_state__in=[
                        "pending",
                        "verifying",
                        "verified",
                        "rejected",
                        "unreachable",
                        "not_verified",
                    ]
                ),
                name="cred_verification_state_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(lifecycle_state__in=["active", "superseded", "revoked"]),
                name="cred_lifecycle_state_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(fingerprint=""), name="cred_fingerprint_present"
            ),
        ]
        permissions = [
            ("view_key_status", "View keys"),
            ("submit_keys", "Submit and roll keys"),
            ("revoke_keys", "Revoke keys"),
            ("reveal_secret", "Reveal a stored secret (helpdesk lead)"),
        ]

    def __str__(self):
        return (
            f"{self.merchant} · {self.get_provider_display()} {self.get_mode_display()} · "
            f"{self.secret_hint}"
        )

    def get_absolute_url(self):
        return reverse("credentials:detail", kwargs={"slug": self.merchant.slug, "pk": self.pk})

    def get_verification_state_display(self) -> str:
        """Return the verification state in words, naming the provider ("Rejected by
        Stripe")."""
        label = dict(VerificationState.choices).get(
            self.verification_state, self.verification_state
        )
        provider = self.get_provider_display()
        return str(label).replace("The provider", provider).replace("the provider", provider)

    @property
    def is_decided(self) -> bool:
        return self.verification_state in DECIDED_STATES

    @property
    def helpdesk_flag_labels(self) -> list[str]:
        labels = dict(HelpdeskFlag.choices)
        return [labels.get(code, code) for code in self.helpdesk_flags]

    @property
    def is_active(self) -> bool:
        return self.lifecycle_state == LifecycleState.ACTIVE

    @property
    def provider_spec(self):
        """Return this key's provider (`credentials.providers`): its labels, its help."""
        from credentials.providers import provider_for

        return provider_for(self.provider)

    def outcome_reason(self, code: str, facts=None) -> str:
        """Return the merchant's sentence for the provider's answer `code` about this key."""
        return self.provider_spec.reason(
            code, kind=self.kind, mode=self.get_mode_display().lower(), facts=facts
        )

    @property
    def key_shapes(self) -> str:
        """What keys of this key's provider and mode look like ("" if nothing tells)."""
        return self.provider_spec.key_shapes(self.mode)

    @property
    def missing_permission_labels(self) -> list[str]:
        return self.provider_spec.permission_labels(self.missing_permissions)

    @property
    def advice(self) -> str:
        """What the merchant should do better with this key ("" when nothing)."""
        return self.provider_spec.advice(kind=self.kind) if self.is_active else ""

    @property
    def requested_integration_labels(self) -> list[str]:
        return Integration.labels_for(self.requested_integrations)


class EncryptionCanary(models.Model):
    """A known value encrypted with the keys in use, so a system check can prove they decrypt.

    Written by a migration; re-encrypted by `rotate_encryption_key` with the rest.
    """

    PLAINTEXT = "keyhouse-encryption-canary"

    value = EncryptedSecretField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "encryption canary"

    def __str__(self):
        return f"Encryption canary {self.pk}"
