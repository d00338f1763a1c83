"""The merchant profile form."""

from django import forms
from django_countries import countries

from core.validators import SecretFreeTextMixin
from merchants.models import UNKNOWN_COUNTRY, Integration, Merchant


class CountryField(forms.CharField):
    """A country from ISO 3166, chosen from the list; the code, English name or three-letter
    code of a country are accepted as typed too (any capitals), and anything else is refused:
    a value is never cut down to two letters.

    A CharField, so that `SecretFreeTextMixin` checks it as the free text it can be.
    """

    widget = forms.Select
    default_error_messages = {"unknown_country": UNKNOWN_COUNTRY}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.widget.choices = [("", "Choose a country"), *countries]

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return ""
        code = countries.alpha2(value) or countries.by_name(value)
        if not code:
            raise forms.ValidationError(
                self.error_messages["unknown_country"], code="unknown_country"
            )
        return code


class MerchantProfileForm(SecretFreeTextMixin, forms.ModelForm):
    country = CountryField(label="Country", required=False)
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
        }
