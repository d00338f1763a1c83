"""The helpdesk queue's filters, ordering and words: what is waiting, what is flagged, what is
due for a follow-up first, and how each row says so."""

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone

from credentials.models import LifecycleState, VerificationState
from credentials.selectors import WAITING_FOR_HELPDESK, WAITING_FOR_MERCHANT, followup_overdue


class QueueFilter(admin.SimpleListFilter):
    """Where a key stands with the helpdesk. The queue opens on what waits for the helpdesk;
    "All keys" shows the rest (acknowledged, replaced and revoked keys)."""

    title = "helpdesk"
    parameter_name = "acknowledged"
    WAITING = "no"
    DEFAULT = WAITING

    def lookups(self, request, model_admin):
        return (
            (self.WAITING, "Waiting for the helpdesk"),
            ("overdue", "Follow-up overdue"),
            ("merchant", "Waiting for the merchant (rejected)"),
            ("yes", "Acknowledged"),
            ("all", "All keys"),
        )

    def value(self):
        return super().value() or self.DEFAULT

    def queryset(self, request, queryset):
        conditions = {
            self.WAITING: WAITING_FOR_HELPDESK,
            "overdue": followup_overdue(now=timezone.now()),
            "merchant": WAITING_FOR_MERCHANT,
        }
        if self.value() in conditions:
            return queryset.filter(conditions[self.value()])
        if self.value() == "yes":
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset

    def choices(self, changelist):
        # No "All" link without the parameter: without it the queue is the default, so each
        # choice, "All keys" included, names its value.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


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
# "Follow-up" column is sorted: PostgreSQL puts NULLs last going up, SQLite first.
FOLLOWUP_NULLS_LAST = {
    "followup_due_at": F("followup_due_at").asc(nulls_last=True),
    "-followup_due_at": F("followup_due_at").desc(nulls_last=True),
}

# A rejected key waits for the merchant, not the helpdesk: below the keys the helpdesk can act
# on, whatever its follow-up time.
WAITING_FOR_MERCHANT_LAST = Case(
    When(WAITING_FOR_MERCHANT, then=Value(1)), default=Value(0), output_field=IntegerField()
).asc()


class CredentialChangeList(ChangeList):
    def get_ordering(self, request, queryset):
        ordering = [
            FOLLOWUP_NULLS_LAST.get(field, field) if isinstance(field, str) else field
            for field in super().get_ordering(request, queryset)
        ]
        if request.GET.get(QueueFilter.parameter_name) == "overdue":
            # No overdue key waits for the merchant: without the sort key that is the same
            # for all of them, the page follows the follow-up index in order instead of
            # sorting every overdue key (#15).
            ordering = [field for field in ordering if field is not WAITING_FOR_MERCHANT_LAST]
        return ordering


RETIRED = {LifecycleState.SUPERSEDED: "replaced", LifecycleState.REVOKED: "revoked"}


def short_outcome(credential) -> str:
    """Return what the provider said about `credential` in a few words (the key's page has
    the whole sentence), and whether it is retired."""
    outcome = credential.get_verification_state_display()
    if credential.verification_state in (VerificationState.VERIFIED, VerificationState.REJECTED):
        short = credential.provider_spec.short_outcomes
        outcome = short.get(credential.verification_code, outcome)
    if credential.lifecycle_state in RETIRED:
        outcome = f"{outcome} ({RETIRED[credential.lifecycle_state]})"
    return outcome


def relative_due(due_at, *, now) -> str:
    """Return when a follow-up is due as an agent says it: "in 3 h", "overdue 2 h"."""
    seconds = int((due_at - now).total_seconds())
    minutes = abs(seconds) // 60
    if minutes < 1:
        return "due now"
    if minutes < 60:
        amount = f"{minutes} min"
    elif minutes < 48 * 60:
        amount = f"{minutes // 60} h"
    else:
        amount = f"{minutes // (24 * 60)} d"
    return f"in {amount}" if seconds > 0 else f"overdue {amount}"
