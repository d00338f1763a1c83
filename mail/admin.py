from django.contrib import admin

from core.admin import LargeListMixin, ReadOnlyModelAdmin
from mail.models import OutgoingEmail

# What each kind of mail is, in words: the outbox knows nothing of what its mail is about, so
# each sender's admin names its own kinds (`mail_kind_labels_register`).
KIND_LABELS: dict[str, str] = {}


def mail_kind_labels_register(labels: dict[str, str]) -> None:
    """Name kinds of mail for the helpdesk: `{kind: "What the mail is, as a sentence"}`."""
    KIND_LABELS.update(labels)


def mail_kind_label(kind: str) -> str:
    """Return the words for `kind`, or the kind itself spelt out when no sender named it."""
    return KIND_LABELS.get(kind) or kind.replace("_", " ").capitalize()


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return sorted(KIND_LABELS.items(), key=lambda item: item[1])

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(kind=self.value())
        return queryset


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(LargeListMixin, ReadOnlyModelAdmin):
    """Mail the system sent or is trying to send, so operators can see what is stuck."""

    list_display = (
        "subject",
        "kind_label",
        "recipients",
        "state",
        "attempts",
        "last_error",
        "created_at",
    )
    list_filter = ("state", KindFilter)
    search_fields = ("subject", "to", "topic")
    date_hierarchy = "created_at"
    fields = (
        "subject",
        "kind_label",
        "recipients",
        "state",
        "urgent",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "sent_at",
        "topic",
        "dedupe_key",
        "body_text",
    )
    readonly_fields = fields

    @admin.display(description="Kind", ordering="kind")
    def kind_label(self, obj):
        return mail_kind_label(obj.kind)

    @admin.display(description="To")
    def recipients(self, obj):
        return ", ".join(obj.to)
