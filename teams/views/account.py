"""The account page: one's own two-factor sign-in, and the teams that require it."""

from contextlib import suppress

import django_otp
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import FormView, TemplateView

from audit.refusals import Refused
from merchants.services import merchant_open
from teams import two_factor
from teams.forms import TimeZoneForm
from teams.permissions import EDIT_MERCHANT_PROFILE
from teams.rules import is_owner
from teams.selectors import membership_list_for_user
from teams.services.time_zones import user_time_zone_set
from teams.services.two_factor import (
    merchant_require_two_factor,
    two_factor_enrolment_confirm,
    two_factor_enrolment_start,
    two_factor_remove,
)
from teams.sign_in_forms import CodeForm
from teams.time_zones import time_zone_of


def account_url() -> str:
    return reverse("account:account")


def next_url(request, default: str) -> str:
    """Return the page the person was going to (from `next`), if it is on this site."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return default


class AccountView(LoginRequiredMixin, TemplateView):
    """Two-factor sign-in for the account, each team's requirement (Owners change it), and
    the time zone times are shown in."""

    template_name = "teams/account.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        teams = [
            (membership, is_owner(user, membership.merchant))
            for membership in membership_list_for_user(user=user)
        ]
        kwargs.setdefault(
            "time_zone_form",
            TimeZoneForm(initial={"time_zone": time_zone_of(user)}, current=user.time_zone),
        )
        return super().get_context_data(
            has_device=two_factor.has_device(user),
            teams=teams,
            remove_form=CodeForm(),
            time_zone=time_zone_of(user),
            **kwargs,
        )


class TimeZoneView(AccountView):
    """Choose the time zone every time in the portal and in one's mail is shown in."""

    http_method_names = ["post"]

    def post(self, request):
        form = TimeZoneForm(request.POST, current=request.user.time_zone)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(time_zone_form=form))
        time_zone = form.cleaned_data["time_zone"]
        try:
            user_time_zone_set(
                user=request.user, time_zone=time_zone, actor=request.user, request=request
            )
        except ValidationError as refusal:
            form.add_error("time_zone", refusal.messages[0])
            return self.render_to_response(self.get_context_data(time_zone_form=form))
        messages.success(request, f"Times are now shown in {time_zone.replace('_', ' ')}.")
        return redirect(account_url())


class TimeZoneDetectedView(LoginRequiredMixin, View):
    """Store the zone the browser reports, once, for a person who has not chosen one
    (static/keyhouse/js/time-zone.js). Answers 204 whatever happened: nothing to show."""

    http_method_names = ["post"]

    def post(self, request):
        time_zone = request.POST.get("time_zone", "").strip()[:64]
        # A zone this machine does not know is dropped: the person chooses on /account/.
        with suppress(ValidationError):
            user_time_zone_set(
                user=request.user,
                time_zone=time_zone,
                actor=request.user,
                detected=True,
                request=request,
            )
        return HttpResponse(status=204)


@method_decorator(never_cache, name="dispatch")
class TwoFactorSetupView(LoginRequiredMixin, FormView):
    """Set up an authenticator app: a QR code, the key as text, then a first code."""

    template_name = "teams/two_factor_setup.html"
    form_class = CodeForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and two_factor.has_device(request.user):
            messages.info(request, "Your account already signs in with an authenticator app.")
            return redirect(next_url(request, account_url()))
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        device = two_factor_enrolment_start(actor=self.request.user)
        return super().get_context_data(
            qr_data_uri=two_factor.qr_data_uri(device),
            key=two_factor.key_base32(device),
            next=next_url(self.request, ""),
            **kwargs,
        )

    def form_valid(self, form):
        try:
            device = two_factor_enrolment_confirm(
                actor=self.request.user,
                otp_token=form.cleaned_data["otp_token"],
                request=self.request,
            )
        except ValidationError as refusal:
            form.add_error("otp_token", refusal.messages[0])
            return self.form_invalid(form)
        django_otp.login(self.request, device)
        messages.success(self.request, "Two-factor sign-in is on: sign-in now asks for a code.")
        return HttpResponseRedirect(next_url(self.request, account_url()))


@method_decorator(never_cache, name="dispatch")
class TwoFactorVerifyView(LoginRequiredMixin, FormView):
    """Ask a session signed in without a code for one (a team now requires it)."""

    template_name = "teams/two_factor_verify.html"
    form_class = CodeForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not two_factor.has_device(request.user):
            return redirect(f"{reverse('account:two_factor')}?{request.GET.urlencode()}")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(next=next_url(self.request, ""), **kwargs)

    def form_valid(self, form):
        device = two_factor.device_confirmed(self.request.user)
        refusal = two_factor.code_refusal(
            user=self.request.user, otp_token=form.cleaned_data["otp_token"], device=device
        )
        if refusal:
            form.add_error("otp_token", refusal)
            return self.form_invalid(form)
        django_otp.login(self.request, device)
        return HttpResponseRedirect(next_url(self.request, account_url()))


class TwoFactorRemoveView(LoginRequiredMixin, View):
    """Turn two-factor sign-in off, proven with a current code."""

    http_method_names = ["post"]

    def post(self, request):
        form = CodeForm(request.POST)
        form.is_valid()
        try:
            two_factor_remove(
                actor=request.user,
                otp_token=form.cleaned_data.get("otp_token", ""),
                request=request,
            )
        except (Refused, ValidationError) as refusal:
            messages.error(request, getattr(refusal, "message", None) or refusal.messages[0])
        else:
            messages.success(request, "Two-factor sign-in is off for your account.")
        return redirect(account_url())


class TeamTwoFactorView(LoginRequiredMixin, View):
    """An Owner requires (or stops requiring) two-factor sign-in of the whole team."""

    http_method_names = ["post"]

    def post(self, request):
        try:
            merchant = merchant_open(
                actor=request.user,
                slug=request.POST.get("merchant", ""),
                permission=EDIT_MERCHANT_PROFILE,
                request=request,
            )
            required = request.POST.get("required") == "on"
            merchant_require_two_factor(
                merchant=merchant, required=required, actor=request.user, request=request
            )
        except Refused as refusal:
            if refusal.hidden:
                raise Http404("No such merchant.") from None
            messages.error(request, refusal.message)
        except ValidationError as refusal:
            messages.error(request, refusal.messages[0])
        else:
            messages.success(
                request,
                f"{merchant.name}: every member now signs in with a code."
                if required
                else f"{merchant.name}: members choose whether to sign in with a code.",
            )
        return redirect(account_url())
