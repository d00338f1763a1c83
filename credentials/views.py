"""Merchant pages about keys: the merchant page (its keys per mode and their history),
submitting keys (a roll names the key it replaces), one key's page with its status for the
page to follow, and reporting a key compromised."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView

from credentials.providers import DEFAULT_PROVIDER, PROVIDERS
from credentials.selectors import (
    WAITING_STATES,
    credential_fetches,
    credential_get_for_member,
    credential_status,
    credentials_by_provider,
    credentials_history,
    merchant_onboarding_status,
)
from credentials.services.lifecycle import credential_revoke
from credentials.services.submission import SubmissionRefused, credential_submit
from merchants.mixins import MerchantPermissionRequiredMixin
from teams.permissions import REVOKE_KEYS, SUBMIT_KEYS, VIEW_KEYS, VIEW_MERCHANT

HISTORY_PAGE_SIZE = 20

# Error reports (emails to ADMINS, Sentry-like handlers) replace these POST values with stars.
_SENSITIVE_FIELDS = ("secret_key", "payment_api_key", "publishable_key", "note")


class MerchantView(MerchantPermissionRequiredMixin, TemplateView):
    """One merchant: its profile, onboarding status, the current key of each mode and the
    history of its keys."""

    permission_required = VIEW_MERCHANT
    template_name = "merchants/detail.html"

    def get_context_data(self, **kwargs):
        user, merchant = self.request.user, self.merchant
        can_view_keys = user.has_perm(VIEW_KEYS, merchant)
        providers = credentials_by_provider(user=user, merchant=merchant) if can_view_keys else []
        modes = [keys for provider in providers for keys in provider.modes]
        history = (
            Paginator(
                credentials_history(user=user, merchant=merchant), HISTORY_PAGE_SIZE
            ).get_page(self.request.GET.get("page"))
            if can_view_keys
            else None
        )
        return super().get_context_data(
            can_view_keys=can_view_keys,
            providers=providers,
            other_providers=[
                provider
                for code, provider in PROVIDERS.items()
                if code not in {keys.provider for keys in providers}
            ],
            onboarding_status=merchant_onboarding_status(
                current_credentials=[keys.current for keys in modes],
                emptied_modes=sum(keys.emptied for keys in modes),
            ),
            history=history,
            **kwargs,
        )


@method_decorator(never_cache, name="dispatch")
@method_decorator(sensitive_post_parameters(*_SENSITIVE_FIELDS), name="dispatch")
class CredentialSubmitView(MerchantPermissionRequiredMixin, FormView):
    """Submitting keys: one form per provider (`?provider=kashier`; Stripe by default), each
    with its own help. A roll (`?replaces=<id>`) keeps the replaced key's provider."""

    permission_required = SUBMIT_KEYS
    template_name = "credentials/submit.html"

    def get_initial(self):
        return {"requested_integrations": self.merchant.requested_integrations}

    @cached_property
    def replacing(self):
        """Return the active key a roll (`?replaces=<id>`) replaces, or None."""
        pk = self.request.GET.get("replaces")
        if not pk:
            return None
        try:
            credential = credential_get_for_member(
                user=self.request.user, merchant=self.merchant, pk=pk
            )
        except Http404:
            return None
        return credential if credential.is_active else None

    @cached_property
    def provider(self):
        """Return the provider whose keys this page takes."""
        if self.replacing is not None:
            return self.replacing.provider_spec
        return PROVIDERS.get(self.request.GET.get("provider", ""), PROVIDERS[DEFAULT_PROVIDER])

    def get_form_class(self):
        return self.provider.form_class

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            replacing=self.replacing,
            provider=self.provider,
            providers=list(PROVIDERS.values()),
            **kwargs,
        )

    def form_valid(self, form):
        replacing, provider = self.replacing, self.provider
        keys = provider.submitted_keys(form.cleaned_data)
        if replacing is not None and keys.mode != replacing.mode:
            form.add_error(
                provider.mode_field,
                ValidationError(
                    f"You are rolling the {replacing.get_mode_display().lower()} key "
                    f"{replacing.secret_hint}, but this is a {keys.mode} key. Paste "
                    f"{replacing.get_mode_display().lower()} keys, or submit {keys.mode} "
                    "keys from the merchant page instead.",
                    code="roll_mode_mismatch",
                ),
            )
            return self.form_invalid(form)
        try:
            credential = credential_submit(
                merchant=self.merchant,
                keys=keys,
                requested_integrations=form.cleaned_data["requested_integrations"],
                note=form.cleaned_data["note"],
                actor=self.request.user,
                request=self.request,
            )
        except SubmissionRefused as error:
            form.add_error(error.field if error.field in form.fields else None, error)
            return self.form_invalid(form)
        if not self.request.user.has_perm(VIEW_KEYS, self.merchant):
            # The team rules give "View keys" with "Submit and roll keys"; a role from before
            # that rule still gets a receipt rather than a page it may not open.
            messages.success(
                self.request,
                f"Your {credential.get_mode_display().lower()} key {credential.secret_hint} is "
                f"stored encrypted and will now be verified with {provider.label}. You will get "
                "an email with the result.",
            )
            return redirect(self.merchant.get_absolute_url())
        return redirect(credential.get_absolute_url() + "?submitted=1")


class CredentialDetailView(MerchantPermissionRequiredMixin, TemplateView):
    """One key: what its provider said, the helpdesk's progress and which of the integrator's
    systems fetched its secret. While the provider has not answered, the page follows the
    key's status (`CredentialStatusView`) and shows the outcome."""

    permission_required = VIEW_KEYS
    template_name = "credentials/detail.html"

    def get_context_data(self, **kwargs):
        credential = credential_get_for_member(
            user=self.request.user, merchant=self.merchant, pk=self.kwargs["pk"]
        )
        waiting = credential.is_active and credential.verification_state in WAITING_STATES
        return super().get_context_data(
            credential=credential,
            status=credential_status(credential),
            fetches=credential_fetches(credential),
            waiting=waiting,
            # The receipt is for the page right after submitting, while no answer has come.
            just_submitted="submitted" in self.request.GET and waiting,
            **kwargs,
        )


@method_decorator(never_cache, name="dispatch")
class CredentialStatusView(MerchantPermissionRequiredMixin, View):
    """A key's verification status as JSON, for its page to follow while the provider has not
    answered. The same facts as the page, never the secret nor the publishable key."""

    permission_required = VIEW_KEYS
    http_method_names = ["get"]

    def get(self, request, *args, **kwargs):
        credential = credential_get_for_member(
            user=request.user, merchant=self.merchant, pk=kwargs["pk"]
        )
        status = credential_status(credential)
        return JsonResponse(
            {
                "provider": credential.get_provider_display(),
                "verification_state": credential.verification_state,
                "verification_label": credential.get_verification_state_display(),
                "status": status.code,
                "status_label": status.label,
                "waiting": credential.is_active and credential.verification_state in WAITING_STATES,
            }
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
            f"The key {credential.secret_hint} is revoked and erased. Now roll it in "
            f"{credential.provider_spec.dashboard} and submit the new key.",
        )
        return redirect(self.merchant.get_absolute_url())
