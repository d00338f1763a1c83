"""The dashboard, the merchant profile and the page of a refusal. The merchant page itself,
which is about its keys, is `credentials.views.MerchantView`."""

from copy import copy

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.generic import FormView, TemplateView

from audit.refusals import Refused
from merchants.forms import MerchantProfileForm
from merchants.mixins import MerchantPermissionRequiredMixin
from merchants.permissions import EDIT_MERCHANT_PROFILE
from merchants.selectors import merchant_get_for_member, merchant_list_for_member
from merchants.services import merchant_update_profile


class DashboardView(LoginRequiredMixin, TemplateView):
    """The merchants the user belongs to, with their role in each."""

    template_name = "merchants/dashboard.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            merchants=merchant_list_for_member(user=self.request.user), **kwargs
        )


class MerchantProfileEditView(MerchantPermissionRequiredMixin, FormView):
    """Contact details and requested integrations, for members who may edit the profile."""

    permission_required = EDIT_MERCHANT_PROFILE
    template_name = "merchants/profile_form.html"
    form_class = MerchantProfileForm

    def get_form_kwargs(self):
        # A copy: a refused form must not leave half-applied values on the merchant shown in
        # the page's header.
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


def permission_denied(request, exception):
    """Answer 403 with the refusal page (`handler403`). A member refused a page of their own
    merchant keeps that merchant's navigation, so the way on is one click away."""
    merchant = None
    refused_in = getattr(exception, "merchant", None)
    if (
        isinstance(exception, Refused)
        and not exception.hidden
        and refused_in is not None
        and request.user.is_authenticated
    ):
        try:
            merchant = merchant_get_for_member(user=request.user, slug=refused_in.slug)
        except Http404:  # not (or no longer) a member: the page names no merchant
            merchant = None
    return render(request, "403.html", {"merchant": merchant}, status=403)
