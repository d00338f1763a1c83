"""What every provider's key form is built from: key fields that never echo a refused value,
a secret that is never redisplayed, and the integrations and note every submission has."""

from django import forms
from django.forms.boundfield import BoundField

from core.redaction import contains_secret
from core.validators import refuse_control_characters
from merchants.models import Integration

KEY_INPUT_ATTRS = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}
# A secret this long or longer, found in the note of the same submission, is refused there.
MIN_SECRET_IN_NOTE = 8


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


class KeyField(forms.CharField):
    """A CharField whose cleaned value is what `parse` makes of it (a parsed key).

    Its own parser runs instead of the generic length and null-character validators, so each
    refusal says what is wrong with the key and how to fix it.
    """

    def __init__(self, *, parse, max_length: int, asks_again: bool = False, **kwargs):
        self.parse = parse
        # A secret: never redisplayed, so after an error the page asks for it again.
        self.asks_again = asks_again
        super().__init__(max_length=max_length, **kwargs)

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


class KeysForm(forms.Form):
    """What every provider's key form asks besides the keys: the integrations and a note.

    A provider's form adds its key fields (and lists them first in `field_order`), and names
    in `secret_fields` those that are never redisplayed.
    """

    secret_fields: tuple[str, ...] = ()
    # The script that checks the keys as they are typed, with `browser_rules` ("" for none).
    script = ""

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
        # A secret of this very submission pasted into the note as well, even one that looks
        # like nothing in particular (Kashier's Payment API key is a plain UUID).
        note = self.data.get("note", "")
        for name in self.secret_fields:
            value = str(self.data.get(name, "")).strip()
            if len(value) >= MIN_SECRET_IN_NOTE and value in note and "note" not in self.errors:
                self.add_error(
                    "note",
                    forms.ValidationError(
                        "Remove the key from the note: notes are emailed to the helpdesk, so "
                        "keys go only in the key fields above.",
                        code="key_in_note",
                    ),
                )
        return cleaned

    @property
    def browser_rules(self) -> dict:
        """Return what the page's script checks keys with as they are typed, for
        `json_script` ({} when the provider's keys are checked by the server only)."""
        return {}

    @property
    def secret_cleared(self) -> bool:
        """Return True if a secret was sent but the form is shown again without it (it is
        never redisplayed): the page asks for it again."""
        return bool(
            self.is_bound
            and self.errors
            and any(self.data.get(name, "").strip() for name in self.secret_fields)
        )


def secret_input() -> forms.PasswordInput:
    """The widget of a secret: render_value=False, so it never comes back, not even after an
    error."""
    return forms.PasswordInput(render_value=False, attrs=dict(KEY_INPUT_ATTRS))


def key_input() -> forms.TextInput:
    return forms.TextInput(attrs=dict(KEY_INPUT_ATTRS))
