"""The service account page's own pages in the admin: roll the token, revoke the account, add a
webhook endpoint. Each is a confirmation page and a POST that calls the service with the
superuser as the actor; a new token or signing secret is shown once, in the answer to that
POST, on a page that is never cached."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.refusals import authorize_view
from core.moments import moment_display
from core.validators import SecretFreeTextMixin
from integrations.models import ServiceAccount, ServiceToken
from integrations.scopes import MANAGE_SERVICE_ACCOUNTS, EventType
from integrations.services.accounts import (
    DEFAULT_ROLL_GRACE,
    service_account_revoke,
    service_token_roll,
    webhook_endpoint_add,
)

# How long the current tokens keep working after a roll: the choices the roll page offers.
ROLL_GRACE_CHOICES = (
    (0, "Now: the current token stops working at once"),
    (3600, "In 1 hour"),
    (int(DEFAULT_ROLL_GRACE.total_seconds()), "In 24 hours"),
    (7 * 86400, "In 7 days"),
)


def event_types_field() -> forms.MultipleChoiceField:
    """Return the event type checkboxes of the add form and the endpoint form."""
    return forms.MultipleChoiceField(
        choices=[(event, f"{event}: {label}") for event, label in EventType.choices],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Event types",
        help_text="None ticked: every type.",
        error_messages={"invalid_choice": "Choose event types from the list."},
    )


class RollForm(forms.Form):
    grace = forms.TypedChoiceField(
        choices=ROLL_GRACE_CHOICES,
        coerce=int,
        initial=int(DEFAULT_ROLL_GRACE.total_seconds()),
        widget=forms.RadioSelect,
        label="The current token stops working",
        error_messages={"invalid_choice": "Choose when the current token stops working."},
    )


class EndpointForm(SecretFreeTextMixin, forms.Form):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        label="URL",
        help_text="Where the signed events are sent (https://pos.example.com/keyhouse/events).",
    )
    event_types = event_types_field()


class AccountActionViewsMixin:
    """The views behind the service account page's buttons, for `ServiceAccountAdmin`, and
    the one door every page of it asks first (`_authorize`)."""

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path(
                "<path:object_id>/roll-token/",
                view(self.roll_view),
                name="integrations_serviceaccount_roll",
            ),
            path(
                "<path:object_id>/revoke/",
                view(self.revoke_view),
                name="integrations_serviceaccount_revoke",
            ),
            path(
                "<path:object_id>/add-endpoint/",
                view(self.endpoint_add_view),
                name="integrations_serviceaccount_endpoint_add",
            ),
            *super().get_urls(),
        ]

    def _authorize(self, request) -> None:
        """Refuse (403, audited) anybody who may not manage service accounts."""
        authorize_view(actor=request.user, permission=MANAGE_SERVICE_ACCOUNTS, request=request)

    # The buttons on the account's page -------------------------------------------------

    def _account_or_404(self, request, object_id) -> ServiceAccount:
        self._authorize(request)
        account = self.get_object(request, object_id)
        if account is None:
            raise Http404("No such service account.")
        return account

    def _context(self, request, account, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": account,
            **extra,
        }

    def _back(self, account) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse("admin:integrations_serviceaccount_change", args=[account.pk])
        )

    @sensitive_variables("secrets")
    def _issued(self, request, account, *, title: str, secrets: list[tuple[str, str]], note=""):
        """Show `secrets` once, on a page that is never cached (admin_view's Cache-Control,
        and Pragma for HTTP/1.0 caches)."""
        response = TemplateResponse(
            request,
            "admin/integrations/serviceaccount/issued.html",
            self._context(request, account, title=title, secrets=secrets, note=note),
        )
        response["Pragma"] = "no-cache"
        return response

    @sensitive_variables("token")
    def roll_view(self, request, object_id):
        """Roll the account's token: choose how long the current one keeps working, then the
        new token is shown once."""
        account = self._account_or_404(request, object_id)
        form = RollForm(request.POST or None)
        error = None
        if request.method == "POST" and form.is_valid():
            grace = timedelta(seconds=form.cleaned_data["grace"])
            try:
                token = service_token_roll(
                    account=account, grace=grace, actor=request.user, request=request
                )
            except ValidationError as refusal:
                error = refusal.messages[0]
            else:
                note = (
                    "The previous token no longer works."
                    if not grace
                    else "The previous token keeps working until "
                    f"{moment_display(timezone.now() + grace)}: switch the system over by then."
                )
                return self._issued(
                    request,
                    account,
                    title=f"New token for {account.name}",
                    secrets=[("API token", token)],
                    note=note,
                )
        tokens = [row for row in account.tokens.filter(revoked_at__isnull=True) if row.is_usable()]
        return TemplateResponse(
            request,
            "admin/integrations/serviceaccount/roll.html",
            self._context(
                request,
                account,
                title=f"Roll the token of {account.name}",
                form=form,
                error=error,
                tokens=[(row, token_state(row)) for row in tokens],
            ),
        )

    def revoke_view(self, request, object_id):
        """Revoke the account: a confirmation page saying what stops, then a POST."""
        account = self._account_or_404(request, object_id)
        error = None
        if request.method == "POST":
            try:
                service_account_revoke(account=account, actor=request.user, request=request)
            except ValidationError as refusal:
                error = refusal.messages[0]
            else:
                self.message_user(
                    request,
                    f"{account.name} is revoked: its tokens are refused and its endpoints get no "
                    "more events.",
                    messages.WARNING,
                )
                return self._back(account)
        return TemplateResponse(
            request,
            "admin/integrations/serviceaccount/revoke.html",
            self._context(
                request,
                account,
                title=f"Revoke {account.name}?",
                error=error,
                active_endpoints=account.endpoints.filter(active=True).count(),
            ),
        )

    @sensitive_variables("signing_secret")
    def endpoint_add_view(self, request, object_id):
        """Add a webhook endpoint to the account; its signing secret is shown once."""
        account = self._account_or_404(request, object_id)
        form = EndpointForm(request.POST or None)
        if request.method == "POST" and account.revoked_at is not None:
            form.add_error(None, "This service account is revoked: it gets no events.")
        elif request.method == "POST" and form.is_valid():
            try:
                endpoint, signing_secret = webhook_endpoint_add(
                    account=account,
                    url=form.cleaned_data["url"],
                    event_types=form.cleaned_data["event_types"],
                    actor=request.user,
                    request=request,
                )
            except ValidationError as refusal:
                form.add_error(None, refusal.messages[0])
            else:
                return self._issued(
                    request,
                    account,
                    title=f"Webhook endpoint added to {account.name}",
                    secrets=[("Signing secret", signing_secret)],
                    note=f"Events ({event_type_labels(endpoint.event_types).lower()}) go to "
                    f"{endpoint.url}, signed with this secret.",
                )
        return TemplateResponse(
            request,
            "admin/integrations/serviceaccount/endpoint_add.html",
            self._context(
                request, account, title=f"Add a webhook endpoint to {account.name}", form=form
            ),
        )


def token_state(token: ServiceToken) -> str:
    """Return whether `token` works, in words: in use, until when after a roll, or not."""
    now = timezone.now()
    if token.revoked_at is not None:
        return f"Revoked {moment_display(token.revoked_at)}"
    if token.valid_until is None:
        return "In use"
    if token.valid_until > now:
        return f"Replaced; works until {moment_display(token.valid_until)}"
    return f"Replaced; stopped {moment_display(token.valid_until)}"


def event_type_labels(event_types: list[str]) -> str:
    """Return the event types an endpoint takes, or "Every type" when it chose none."""
    return ", ".join(event_types) if event_types else "Every type"
