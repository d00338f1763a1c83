"""Forms of the team pages. They offer only what the acting member may give; the services
refuse anything else."""

from django import forms
from django.contrib.auth import get_user_model, password_validation

from audit.models import AuditEvent
from core.moments import time_zone_names
from core.validators import SecretFreeTextMixin
from teams.models import Role
from teams.permissions import CATALOGUE
from teams.rules import refusal_to_grant, role_permission_names


class RoleOption(str):
    """A role's label among radio buttons: its name, with its description and the labels of
    its permissions for the page to spell out."""

    def __new__(cls, role, perms):
        option = super().__new__(cls, role.name)
        option.description = role.description
        option.permission_labels = [entry.label for entry in CATALOGUE if entry.perm in perms]
        return option


class RoleChoiceField(forms.ModelChoiceField):
    """A role to give, as radio buttons that say what each role may do."""

    widget = forms.RadioSelect

    def label_from_instance(self, role):
        return role.name


class _RoleFormMixin:
    # A new member starts with the least the inviter may give; a change starts from the role
    # held.
    default_to_least_powerful = False

    def __init__(self, *args, actor, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor, self.merchant = actor, merchant
        # Only roles the actor may give are offered, but any role of this merchant is a known
        # answer: one the actor may not give reaches the service, which refuses it with the
        # reason and audits the attempt. Another merchant's role stays an unknown choice.
        field = self.fields["role"]
        field.queryset = Role.objects.available_to(merchant).order_by("merchant_id", "pk")
        offered = [
            (role, role_permission_names(role))
            for role in field.queryset
            if refusal_to_grant(actor, merchant, role) is None
        ]
        field.choices = [(role.pk, RoleOption(role, perms)) for role, perms in offered]
        if self.default_to_least_powerful and offered and not self.initial.get("role"):
            # Fewest permissions; among equals the later one, as the defaults run from Owner
            # down to View only.
            least = min(enumerate(offered), key=lambda item: (len(item[1][1]), -item[0]))
            self.initial["role"] = least[1][0].pk


class InvitationForm(SecretFreeTextMixin, _RoleFormMixin, forms.Form):
    default_to_least_powerful = True

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


# The regions of the IANA database people live in; its other names (US/Eastern, Etc/GMT+5)
# are aliases and are still accepted when a browser reports one.
TIME_ZONE_REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


def time_zone_choices(current: str = "") -> list:
    """Return the zones to choose from, grouped by region, with `current` among them."""
    names = {name for name in time_zone_names() if name.partition("/")[0] in TIME_ZONE_REGIONS}
    choices: list = [("UTC", "UTC")]
    if current and current not in names and current != "UTC":
        choices.append((current, current.replace("_", " ")))
    for region in TIME_ZONE_REGIONS:
        zones = sorted(name for name in names if name.startswith(f"{region}/"))
        choices.append(
            (region, [(name, name.partition("/")[2].replace("_", " ")) for name in zones])
        )
    return choices


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        help_text="Every time in the portal and in your mail is shown in this zone.",
        error_messages={
            "required": "Choose your time zone from the list.",
            "invalid_choice": "Choose your time zone from the list, such as Europe/Berlin.",
        },
    )

    def __init__(self, *args, current: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices(current)
