"""Service accounts in the admin: superusers only (MANAGE_SERVICE_ACCOUNTS).

Every write goes through `integrations.services.accounts` with the superuser as the actor, so
it is audited and checked like `manage.py create_service_account`: the add form creates the
account (and an optional webhook endpoint), the change form updates what it may read, and the
page's buttons roll its token, revoke it or add an endpoint, each a confirmation page and a
POST. A token and a signing secret are shown once, in the answer to the POST that made them,
on a page that is never cached; afterwards only a token's public part (`kh_<key id>_…`) is.
"""

from django.contrib import admin
from django.db.models import Count
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_variables

from audit.refusals import holds
from core.admin import GuardedAdminMixin
from core.moments import moment_display
from integrations.admin_account_views import (
    AccountActionViewsMixin,
    event_type_labels,
    token_state,
)
from integrations.admin_forms import ServiceAccountAddForm, ServiceAccountForm
from integrations.models import ServiceAccount, ServiceToken, WebhookEndpoint
from integrations.scopes import MANAGE_SERVICE_ACCOUNTS, Scope
from integrations.services.accounts import (
    service_account_create,
    service_account_update,
)

# Where save_model leaves the secrets the service returned for response_add to show once: on
# the request, which ends with the answer.
_ISSUED = "_keyhouse_issued"


def _managers_only(request) -> bool:
    return holds(request.user, MANAGE_SERVICE_ACCOUNTS)


class ServiceTokenInline(admin.TabularInline):
    """The account's tokens by their public part: never a hash, never a token."""

    model = ServiceToken
    extra = 0
    fields = ("token", "state", "created_at", "last_used_at", "valid_until")
    readonly_fields = fields
    verbose_name = "token"
    verbose_name_plural = "tokens (their public part: the rest is never shown again)"

    @admin.display(description="Token")
    def token(self, obj):
        return f"{obj.prefix}…"

    @admin.display(description="State")
    def state(self, obj):
        return token_state(obj)

    def has_view_permission(self, request, obj=None):
        return _managers_only(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WebhookEndpointInline(admin.TabularInline):
    """Where the account's events go; never the signing secret."""

    model = WebhookEndpoint
    extra = 0
    fields = ("endpoint_url", "event_type_list", "active", "created_at")
    readonly_fields = fields
    verbose_name = "webhook endpoint"

    @admin.display(description="URL")
    def endpoint_url(self, obj):
        return obj.url

    @admin.display(description="Event types")
    def event_type_list(self, obj):
        return event_type_labels(obj.event_types)

    def has_view_permission(self, request, obj=None):
        return _managers_only(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


ADD_FIELDSETS = (
    (None, {"fields": ("name", "description", "scopes")}),
    ("Merchants", {"fields": ("all_merchants", "merchants")}),
    ("Limits", {"fields": ("expires_at", "allowed_ips")}),
    (
        "Webhook (optional)",
        {
            "fields": ("webhook_url", "event_types"),
            "description": "Its signing secret is shown once, with the token, after saving.",
        },
    ),
)
CHANGE_FIELDSETS = (
    (None, {"fields": ("name", "state", "description", "scopes")}),
    ("Merchants", {"fields": ("all_merchants", "merchants")}),
    ("Limits", {"fields": ("expires_at", "allowed_ips")}),
    ("History", {"fields": ("created_at", "created_by", "last_used_at", "revoked_at")}),
)
# A revoked account's page: the same facts, read-only, in words rather than stored values.
VIEW_FIELDSETS = (
    (None, {"fields": ("name", "state", "description", "scope_descriptions")}),
    ("Merchants", {"fields": ("merchant_names",)}),
    ("Limits", {"fields": ("expires_at", "allowed_ip_list")}),
    ("History", {"fields": ("created_at", "created_by", "last_used_at", "revoked_at")}),
)


@admin.register(ServiceAccount)
class ServiceAccountAdmin(AccountActionViewsMixin, GuardedAdminMixin, admin.ModelAdmin):
    """The integrator's systems and their API tokens. Superusers only: everybody else sees no
    entry and is refused (403, audited) on every page."""

    form = ServiceAccountForm
    change_form_template = "admin/integrations/serviceaccount/change_form.html"
    list_display = ("name", "scope_list", "merchant_list", "state", "last_used_at", "expires_at")
    search_fields = ("name", "description")
    # Not autocomplete_fields: its widget fails (500) re-rendering a posted value that is no id.
    inlines = (ServiceTokenInline, WebhookEndpointInline)
    ordering = ("name",)
    view_on_site = False

    # Pages and permissions: each page asks the one door (`_authorize`) first ------------

    def changelist_view(self, request, extra_context=None):
        self._authorize(request)
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        self._authorize(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._authorize(request)
        return super().history_view(request, object_id, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._authorize(request)
        return super().delete_view(request, object_id, extra_context)

    def has_module_permission(self, request):
        return _managers_only(request)

    def has_view_permission(self, request, obj=None):
        return _managers_only(request)

    def has_add_permission(self, request):
        return _managers_only(request)

    def has_change_permission(self, request, obj=None):
        # A revoked account's page is view-only: nothing about it can be used again.
        return _managers_only(request) and (obj is None or obj.revoked_at is None)

    def has_delete_permission(self, request, obj=None):
        # Revoke instead: the audit trail and the key pages name the account.
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(merchant_count=Count("merchants"))

    # The form ----------------------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ServiceAccountAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ADD_FIELDSETS
        if self.has_change_permission(request, obj):
            return CHANGE_FIELDSETS
        return VIEW_FIELDSETS

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # The name is in the integrator's configuration and the audit trail: fixed.
        return ("name", "state", "created_at", "created_by", "last_used_at", "revoked_at")

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    @sensitive_variables("token", "signing_secret")
    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        limits = {
            "scopes": data["scopes"],
            "merchants": list(data["merchants"]),
            "all_merchants": data["all_merchants"],
            "expires_at": data["expires_at"],
            "allowed_ips": data["allowed_ips"],
            "description": data["description"],
            "actor": request.user,
            "request": request,
        }
        if change:
            saved = service_account_update(account=ServiceAccount.objects.get(pk=obj.pk), **limits)
        else:
            saved, token, signing_secret = service_account_create(
                name=data["name"],
                webhook_url=data["webhook_url"],
                event_types=data["event_types"],
                **limits,
            )
            setattr(request, _ISSUED, (token, signing_secret))
        # The admin goes on with `obj` (its log entry, message and redirect): the saved row.
        obj.pk = saved.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        # The service set the merchants (no form.save_m2m()). The inlines are read-only:
        # saving them writes nothing and tells the admin's change message so.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def response_add(self, request, obj, post_url_continue=None):
        token, signing_secret = getattr(request, _ISSUED)
        account = ServiceAccount.objects.get(pk=obj.pk)
        secrets = [("API token", token)]
        if signing_secret:
            secrets.append(("Webhook signing secret", signing_secret))
        return self._issued(
            request,
            account,
            title=f"Service account {account.name} created",
            secrets=secrets,
        )

    # Columns and read-only fields ---------------------------------------------------------

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes) or "-"

    @admin.display(description="Scopes")
    def scope_descriptions(self, obj):
        labels = dict(Scope.choices)
        return format_html(
            '<ul class="keyhouse-list">{}</ul>',
            format_html_join(
                "",
                "<li><code>{}</code>: {}</li>",
                ((scope, labels.get(scope, "")) for scope in obj.scopes),
            ),
        )

    @admin.display(description="Merchants", ordering="merchant_count")
    def merchant_list(self, obj):
        if obj.all_merchants:
            return "All merchants"
        count = obj.merchant_count
        return f"{count} merchant{'s' if count != 1 else ''}" if count else "None"

    @admin.display(description="Merchants")
    def merchant_names(self, obj):
        if obj.all_merchants:
            return "All merchants, present and future"
        return ", ".join(str(merchant) for merchant in obj.merchants.order_by("name")) or "None"

    @admin.display(description="Allowed IP addresses")
    def allowed_ip_list(self, obj):
        return ", ".join(obj.allowed_ips) or "Any"

    @admin.display(description="State")
    def state(self, obj):
        if obj.revoked_at is not None:
            return f"Revoked {moment_display(obj.revoked_at)}"
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return f"Expired {moment_display(obj.expires_at)}"
        return "Active"
