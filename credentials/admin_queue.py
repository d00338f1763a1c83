"""The helpdesk queue's filters and ordering: what is waiting, what is flagged, what is due
for a follow-up first."""

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import F


class AcknowledgementFilter(admin.SimpleListFilter):
    title = "helpdesk"
    parameter_name = "acknowledged"

    def lookups(self, request, model_admin):
        return (("no", "Waiting for the helpdesk"), ("yes", "Acknowledged"))

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(acknowledged_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset


class FlaggedFilter(admin.SimpleListFilter):
    title = "flags"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return (("yes", "Flagged for a look"),)

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(helpdesk_flags=[])
        return queryset


# Submissions without a follow-up (acknowledged, or not yet verified) go last whichever way the
# "Next follow-up" column is sorted: PostgreSQL puts NULLs last going up, SQLite first.
FOLLOWUP_NULLS_LAST = {
    "followup_due_at": F("followup_due_at").asc(nulls_last=True),
    "-followup_due_at": F("followup_due_at").desc(nulls_last=True),
}


class CredentialChangeList(ChangeList):
    def get_ordering(self, request, queryset):
        return [
            FOLLOWUP_NULLS_LAST.get(field, field) if isinstance(field, str) else field
            for field in super().get_ordering(request, queryset)
        ]
