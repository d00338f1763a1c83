from django.contrib import admin
from django.utils.html import format_html, format_html_join

from audit.models import AuditEvent
from core.admin import ReadOnlyModelAdmin


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


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    """The whole audit trail, read-only: nobody edits or deletes events through the app."""

    list_display = ("occurred_at", "actor_label", "merchant", "what_happened", "ip")
    list_select_related = ("actor", "merchant")
    list_filter = ("action", ("merchant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("actor_email", "target", "merchant__name", "merchant__slug")
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at", "-pk")
    fields = ("occurred_at", "actor_label", "merchant", "action", "target", "ip", "details_table")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="Who", ordering="actor_email")
    def actor_label(self, obj):
        return obj.actor_email or "Keyhouse"

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
