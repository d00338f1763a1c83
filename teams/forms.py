"""Forms of the team pages. They offer only what the acting member may give; the services
refuse anything else."""

from django import forms
from django.contrib.auth import get_user_model, password_validation

from audit.models import AuditEvent
from core.validators import SecretFreeTextMixin
from teams.models import Role
from teams.permissions import CATALOGUE
from teams.rules import refusal_to_grant


class RoleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, role):
        return f"{role.name} — {role.description}" if role.description else role.name


class _RoleFormMixin:
    def __init__(self, *args, actor, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor, self.merchant = actor, merchant
        # Only roles the actor may give are offered, but any role of this merchant is a known
        # answer: one the actor may not give reaches the service, which refuses it with the
        # reason and audits the attempt. Another merchant's role stays an unknown choice.
        field = self.fields["role"]
        field.queryset = Role.objects.available_to(merchant).order_by("merchant_id", "pk")
        field.choices = [
            (role.pk, field.label_from_instance(role))
            for role in field.queryset.prefetch_related("permissions__content_type")
            if refusal_to_grant(actor, merchant, role) is None
        ]


class InvitationForm(SecretFreeTextMixin, _RoleFormMixin, forms.Form):
    email = forms.EmailField(
        label="Email address",
        error_messages={
            "required": "Enter the email address of the person to invite.",
            "invalid": "Enter an email address such as name@example.com.",
        },
    )
    role = RoleChoiceField(
        queryset=Role.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of the roles listed."},
    )


class MemberRoleForm(_RoleFormMixin, forms.Form):
    role = RoleChoiceField(
        queryset=Role.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of the roles listed."},
    )


class RoleForm(SecretFreeTextMixin, forms.Form):
    name = forms.CharField(
        max_length=64,
        error_messages={
            "required": "Give the role a name.",
            "max_length": "Keep the name to %(limit_value)d characters (it has %(show_value)d).",
        },
    )
    description = forms.CharField(
        max_length=255,
        required=False,
        error_messages={"max_length": "Keep the description under %(limit_value)d characters."},
    )
    permissions = forms.MultipleChoiceField(
        choices=[(entry.perm, entry.label) for entry in CATALOGUE],
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Choose at least one permission: a role without any would open nothing.",
            "invalid_choice": "Choose permissions from the list.",
        },
    )

    @staticmethod
    def descriptions() -> dict[str, str]:
        return {entry.perm: entry.description for entry in CATALOGUE}


class AcceptInvitationForm(SecretFreeTextMixin, forms.Form):
    """A new account for the invited address: the code mailed there, a name and a password,
    checked by Django's password validators."""

    code = forms.CharField(
        label="Code from the mail",
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}
        ),
        error_messages={"required": "Enter the 6-digit code mailed to the invited address."},
    )
    full_name = forms.CharField(label="Your name", max_length=150, required=False)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
        error_messages={"required": "Choose a password."},
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages={"required": "Type the password again, to be sure it has no typo."},
    )

    def __init__(self, *args, email: str, **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ; type the same one twice.")
        elif first:
            candidate = get_user_model()(email=self.email, full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(first, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("", "All actions"), *AuditEvent.Action.choices], required=False
    )
    member = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", "All members")] + [
            (membership.user_id, membership.user.email) for membership in members
        ]
