"""Refusing key-shaped text and control characters in ordinary fields (a phone number, a role
name, an address, a reason).

A key pasted in the wrong place must be refused with a message that says what happened and
where keys go, never saved, never echoed back in the page and never allowed to reach the
audit guard (which would raise). Forms get this from `SecretFreeTextMixin`; services that take
free text call `refuse_secret_text()` as well, since a form is not their only caller.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.forms.boundfield import BoundField

from core.redaction import contains_secret

KEY_IN_TEXT_CODE = "key_in_text"
KEY_IN_TEXT_MESSAGE = (
    "This looks like a secret key; don't paste keys here. Keys go only in the key fields of "
    "the “Submit Stripe keys” page, where they are encrypted."
)


CONTROL_CHARACTER_CODE = "control_character"
CONTROL_CHARACTER_MESSAGE = (
    "This contains an invisible control character (such as a null byte), which often comes "
    "with text copied out of another program. Type it again, or paste it as plain text."
)
# Line breaks and tabs are ordinary in multi-line text.
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def refuse_control_characters(*values) -> None:
    """Raise ValidationError (code "control_character") if any of `values` holds a control
    character other than a tab or a line break: PostgreSQL refuses a null byte outright, and
    the others only hide what a text says."""
    for value in values:
        if isinstance(value, str) and any(
            (char < " " or "\x7f" <= char < "\xa0") and char not in _ALLOWED_CONTROLS
            for char in value
        ):
            raise ValidationError(CONTROL_CHARACTER_MESSAGE, code=CONTROL_CHARACTER_CODE)


def refuse_secret_text(*values) -> None:
    """Raise ValidationError (code "key_in_text") if any of `values` holds a secret key.

    Usable as a field validator (one value) and by services (all their free-text arguments).
    """
    if any(isinstance(value, str) and contains_secret(value) for value in values):
        raise ValidationError(KEY_IN_TEXT_MESSAGE, code=KEY_IN_TEXT_CODE)


class SecretWithheldBoundField(BoundField):
    """A bound field that renders empty once its value was refused as key-shaped: the key must
    not come back in the page. Other refused values are kept so nothing is retyped."""

    def value(self):
        if self.form.is_bound and any(
            error.code == KEY_IN_TEXT_CODE
            for error in self.form.errors.as_data().get(self.name, ())
        ):
            return None
        return super().value()


def _is_free_text(field) -> bool:
    # Passwords are neither shown nor stored as typed; disabled fields ignore what is posted.
    return (
        isinstance(field, forms.CharField)
        and not field.disabled
        and not isinstance(field.widget, forms.PasswordInput)
    )


class SecretFreeTextMixin:
    """Refuse key-shaped text in every free-text field of the form, with a field error.

    The raw input is checked (in `clean()`, so a value that another check refused first is
    caught too) and a refused value is not redisplayed.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if _is_free_text(field) and field.bound_field_class is None:
                field.bound_field_class = SecretWithheldBoundField

    def clean(self):
        cleaned = super().clean()
        for name, field in self.fields.items():
            if not _is_free_text(field):
                continue
            data = self[name].data
            try:
                refuse_secret_text(data)
            except ValidationError as refusal:
                self.add_error(name, refusal)
            try:
                refuse_control_characters(data)
            except ValidationError as refusal:
                # Django's own refusal of a null character already says it.
                if not any(
                    error.code == "null_characters_not_allowed"
                    for error in self.errors.as_data().get(name, ())
                ):
                    self.add_error(name, refusal)
        return cleaned
