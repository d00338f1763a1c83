from django.contrib import admin

from audit.models import AuditEvent
from core.admin import ReadOnlyModelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    """The whole audit trail, read-only: nobody edits or deletes events through the app."""

    list_display = ("occurred_at", "actor_label", "merchant", "action", "target", "ip")
    list_select_related = ("actor", "merchant")
    list_filter = ("action", ("merchant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("actor_email", "target", "merchant__name", "merchant__slug")
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at", "-pk")
    readonly_fields = [field.name for field in AuditEvent._meta.fields]
    show_full_result_count = False

    @admin.display(description="Who", ordering="actor_email")
    def actor_label(self, obj):
        return obj.actor_email or "Keyhouse"
