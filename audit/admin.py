from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from audit.models import AuditEvent
from core.admin import LargeListMixin, ReadOnlyModelAdmin


def detail_words(value) -> str:
    """Return a detail's value as a reader writes it: lists joined, yes/no, a dash for none."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value in (None, "", [], {}):
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(detail_words(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(
            f"{key.replace('_', ' ')}: {detail_words(item)}" for key, item in value.items()
        )
    return str(value)


class MerchantFilter(admin.SimpleListFilter):
    """The events of one merchant, chosen from an event's row ("only this merchant").

    Not a list of every merchant with an event: with 100,000 merchants that list is 100,000
    links, and finding them reads every event. Only the chosen merchant is offered, beside
    "All"; the parameter is the one Django's own filter used, so old links still work.
    """

    title = "merchant"
    parameter_name = "merchant__id__exact"

    def lookups(self, request, model_admin):
        if not self.value():
            return ()
        merchants = model_admin.opts.get_field("merchant").related_model._base_manager
        return merchants.filter(pk=self.value()).values_list("pk", "name")

    def value(self):
        value = super().value()
        # A merchant's id, or nothing: anything else is no merchant's (and not a query).
        return value if value and value.isdigit() else None

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(merchant_id=self.value())
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(LargeListMixin, ReadOnlyModelAdmin):
    """The whole audit trail, read-only: nobody edits or deletes events through the app."""

    list_display = ("occurred_at", "actor_label", "merchant_link", "what_happened", "ip")
    list_select_related = ("actor", "merchant")
    # Dates by fixed ranges (today, past 7 days, this month, this year), not Django's date
    # hierarchy: its year and month links are read from every event the list holds, a million
    # on each page view; a range is read from the occurred_at index.
    list_filter = ("action", MerchantFilter, ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("actor_email", "target", "merchant__name", "merchant__slug")
    ordering = ("-occurred_at", "-pk")
    fields = ("occurred_at", "actor_label", "merchant", "action", "target", "ip", "details_table")
    readonly_fields = fields

    @admin.display(description="Who", ordering="actor_email")
    def actor_label(self, obj):
        return obj.actor_email or "Keyhouse"

    # Not sortable: ordering a million events by their merchant's name sorts them all.
    @admin.display(description="Merchant")
    def merchant_link(self, obj):
        if obj.merchant is None:
            return "-"
        return format_html(
            '<a href="?{}" title="Only this merchant\'s events">{}</a>',
            urlencode({MerchantFilter.parameter_name: obj.merchant_id}),
            obj.merchant,
        )

    @admin.display(description="What happened", ordering="action")
    def what_happened(self, obj):
        label = obj.get_action_display()
        return f"{label}: {obj.target}" if obj.target else label

    @admin.display(description="Details")
    def details_table(self, obj):
        if not isinstance(obj.details, dict) or not obj.details:
            return detail_words(obj.details)
        rows = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td>{}</td></tr>',
            (
                (key.replace("_", " ").capitalize(), detail_words(value))
                for key, value in sorted(obj.details.items(), key=_detail_order)
            ),
        )
        return format_html('<table class="keyhouse-details">{}</table>', rows)


# Details read in this order where they occur (PostgreSQL's jsonb keeps no insertion order);
# other keys follow alphabetically.
DETAIL_ORDER = (
    "from",
    "to",
    "from_role",
    "to_role",
    "before",
    "after",
    "reason",
    "permission",
    "role",
    "outcome",
    "code",
)


def _detail_order(item) -> tuple[int, str]:
    key = item[0]
    return (DETAIL_ORDER.index(key) if key in DETAIL_ORDER else len(DETAIL_ORDER), key)
