from django.contrib import admin
from django.db.models import Count, Q

from merchants.models import Merchant
from teams.models import Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "joined_at")
    readonly_fields = ("joined_at",)


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "contact_email", "country", "active_keys", "created_at")
    search_fields = ("name", "slug", "contact_email")
    list_filter = ("country",)
    prepopulated_fields = {"slug": ("name",)}
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
