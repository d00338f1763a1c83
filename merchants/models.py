"""The merchant: the tenant whose keys the helpdesk needs."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Integration(models.TextChoices):
    """What a merchant wants switched on."""

    ONLINE_PAYMENTS = "online_payments", "Online payments"
    IN_PERSON = "in_person", "In-person / terminal"
    SUBSCRIPTIONS = "subscriptions", "Subscriptions and billing"
    INVOICING = "invoicing", "Invoicing"
    PAYOUTS_REPORTING = "payouts_reporting", "Payouts and reporting"

    @classmethod
    def labels_for(cls, values) -> list[str]:
        """Return the labels of `values` in catalogue order, ignoring unknown ones."""
        chosen = set(values or ())
        return [label for value, label in cls.choices if value in chosen]


country_code_validator = RegexValidator(
    r"^[A-Z]{2}$", "Enter the two-letter country code in capitals, such as GB or DE."
)


class Merchant(models.Model):
    """A business that hands its payment-provider keys to the integrator."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=32, blank=True)
    website = models.URLField(blank=True)
    country = models.CharField(
        max_length=2, blank=True, validators=[country_code_validator], help_text="ISO 3166 code."
    )
    requested_integrations = models.JSONField(
        default=list, blank=True, help_text="Integration values, see merchants.models.Integration."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("access_merchant", "View merchant"),
            ("edit_merchant_profile", "Edit merchant profile"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("merchants:detail", kwargs={"slug": self.slug})

    @property
    def requested_integration_labels(self) -> list[str]:
        return Integration.labels_for(self.requested_integrations)


class OutgoingEmail(models.Model):
    """A mail to send, written in the same transaction as the event it reports (an outbox).

    The unique `dedupe_key` makes each mail exist once however often the event is processed
    (a redelivered task, two sweeps at once); `sent_at` is set only after the mail server
    accepted it, so a failed send is retried and never recorded as sent. The content is
    rendered from templates that never receive a secret.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled (no longer needed)"

    dedupe_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=64)
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, null=True, blank=True, related_name="emails"
    )
    credential = models.ForeignKey(
        "credentials.Credential",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="emails",
    )
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    urgent = models.BooleanField(
        default=False, help_text="Sent with high-priority headers (a compromised key)."
    )
    state = models.CharField(max_length=16, choices=State, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.CharField(
        max_length=255, blank=True, help_text="The exception class of the last failed send."
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="email_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=["pending", "cancelled"], sent_at__isnull=True)
                | models.Q(state="sent", sent_at__isnull=False),
                name="email_sent_at_iff_sent",
            ),
        ]

    def __str__(self):
        return f"{self.subject} → {', '.join(self.to)}"

    @property
    def from_email(self) -> str:
        return settings.DEFAULT_FROM_EMAIL
