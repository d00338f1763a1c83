"""The dashboard and the merchant page."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView

from credentials.models import Mode
from credentials.selectors import credentials_current_by_mode
from merchants.selectors import memberships_for_user, merchant_onboarding_status
from teams.mixins import MerchantPermissionRequiredMixin
from teams.permissions import VIEW_KEYS, VIEW_MERCHANT


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
        modes = [(mode, label, current.get(mode)) for mode, label in Mode.choices]
        status = merchant_onboarding_status(current_credentials=current.values())
        return super().get_context_data(
            can_view_keys=can_view_keys, modes=modes, onboarding_status=status, **kwargs
        )
