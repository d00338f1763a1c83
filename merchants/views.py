"""The dashboard and the merchant page."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.views.generic import FormView, TemplateView

from credentials.models import Mode
from credentials.selectors import (
    credential_last_retired,
    credentials_current_by_mode,
    credentials_history,
)
from merchants.forms import MerchantProfileForm
from merchants.selectors import memberships_for_user, merchant_onboarding_status
from merchants.services import merchant_update_profile
from teams.mixins import MerchantPermissionRequiredMixin
from teams.permissions import EDIT_MERCHANT_PROFILE, VIEW_KEYS, VIEW_MERCHANT

HISTORY_PAGE_SIZE = 20


class DashboardView(LoginRequiredMixin, TemplateView):
    """The merchants the user belongs to, with their role in each."""

    template_name = "merchants/dashboard.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            memberships=memberships_for_user(user=self.request.user), **kwargs
        )


class MerchantDetailView(MerchantPermissionRequiredMixin, TemplateView):
    """One merchant: its profile and the current key of each mode."""

    permission_required = VIEW_MERCHANT
    template_name = "merchants/detail.html"

    def get_context_data(self, **kwargs):
        can_view_keys = self.request.user.has_perm(VIEW_KEYS, self.merchant)
        current = (
            credentials_current_by_mode(user=self.request.user, merchant=self.merchant)
            if can_view_keys
            else {}
        )
        user, merchant = self.request.user, self.merchant
        modes = [
            (
                mode,
                label,
                current.get(mode),
                # Why a mode has no key: its last key was revoked or replaced. Asked for every
                # mode, so the page costs the same queries whatever the keys' states.
                credential_last_retired(user=user, merchant=merchant, mode=mode)
                if can_view_keys
                else None,
            )
            for mode, label in Mode.choices
        ]
        status = merchant_onboarding_status(current_credentials=current.values())
        history = (
            Paginator(
                credentials_history(user=user, merchant=merchant), HISTORY_PAGE_SIZE
            ).get_page(self.request.GET.get("page"))
            if can_view_keys
            else None
        )
        return super().get_context_data(
            can_view_keys=can_view_keys,
            modes=modes,
            onboarding_status=status,
            history=history,
            **kwargs,
        )


class MerchantProfileEditView(MerchantPermissionRequiredMixin, FormView):
    """Contact details and requested integrations, for members who may edit the profile."""

    permission_required = EDIT_MERCHANT_PROFILE
    template_name = "merchants/profile_form.html"
    form_class = MerchantProfileForm

    def get_form_kwargs(self):
        # A copy: a refused form must not leave half-applied values on the merchant shown in
        # the page's header.
        from copy import copy

        return {**super().get_form_kwargs(), "instance": copy(self.merchant)}

    def form_valid(self, form):
        merchant_update_profile(
            merchant=self.merchant,
            actor=self.request.user,
            request=self.request,
            **{field: form.cleaned_data[field] for field in form.Meta.fields},
        )
        messages.success(self.request, "Profile saved.")
        return redirect(self.merchant.get_absolute_url())
