"""The key submission form: checks keys as Stripe would shape them, never echoes a secret."""

from django import forms
from django.forms.boundfield import BoundField

from core.redaction import contains_secret
from core.validators import refuse_control_characters
from credentials.stripe_keys import (
    MAX_KEY_LENGTH,
    StripeKey,
    browser_rules,
    check_same_mode,
    parse_publishable_key,
    parse_secret_key,
)
from merchants.models import Integration


def reject_key_in_text(value: str) -> None:
    """Raise ValidationError (code "key_in_note") if `value` holds a secret or restricted key."""
    if contains_secret(value):
        raise forms.ValidationError(
            "Remove the key from the note: notes are emailed to the helpdesk, so keys go only "
            "in the key fields above.",
            code="key_in_note",
        )


class RedactedOnErrorBoundField(BoundField):
    """A bound field that renders empty once its value was refused.

    A refused value may be a secret pasted into the wrong field; it must not come back in the
    page. Accepted values (a valid publishable key, a note) are kept so nothing is retyped.
    """

    def value(self):
        if self.form.is_bound and self.name in self.form.errors:
            redact_codes = getattr(self.field, "redact_error_codes", None)
            refusals = self.form.errors.as_data()[self.name]
            if redact_codes is None or any(error.code in redact_codes for error in refusals):
                return None
        return super().value()


class SecretKeyBoundField(RedactedOnErrorBoundField):
    """The secret's bound field: once the page asks for the secret again (it is never
    redisplayed), the input is described by that request too."""

    @property
    def aria_describedby(self):
        described_by = super().aria_describedby
        if described_by is not None and getattr(self.form, "secret_cleared", False):
            return " ".join(filter(None, (f"{self.auto_id}_again", described_by)))
        return described_by


class StripeKeyField(forms.CharField):
    """A CharField whose cleaned value is a parsed StripeKey.

    Its own parser runs instead of the generic length and null-character validators, so each
    refusal says what is wrong with the key and how to fix it.
    """

    def __init__(self, *, parse, asks_again: bool = False, **kwargs):
        self.parse = parse
        # The secret: never redisplayed, so after an error the page asks for it again.
        self.asks_again = asks_again
        super().__init__(max_length=MAX_KEY_LENGTH, **kwargs)

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        # A browser-side maxlength would cut a pasted key silently; the server says why instead.
        attrs.pop("maxlength", None)
        return attrs

    def clean(self, value):
        value = self.to_python(value)
        self.validate(value)
        if value in self.empty_values:
            return None
        return self.parse(value)

    def get_bound_field(self, form, field_name):
        bound_field = SecretKeyBoundField if self.asks_again else RedactedOnErrorBoundField
        return bound_field(form, self, field_name)


class NoteField(forms.CharField):
    """Free text that is redisplayed after an error, unless it was refused for holding a key."""

    # A validator rather than a clean_note(): validators all run, so a note that is too long
    # and holds a key is refused for both and not redisplayed. clean_note() would be skipped
    # after the length error, and the key would come back in the page.
    default_validators = [refuse_control_characters, reject_key_in_text]
    redact_error_codes = frozenset({"key_in_note"})

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        # A browser-side maxlength would cut a long pasted note silently; the server refuses it
        # with a message and keeps the text, so nothing is lost.
        attrs.pop("maxlength", None)
        return attrs

    def get_bound_field(self, form, field_name):
        return RedactedOnErrorBoundField(form, self, field_name)


class CredentialSubmitForm(forms.Form):
    publishable_key = StripeKeyField(
        parse=parse_publishable_key,
        label="Publishable key",
        help_text="Starts with pk_test_ or pk_live_.",
        error_messages={
            "required": "Paste the publishable key: it starts with pk_test_ or pk_live_."
        },
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}
        ),
    )
    secret_key = StripeKeyField(
        parse=parse_secret_key,
        asks_again=True,
        label="Secret or restricted key",
        help_text=(
            "Starts with sk_ or rk_. It is encrypted when stored and never shown again; you "
            "will see only its last four characters."
        ),
        error_messages={
            "required": "Paste the secret key (sk_test_ or sk_live_) or a restricted key (rk_…)."
        },
        # render_value=False: the secret never comes back, not even after an error.
        widget=forms.PasswordInput(
            render_value=False,
            attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"},
        ),
    )
    requested_integrations = forms.MultipleChoiceField(
        label="Integrations to switch on",
        choices=Integration.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Choose at least one integration so the helpdesk knows what to set up.",
            "invalid_choice": "Choose integrations from the list.",
        },
    )
    note = NoteField(
        label="Note for the helpdesk (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "max_length": "Keep the note under %(limit_value)d characters (it has %(show_value)d)."
        },
    )

    def clean(self):
        cleaned = super().clean()
        publishable: StripeKey | None = cleaned.get("publishable_key")
        secret: StripeKey | None = cleaned.get("secret_key")
        if publishable and secret:
            try:
                check_same_mode(publishable=publishable, secret=secret)
            except forms.ValidationError as error:
                # Beside the secret key, where the page's script shows it as it is typed.
                self.add_error("secret_key", error)
        return cleaned

    @property
    def browser_rules(self) -> dict:
        """Return the rules and messages the page's script checks keys with as they are typed
        (`credentials.stripe_keys.browser_rules`), for `json_script`."""
        return browser_rules()

    @property
    def secret_cleared(self) -> bool:
        """Return True if a secret was sent but the form is shown again without it (it is
        never redisplayed): the page asks for it again."""
        return bool(self.is_bound and self.errors and self.data.get("secret_key", "").strip())
