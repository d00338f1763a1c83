from django.contrib import admin
from django.db import models
from django.db.models import Count, Q

from config.admin import ReadOnlyModelAdmin
from merchants.models import Merchant, OutgoingEmail
from teams.admin import MembershipAdminForm
from teams.models import Membership, Role


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipAdminForm
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "joined_at")
    readonly_fields = ("joined_at",)

    def get_queryset(self, request):
        # Each row prints the membership (user, merchant and role): one query for all rows.
        return super().get_queryset(request).select_related("user", "merchant", "role")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        role = formset.form.base_fields.get("role")
        if role is not None:
            # Offer the default roles and this merchant's own, never another merchant's.
            role.queryset = Role.objects.available_to(obj)
        return formset


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "contact_email", "country", "active_keys", "created_at")
    search_fields = ("name", "slug", "contact_email")
    list_filter = ("country",)
    prepopulated_fields = {"slug": ("name",)}
    # Merchants type their address without a scheme; assume https, not Django 5's http.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = (MembershipInline,)
    ordering = ("name",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_key_count=Count(
                    "credentials", filter=Q(credentials__lifecycle_state="active")
                )
            )
        )

    @admin.display(description="Active keys", ordering="active_key_count")
    def active_keys(self, obj):
        return obj.active_key_count


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(ReadOnlyModelAdmin):
    """Mail the system sent or is trying to send, so operators can see what is stuck."""

    list_display = (
        "subject",
        "kind",
        "recipients",
        "state",
        "attempts",
        "last_error",
        "created_at",
    )
    list_filter = ("state", "kind")
    list_select_related = ("merchant",)
    search_fields = ("subject", "merchant__name", "merchant__slug")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in OutgoingEmail._meta.fields]

    @admin.display(description="To")
    def recipients(self, obj):
        return ", ".join(obj.to)
