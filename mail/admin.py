from django.contrib import admin

from core.admin import ReadOnlyModelAdmin
from mail.models import OutgoingEmail


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
    search_fields = ("subject", "to", "topic")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in OutgoingEmail._meta.fields]

    @admin.display(description="To")
    def recipients(self, obj):
        return ", ".join(obj.to)
