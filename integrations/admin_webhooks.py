"""The webhook delivery log in the admin: every event sent to the integrator's endpoints, how
each delivery went, and "Send again". Nothing here is edited by hand, and no page shows or
decrypts a signing secret."""

import json

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import ngettext

from audit.refusals import holds
from core.admin import ReadOnlyModelAdmin
from integrations.models import WebhookDelivery, WebhookEvent
from integrations.scopes import MANAGE_SERVICE_ACCOUNTS
from integrations.services.events import event_body
from integrations.services.redelivery import delivery_resend


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyModelAdmin):
    """One row per event and endpoint: what is stuck, what was given up, and why."""

    list_display = (
        "created_at",
        "event_type",
        "merchant",
        "endpoint_url",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "next_attempt",
        "delivered_at",
    )
    list_display_links = ("created_at",)
    list_filter = ("state", "event__type")
    list_select_related = ("event__merchant", "endpoint__account")
    search_fields = ("=event__event_id", "event__merchant__slug")
    show_full_result_count = False
    list_per_page = 50
    actions = ("resend_selected",)
    fields = (
        "event",
        "event_type",
        "merchant",
        "service_account",
        "endpoint_url",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "next_attempt",
        "claimed_at",
        "delivered_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # The log never shows a signing secret, so it never decrypts one either.
        return (
            super()
            .get_queryset(request)
            .select_related("event__merchant", "endpoint__account")
            .defer("endpoint__signing_secret")
        )

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="Merchant", ordering="event__merchant__slug")
    def merchant(self, obj):
        return obj.event.merchant.slug if obj.event.merchant else "-"

    @admin.display(description="Service account")
    def service_account(self, obj):
        return obj.endpoint.account.name

    @admin.display(description="Endpoint")
    def endpoint_url(self, obj):
        return obj.endpoint.url

    @admin.display(description="Next attempt", ordering="next_attempt_at")
    def next_attempt(self, obj):
        return obj.next_attempt_at if obj.state == WebhookDelivery.State.PENDING else "-"

    def has_resend_permission(self, request):
        """Return True if the user may send deliveries again (superusers: no helpdesk group
        holds the permission)."""
        return holds(request.user, MANAGE_SERVICE_ACCOUNTS)

    @admin.action(description="Send the selected events again", permissions=["resend"])
    def resend_selected(self, request, queryset):
        resent, refused = 0, []
        for delivery in queryset:
            try:
                delivery_resend(delivery=delivery, actor=request.user, request=request)
            except ValidationError as refusal:
                refused.append(f"{delivery.event.event_id}: {refusal.messages[0]}")
            else:
                resent += 1
        if resent:
            self.message_user(
                request,
                ngettext(
                    "%(count)d event is being sent again; its outcome will show here.",
                    "%(count)d events are being sent again; their outcomes will show here.",
                    resent,
                )
                % {"count": resent},
                messages.SUCCESS,
            )
        for message in refused:
            self.message_user(request, message, messages.ERROR)


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = (
        "endpoint_url",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("endpoint__account")
            .defer("endpoint__signing_secret")
        )

    @admin.display(description="Endpoint")
    def endpoint_url(self, obj):
        return obj.endpoint.url

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyModelAdmin):
    """An event as the endpoints receive it, with its deliveries."""

    list_display = ("created_at", "type", "event_id", "merchant_slug", "topic")
    list_filter = ("type",)
    list_select_related = ("merchant",)
    search_fields = ("=event_id", "merchant__slug")
    show_full_result_count = False
    list_per_page = 50
    fields = ("event_id", "type", "merchant", "topic", "created_at", "body")
    readonly_fields = fields
    inlines = (WebhookDeliveryInline,)

    @admin.display(description="Merchant", ordering="merchant__slug")
    def merchant_slug(self, obj):
        return obj.merchant.slug if obj.merchant else "-"

    @admin.display(description="What the endpoints receive")
    def body(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(event_body(obj), indent=2))
