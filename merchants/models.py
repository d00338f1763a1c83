"""The merchant: the tenant whose keys the helpdesk needs."""

from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_countries.fields import CountryField


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


UNKNOWN_COUNTRY = (
    "This is not a country we know: choose it from the list (or type its English name, or its "
    "two-letter code such as DE)."
)


class CountryCodeField(CountryField):
    """An ISO 3166 country, stored as its two-letter code. A form built from it (the admin's)
    refuses an unknown value without repeating it: what was typed may be a pasted key."""

    def formfield(self, **kwargs):
        kwargs.setdefault("error_messages", {"invalid_choice": UNKNOWN_COUNTRY})
        return super().formfield(**kwargs)


class Merchant(models.Model):
    """A business that hands its payment-provider keys to the integrator."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=32, blank=True)
    website = models.URLField(blank=True)
    # Stored as the ISO 3166 two-letter code, shown by name.
    country = CountryCodeField(blank=True)
    requested_integrations = models.JSONField(
        default=list, blank=True, help_text="Integration values, see merchants.models.Integration."
    )
    require_two_factor = models.BooleanField(
        default=False,
        help_text="Every member signs in with a TOTP code; set by an Owner.",
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
        return reverse("credentials:merchant", kwargs={"slug": self.slug})

    @property
    def requested_integration_labels(self) -> list[str]:
        return Integration.labels_for(self.requested_integrations)
