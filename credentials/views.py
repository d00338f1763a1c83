"""Merchant pages about keys: the merchant page (its keys per mode and their history),
submitting keys, one key's page, and reporting a key compromised."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView

from credentials.forms import CredentialSubmitForm
from credentials.models import Mode
from credentials.selectors import (
    credential_get_for_member,
    credential_last_retired,
    credentials_current_by_mode,
    credentials_history,
    merchant_onboarding_status,
)
from credentials.services.lifecycle import credential_revoke
from credentials.services.submission import SubmissionRefused, credential_submit
from merchants.mixins import MerchantPermissionRequiredMixin
from teams.permissions import REVOKE_KEYS, SUBMIT_KEYS, VIEW_KEYS, VIEW_MERCHANT

HISTORY_PAGE_SIZE = 20

# Error reports (emails to ADMINS, Sentry-like handlers) replace these POST values with stars.
_SENSITIVE_FIELDS = ("secret_key", "publishable_key", "note")


class MerchantView(MerchantPermissionRequiredMixin, TemplateView):
    """One merchant: its profile, onboarding status, the current key of each mode and the
    history of its keys."""

    permission_required = VIEW_MERCHANT
    template_name = "merchants/detail.html"

    def get_context_data(self, **kwargs):
        user, merchant = self.request.user, self.merchant
        can_view_keys = user.has_perm(VIEW_KEYS, merchant)
        current = credentials_current_by_mode(user=user, merchant=merchant) if can_view_keys else {}
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
            onboarding_status=merchant_onboarding_status(current_credentials=current.values()),
            history=history,
            **kwargs,
        )


@method_decorator(never_cache, name="dispatch")
@method_decorator(sensitive_post_parameters(*_SENSITIVE_FIELDS), name="dispatch")
class CredentialSubmitView(MerchantPermissionRequiredMixin, FormView):
    permission_required = SUBMIT_KEYS
    form_class = CredentialSubmitForm
    template_name = "credentials/submit.html"

    def get_initial(self):
        return {"requested_integrations": self.merchant.requested_integrations}

    def form_valid(self, form):
        try:
            credential = credential_submit(
                merchant=self.merchant,
                publishable_key=form.cleaned_data["publishable_key"],
                secret_key=form.cleaned_data["secret_key"],
                requested_integrations=form.cleaned_data["requested_integrations"],
                note=form.cleaned_data["note"],
                actor=self.request.user,
                request=self.request,
            )
        except SubmissionRefused as error:
            field = "secret_key" if error.code == "duplicate" else None
            form.add_error(field, error)
            return self.form_invalid(form)
        return redirect(credential.get_absolute_url() + "?submitted=1")


class CredentialDetailView(MerchantPermissionRequiredMixin, TemplateView):
    permission_required = VIEW_KEYS
    template_name = "credentials/detail.html"

    def get_context_data(self, **kwargs):
        credential = credential_get_for_member(
            user=self.request.user, merchant=self.merchant, pk=self.kwargs["pk"]
        )
        return super().get_context_data(
            credential=credential, just_submitted="submitted" in self.request.GET, **kwargs
        )


@method_decorator(sensitive_post_parameters("reason"), name="dispatch")
class CredentialRevokeView(MerchantPermissionRequiredMixin, TemplateView):
    """Report a key compromised: a confirmation page, then one POST revokes it at once."""

    permission_required = REVOKE_KEYS
    template_name = "credentials/revoke.html"

    def get_credential(self):
        return credential_get_for_member(
            user=self.request.user, merchant=self.merchant, pk=self.kwargs["pk"]
        )

    def get_context_data(self, **kwargs):
        return super().get_context_data(credential=self.get_credential(), **kwargs)

    def post(self, request, *args, **kwargs):
        credential = self.get_credential()
        try:
            credential_revoke(
                credential=credential,
                actor=request.user,
                reason=request.POST.get("reason", ""),
                request=request,
            )
        except ValidationError as refusal:
            return self.render_to_response(
                self.get_context_data(error=refusal.messages[0], **kwargs)
            )
        messages.warning(
            request,
            f"The key {credential.secret_hint} is revoked and erased. Now roll it in the Stripe "
            "dashboard and submit the new key.",
        )
        return redirect(self.merchant.get_absolute_url())
