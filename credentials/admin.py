"""The helpdesk's queue of submitted keys. The secret is never a field here, only the hint."""

import contextlib

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from audit.refusals import Refused, authorize_view, holds
from core.admin import GuardedAdminMixin, ReadOnlyModelAdmin
from credentials.admin_queue import (
    FOLLOWUP_NULLS_LAST,
    AcknowledgementFilter,
    CredentialChangeList,
    FlaggedFilter,
)
from credentials.models import Credential, EncryptionCanary
from credentials.services.helpdesk import credential_acknowledge
from credentials.services.lifecycle import (
    VERIFY_AGAIN_STATES,
    credential_revoke,
    credential_verify_again,
)
from credentials.services.reveal import credential_reveal
from teams.permissions import HELPDESK_REVEAL_SECRETS


@admin.register(Credential)
class CredentialAdmin(GuardedAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/credentials/credential/change_form.html"
    list_display = (
        "merchant",
        "provider",
        "mode",
        "kind",
        "secret_hint",
        "verification_state",
        "lifecycle_state",
        "next_followup",
        "acknowledged",
        "flagged",
        "submitted_at",
        "submitted_by",
    )
    list_filter = (
        AcknowledgementFilter,
        FlaggedFilter,
        "verification_state",
        "lifecycle_state",
        "mode",
        "provider",
        "kind",
    )
    actions = ("acknowledge_selected",)
    list_select_related = ("merchant", "submitted_by")
    search_fields = ("merchant__name", "merchant__slug", "secret_hint", "account_id")
    date_hierarchy = "submitted_at"
    # The helpdesk's queue: what is due for a follow-up first, then the newest.
    ordering = (FOLLOWUP_NULLS_LAST["followup_due_at"], "-submitted_at")
    list_per_page = 50
    show_full_result_count = False
    # `secret` is excluded explicitly as well as being non-editable: it must never become a
    # form field, even if someone later lists every field here.
    exclude = ("secret",)
    fieldsets = (
        (
            "Submission",
            {
                "fields": (
                    "merchant",
                    "provider",
                    "mode",
                    "kind",
                    "secret_hint",
                    "publishable_key",
                    "requested_integrations",
                    "note",
                    "submitted_by",
                    "submitted_at",
                )
            },
        ),
        (
            "Verification",
            {
                "fields": (
                    "verification_state",
                    "verification_attempts",
                    "checked_at",
                    "verification_code",
                    "verification_reason",
                    "account_id",
                    "account_name",
                    "account_country",
                    "livemode",
                    "charges_enabled",
                    "payouts_enabled",
                    "details_submitted",
                )
            },
        ),
        (
            "Lifecycle",
            {
                "fields": (
                    "lifecycle_state",
                    "lifecycle_changed_at",
                    "replaced_by",
                    "revoked_by",
                    "revoked_reason",
                    "next_reverify_at",
                    "fingerprint",
                )
            },
        ),
        (
            "Helpdesk",
            {
                "fields": (
                    "flags",
                    "helpdesk_notified_at",
                    "acknowledged_at",
                    "acknowledged_by",
                    "followup_due_at",
                    "reminders_sent",
                    "last_reminded_at",
                )
            },
        ),
    )

    @admin.display(description="Next follow-up", ordering="followup_due_at")
    def next_followup(self, obj):
        return obj.followup_due_at

    @admin.display(description="Acknowledged", boolean=True, ordering="acknowledged_at")
    def acknowledged(self, obj):
        return obj.acknowledged_at is not None

    @admin.display(description="Flagged", boolean=True)
    def flagged(self, obj):
        return bool(obj.helpdesk_flags)

    @admin.display(description="Please check")
    def flags(self, obj):
        # The sentences, not the stored codes: the agent reads what to look at.
        return "; ".join(obj.helpdesk_flag_labels) or "-"

    # permissions=["change"]: staff who may only view keys are not offered the action.
    @admin.action(
        description="Acknowledge selected submissions (stops reminders)", permissions=["change"]
    )
    def acknowledge_selected(self, request, queryset):
        if not self.has_change_permission(request):
            raise PermissionDenied
        # Only the ids are needed: select_related(None) drops list_select_related, which
        # cannot be combined with only().
        done = sum(
            credential_acknowledge(credential=credential, actor=request.user, request=request)
            for credential in queryset.select_related(None).only("pk")
        )
        skipped = queryset.count() - done
        self.message_user(
            request,
            ngettext(
                "%(done)d submission acknowledged.",
                "%(done)d submissions acknowledged.",
                done,
            )
            % {"done": done}
            + (f" {skipped} had already been acknowledged." if skipped else ""),
            messages.SUCCESS,
        )

    def get_urls(self):
        acknowledge = self.admin_site.admin_view(require_POST(self.acknowledge_view))
        verify_again = self.admin_site.admin_view(require_POST(self.verify_again_view))
        revoke = self.admin_site.admin_view(self.revoke_view)
        # admin_view() makes these pages never cached (no-store, private).
        reveal = self._not_found_for_members(self.admin_site.admin_view(self.reveal_view))
        return [
            path(
                "<path:object_id>/acknowledge/",
                acknowledge,
                name="credentials_credential_acknowledge",
            ),
            path(
                "<path:object_id>/verify-again/",
                verify_again,
                name="credentials_credential_verify_again",
            ),
            path("<path:object_id>/revoke/", revoke, name="credentials_credential_revoke"),
            path("<path:object_id>/reveal/", reveal, name="credentials_credential_reveal"),
            *super().get_urls(),
        ]

    def _credential_or_404(self, request, object_id, *, change: bool):
        credential = self.get_object(request, object_id)
        if credential is None:
            raise Http404("No such submission.")
        if change and not self.has_change_permission(request, credential):
            raise PermissionDenied
        return credential

    def revoke_view(self, request, object_id):
        """Report a key compromised from the helpdesk: a confirmation page, then a POST."""
        credential = self._credential_or_404(request, object_id, change=True)
        error = None
        if request.method == "POST":
            try:
                credential_revoke(
                    credential=credential,
                    actor=request.user,
                    reason=request.POST.get("reason", ""),
                    request=request,
                )
            except ValidationError as refusal:
                error = refusal.messages[0]
            else:
                self.message_user(
                    request,
                    f"{credential.secret_hint} revoked and erased; the merchant was told to roll "
                    "it at Stripe.",
                    messages.WARNING,
                )
                return HttpResponseRedirect(
                    reverse("admin:credentials_credential_change", args=[credential.pk])
                )
        return TemplateResponse(
            request,
            "admin/credentials/credential/revoke.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": credential,
                "title": f"Report {credential.secret_hint} compromised",
                "error": error,
            },
        )

    def reveal_view(self, request, object_id):
        """Show the secret once to a helpdesk lead, after a POST with a reason and a fresh code
        from the lead's authenticator app (`otp_token`); never cached.

        Everybody else, staff included, is refused (403), and the refusal is audited; so is a
        lead's missing or wrong code, which the form shows.
        """
        credential = self._credential_or_404(request, object_id, change=False)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": credential,
            "title": f"Reveal {credential.secret_hint}",
            "can_reveal": holds(request.user, HELPDESK_REVEAL_SECRETS),
            "verify_again_states": VERIFY_AGAIN_STATES,
        }
        if request.method == "POST":
            try:
                secret = credential_reveal(
                    credential=credential,
                    actor=request.user,
                    reason=request.POST.get("reason", ""),
                    otp_token=request.POST.get("otp_token", ""),
                    request=request,
                )
            except ValidationError as refusal:
                context["error"] = refusal.messages[0]
            except Refused as refusal:
                if not context["can_reveal"]:
                    raise
                context["error"] = refusal.message
                context["reason"] = request.POST.get("reason", "")
            else:
                response = TemplateResponse(
                    request,
                    "admin/credentials/credential/revealed.html",
                    {**context, "secret": secret},
                )
                # Cache-Control comes from admin_view(); Pragma is for HTTP/1.0 caches.
                response["Pragma"] = "no-cache"
                return response
        elif not context["can_reveal"]:
            # A refused visit is audited like a refused POST (and answered 403).
            authorize_view(
                actor=request.user,
                permission=HELPDESK_REVEAL_SECRETS,
                about=credential.merchant,
                request=request,
            )
        return TemplateResponse(request, "admin/credentials/credential/reveal.html", context)

    def _not_found_for_members(self, view):
        """Return `view` answering a signed-in member (not staff) 404, whatever the method,
        instead of the admin's sign-in page; the attempt on an existing key is audited in its
        merchant's trail."""

        def staff_only(request, object_id):
            if request.user.is_authenticated and not request.user.is_staff:
                credential = self.get_object(request, object_id)
                if credential is not None:
                    with contextlib.suppress(Refused):  # audited; the answer stays 404
                        authorize_view(
                            actor=request.user,
                            permission=HELPDESK_REVEAL_SECRETS,
                            about=credential.merchant,
                            request=request,
                        )
                raise Http404("No such page.")
            return view(request, object_id)

        return staff_only

    def acknowledge_view(self, request, object_id):
        """The "Acknowledge" button on the change page: a POST, then back to the page."""
        credential = self._credential_or_404(request, object_id, change=True)
        if credential_acknowledge(credential=credential, actor=request.user, request=request):
            self.message_user(request, "Acknowledged: no more reminders.", messages.SUCCESS)
        else:
            self.message_user(request, "This submission was already acknowledged.")
        return HttpResponseRedirect(
            reverse("admin:credentials_credential_change", args=[credential.pk])
        )

    def verify_again_view(self, request, object_id):
        """The "Verify again" button on a key Stripe rejected or could not be reached for: a
        POST, then back to the page, which shows it being verified."""
        credential = self._credential_or_404(request, object_id, change=True)
        try:
            credential_verify_again(credential=credential, actor=request.user, request=request)
        except ValidationError as refusal:
            self.message_user(request, refusal.messages[0], messages.ERROR)
        else:
            self.message_user(
                request,
                f"{credential.secret_hint} is being verified again; its outcome will show here "
                "and is mailed if it changed.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(
            reverse("admin:credentials_credential_change", args=[credential.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_reveal": holds(request.user, HELPDESK_REVEAL_SECRETS),
            "verify_again_states": VERIFY_AGAIN_STATES,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_changelist(self, request, **kwargs):
        return CredentialChangeList

    def get_queryset(self, request):
        # The admin never shows the secret, so it never decrypts one either.
        return super().get_queryset(request).defer("secret")

    def get_readonly_fields(self, request, obj=None):
        # Every fact here was recorded by the system; the helpdesk acts through actions.
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_add_permission(self, request):
        # Keys come from merchants through the portal, never typed into the admin.
        return False

    def has_delete_permission(self, request, obj=None):
        # History is kept: keys are superseded or revoked, not deleted.
        return False


@admin.register(EncryptionCanary)
class EncryptionCanaryAdmin(ReadOnlyModelAdmin):
    """Read-only: without the canary the system check has nothing known to decrypt."""

    list_display = ("pk", "created_at")
    exclude = ("value",)
    readonly_fields = ("created_at",)
