"""The key page's own pages and buttons in the helpdesk admin: acknowledge, verify again,
report compromised and (helpdesk leads only) reveal. Each is a POST or a confirmation page
that calls the same service as the portal, with the staff member as the actor."""

import contextlib

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from audit.refusals import Refused, authorize_view, holds
from credentials.services.helpdesk import credential_acknowledge
from credentials.services.lifecycle import (
    VERIFY_AGAIN_STATES,
    credential_revoke,
    credential_verify_again,
)
from credentials.services.reveal import credential_reveal
from teams.permissions import HELPDESK_REVEAL_SECRETS


class KeyActionViewsMixin:
    """The views behind the key page's buttons, for `CredentialAdmin`, which answers
    `has_work_permission(request, obj)`."""

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
        if change and not self.has_work_permission(request, credential):
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
                    f"it at {credential.get_provider_display()}.",
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
                secrets = credential_reveal(
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
                    {**context, "secrets": secrets},
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
