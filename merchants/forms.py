"""The merchant profile form."""

from django import forms

from core.validators import SecretFreeTextMixin
from merchants.models import Integration, Merchant


class MerchantProfileForm(SecretFreeTextMixin, forms.ModelForm):
    website = forms.URLField(
        required=False,
        assume_scheme="https",
        error_messages={"invalid": "Enter the full address, such as https://example.com."},
    )
    requested_integrations = forms.MultipleChoiceField(
        choices=Integration.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Integrations to switch on",
        error_messages={"invalid_choice": "Choose integrations from the list."},
    )

    class Meta:
        model = Merchant
        # The name and slug are the helpdesk's; a member edits how to reach them and what
        # they want switched on.
        fields = ["contact_email", "contact_phone", "website", "country", "requested_integrations"]
        error_messages = {
            "contact_email": {"invalid": "Enter an email address such as accounts@example.com."},
            "country": {
                "max_length": "Enter the two-letter country code, such as GB or DE (it has "
                "%(show_value)d characters)."
            },
        }
        widgets = {"country": forms.TextInput(attrs={"size": 2, "autocapitalize": "characters"})}
        help_texts = {"country": "Two letters, such as GB, DE or US."}

    def clean_country(self):
        return self.cleaned_data["country"].strip().upper()
