"""Sign-in forms that take a TOTP code (`otp_token`, as django-otp names it), and the form
that asks for a code alone (enrolment, a second session, removing a device)."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django_otp.forms import OTPAuthenticationFormMixin

from teams import two_factor


def code_field() -> forms.CharField:
    return forms.CharField(
        label="Code from your authenticator app",
        required=False,
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}
        ),
    )


class TwoFactorSignInMixin(OTPAuthenticationFormMixin):
    """Ask accounts that have a confirmed TOTP device for a current code as well.

    An account without a device signs in with its password alone, unverified: the admin then
    takes staff through enrolment, and a team that requires two-factor sign-in sends its
    members there too. A signed-in session is verified (`request.user.is_verified()`) through
    django-otp's `user_logged_in` hook, which reads the device the form sets on the user.
    """

    otp_error_messages = {
        **OTPAuthenticationFormMixin.otp_error_messages,
        "token_required": two_factor.CODE_MISSING,
        "invalid_token": two_factor.CODE_WRONG,
        "n_failed_attempts": two_factor.CODE_THROTTLED,
    }

    def clean(self):
        cleaned_data = super().clean()
        user = self.get_user()
        if user is not None and two_factor.has_device(user):
            try:
                self.clean_otp(user)
            except forms.ValidationError as refusal:
                # Beside the code field: the email and password were right.
                self.add_error("otp_token", refusal)
        return cleaned_data

    def _chosen_device(self, user):
        # One device per account: no device menu to choose from. Called inside clean_otp's
        # transaction, so the row stays locked while the code is checked.
        return two_factor.device_confirmed(user, for_verify=True)


class PortalSignInForm(TwoFactorSignInMixin, AuthenticationForm):
    """The portal's sign-in: email, password, and the code for accounts with a device."""

    otp_token = code_field()


class AdminSignInForm(TwoFactorSignInMixin, AdminAuthenticationForm):
    """The admin's sign-in: staff only, with the code once they have a device."""

    otp_token = code_field()


class CodeForm(forms.Form):
    """A code on its own."""

    otp_token = code_field()
