"""The forms of the service-account admin (`admin_accounts`): what an account may read, for
which merchants, until when and from where; every value refused without being repeated."""

import ipaddress

from django import forms
from django.core.exceptions import ValidationError

from core.validators import SecretWithheldBoundField, refuse_secret_text
from integrations.admin_account_views import event_types_field
from integrations.models import ServiceAccount
from integrations.scopes import Scope


class AddressListField(forms.CharField):
    """Addresses or networks, one per line, as a list; each must be one (203.0.113.0/24)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        return [line.strip() for line in text.splitlines() if line.strip()]

    def validate(self, value):
        super().validate(value)
        for number, network in enumerate(value, start=1):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                # Named by its line, not repeated: it could be anything pasted.
                raise ValidationError(
                    f"Line {number} is not an IP address or network: write one per line, "
                    "such as 203.0.113.7 or 203.0.113.0/24.",
                    code="invalid_network",
                ) from None


class MerchantsField(forms.ModelMultipleChoiceField):
    """The merchants a service account serves, by id: an id no database column holds (a
    20-digit number) is refused like any other wrong value rather than failing the query."""

    def clean(self, value):
        if value and any(not str(pk).isdigit() or len(str(pk)) > 18 for pk in value):
            raise ValidationError(self.error_messages["invalid_pk_value"], code="invalid_pk_value")
        return super().clean(value)


def _scope_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=[(scope, f"{scope}: {label}") for scope, label in Scope.choices],
        widget=forms.CheckboxSelectMultiple,
        label="Scopes",
        help_text="What it may read through the API.",
        # Django's message would repeat the value posted.
        error_messages={"invalid_choice": "Choose scopes from the list."},
    )


class ServiceAccountForm(forms.ModelForm):
    """What a service account may read, for which merchants, until when and from where."""

    scopes = _scope_field()
    allowed_ips = AddressListField(
        required=False,
        label="Allowed IP addresses",
        help_text="One address or network per line (203.0.113.7, 203.0.113.0/24); empty: any.",
    )

    class Meta:
        model = ServiceAccount
        field_classes = {"merchants": MerchantsField, "expires_at": forms.DateTimeField}
        fields = (
            "name",
            "description",
            "scopes",
            "all_merchants",
            "merchants",
            "expires_at",
            "allowed_ips",
        )
        labels = {"all_merchants": "All merchants", "expires_at": "Expires"}
        # One labelled input (the admin's split date and time leaves the time unlabelled).
        widgets = {
            "expires_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            )
        }
        # Django's messages would repeat the value posted, which could be a pasted key.
        error_messages = {
            "merchants": {
                "invalid_choice": "Choose merchants from the list.",
                "invalid_pk_value": "Choose merchants from the list.",
            }
        }
        help_texts = {
            "merchants": "The merchants it serves, unless “All merchants” is ticked.",
            "expires_at": "Empty: never. Its calls are refused from then on.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "expires_at" in self.fields:
            # No free-text field, so SecretFreeTextMixin passes it by; a key typed into it must
            # not come back in the page either (clean() refuses it).
            self.fields["expires_at"].bound_field_class = SecretWithheldBoundField

    def clean(self):
        cleaned = super().clean()
        if "expires_at" in self.fields:
            try:
                refuse_secret_text(self["expires_at"].data or "")
            except ValidationError as refusal:
                self.add_error("expires_at", refusal)
        every, some = cleaned.get("all_merchants"), cleaned.get("merchants")
        if every and some:
            self.add_error(
                "merchants",
                "Choose merchants here or tick “All merchants”, not both: clear one of them.",
            )
        elif not every and some is not None and not some:
            self.add_error("merchants", "Choose the merchants it serves, or tick “All merchants”.")
        return cleaned


class ServiceAccountAddForm(ServiceAccountForm):
    """A new service account, and optionally the endpoint its events go to."""

    webhook_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Webhook URL",
        help_text="Optional: where its signed events are sent. More can be added later.",
    )
    event_types = event_types_field()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("event_types") and not cleaned.get("webhook_url"):
            self.add_error("event_types", "Give a webhook URL for these events, or untick them.")
        return cleaned
