"""A person's own account: changing the password while signed in, and resetting a forgotten
one through a link mailed to the account's address.

Django's views, with the portal's templates; the new password is written by the services in
`teams.services.passwords`, which audit it. The reset request answers the same whether or not
the address has an account, so it cannot be used to find out who has one.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.http import HttpResponseRedirect
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.timesince import timeuntil

from teams.services.passwords import user_password_change, user_password_reset


def reset_valid_for() -> str:
    """Return how long a reset link works, as people say it ("1 hour")."""
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT), now)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change the signed-in person's password; this session stays signed in under a new key,
    every other session of the account ends."""

    template_name = "registration/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form):
        user_password_change(
            user=form.user,
            password=form.cleaned_data["new_password1"],
            actor=self.request.user,
            request=self.request,
        )
        update_session_auth_hash(self.request, form.user)
        return HttpResponseRedirect(self.get_success_url())


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_changed.html"


class PasswordResetView(auth_views.PasswordResetView):
    """Mail a reset link to the address typed if it has an active account; answer the same
    either way."""

    template_name = "registration/password_reset_request.html"
    email_template_name = "registration/password_reset_mail.txt"
    subject_template_name = "registration/password_reset_mail_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    @property
    def extra_email_context(self):
        # Links are built from SITE_URL, as in every other mail, never from the request's Host
        # header, which whoever asks for the reset chooses.
        return {"site_url": settings.SITE_URL, "reset_valid_for": reset_valid_for()}


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_sent.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(reset_valid_for=reset_valid_for(), **kwargs)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Set a new password from a valid reset link; every session of the account ends."""

    template_name = "registration/password_reset_new.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        user_password_reset(
            user=form.user,
            password=form.cleaned_data["new_password1"],
            request=self.request,
        )
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_finished.html"
