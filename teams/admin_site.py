"""The admin site: staff sign in with email, password and a TOTP code.

`config.apps.KeyhouseAdminConfig` makes this the default site (`admin.site`), so every model
admin and every custom admin view (reveal, revoke, acknowledge) goes through `admin_view`,
which lets in only a session verified by the user's device. Staff without a device are taken
through enrolment (a QR code, the key as text, a first code) before any admin page.
"""

from functools import update_wrapper

import django_otp
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp.admin import OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.admin import ReadOnlyModelAdmin
from teams import two_factor
from teams.services.two_factor import two_factor_enrolment_confirm, two_factor_enrolment_start
from teams.sign_in_forms import AdminSignInForm, CodeForm


class KeyhouseAdminSite(OTPAdminSite):
    """The admin for verified staff sessions only (OTPAdminSite's `has_permission`)."""

    login_form = AdminSignInForm
    login_template = "admin/two_factor/login.html"

    def __init__(self, name="admin"):
        super().__init__(name)

    def needs_enrolment(self, request) -> bool:
        """Return True for a signed-in staff member who has no device yet."""
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and not user.is_verified()
            and not two_factor.has_device(user)
        )

    def admin_view(self, view, cacheable=False):
        guarded = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            if self.needs_enrolment(request):
                return redirect_to_login(request.get_full_path(), self._setup_url())
            return guarded(request, *args, **kwargs)

        return update_wrapper(never_cache(inner), guarded)

    def login(self, request, extra_context=None):
        if self.needs_enrolment(request):
            return redirect_to_login(self._next(request), self._setup_url())
        return super().login(request, extra_context)

    def get_urls(self):
        setup = never_cache(csrf_protect(self.two_factor_setup))
        return [
            path("two-factor/setup/", setup, name="two_factor_setup"),
            *super().get_urls(),
        ]

    def two_factor_setup(self, request):
        """Set up the authenticator app of a staff member who has none: QR code, key, code."""
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not self.needs_enrolment(request):
            # Verified already, or a device that only needs its code: the login page asks.
            return HttpResponseRedirect(self._next(request))
        form = CodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                device = two_factor_enrolment_confirm(
                    actor=user, otp_token=form.cleaned_data["otp_token"], request=request
                )
            except ValidationError as refusal:
                form.add_error("otp_token", refusal.messages[0])
            else:
                django_otp.login(request, device)
                return HttpResponseRedirect(self._next(request))
        device = two_factor_enrolment_start(actor=user)
        context = {
            **self.each_context(request),
            "title": "Set up two-factor sign-in",
            "form": form,
            "qr_data_uri": two_factor.qr_data_uri(device),
            "key": two_factor.key_base32(device),
            "next": self._next(request),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/two_factor/setup.html", context)

    def _setup_url(self) -> str:
        return reverse("admin:two_factor_setup", current_app=self.name)

    def _next(self, request) -> str:
        wanted = request.POST.get("next") or request.GET.get("next") or ""
        if url_has_allowed_host_and_scheme(
            wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return wanted
        return reverse("admin:index", current_app=self.name)


class TOTPDeviceAdmin(ReadOnlyModelAdmin):
    """Who has a device and when it was last used; never its key."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    list_select_related = ("user",)
    search_fields = ("user__email",)
    fields = (
        "user",
        "name",
        "confirmed",
        "created_at",
        "last_used_at",
        "throttling_failure_count",
        "throttling_failure_timestamp",
    )


def replace_device_admin() -> None:
    """Show TOTP devices read-only: django-otp's own admin edits them and their keys."""
    if admin.site.is_registered(TOTPDevice):
        admin.site.unregister(TOTPDevice)
    admin.site.register(TOTPDevice, TOTPDeviceAdmin)
