"""The helpdesk's queue of submitted keys. The secret is never a field here, only the hint."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.templatetags.static import static
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import ngettext

from audit.refusals import holds
from core.admin import GuardedAdminMixin, LargeListMixin, ReadOnlyModelAdmin
from credentials.admin_queue import (
    FOLLOWUP_NULLS_LAST,
    WAITING_FOR_MERCHANT_LAST,
    CredentialChangeList,
    FlaggedFilter,
    QueueFilter,
    relative_due,
    short_outcome,
)
from credentials.admin_search import RelatedFirstSearchMixin
from credentials.admin_views import KeyActionViewsMixin
from credentials.models import Credential, EncryptionCanary, VerificationState
from credentials.services.helpdesk import credential_acknowledge
from credentials.services.lifecycle import VERIFY_AGAIN_STATES
from credentials.services.notifications import HELPDESK_REMINDER, HELPDESK_SUBMISSION
from mail.admin import mail_kind_labels_register
from teams.permissions import HELPDESK_REVEAL_SECRETS

mail_kind_labels_register(
    {
        HELPDESK_SUBMISSION: "A key was submitted: the helpdesk is told the provider's answer",
        HELPDESK_REMINDER: "A submission is still waiting: reminder to the helpdesk",
        "merchant_verification_result": "The merchant is told the provider's answer about a key",
        "merchant_key_revoked": "The merchant is told their key was revoked",
        "helpdesk_key_revoked": "Urgent: the helpdesk is told a key was reported compromised",
        "merchant_key_no_longer_valid": "The merchant is told their key stopped working",
        "helpdesk_key_no_longer_valid": "The helpdesk is told the provider no longer accepts a key",
    }
)


class CredentialAdminForm(forms.ModelForm):
    """The key page edits nothing: every field is read-only (CredentialAdmin)."""

    class Meta:
        model = Credential
        fields = ()
        # Read-only fields show their model's help text: these are written for developers.
        help_texts = {"verification_reason": "", "replaced_by": ""}
        labels = {
            "verification_reason": "What the merchant was told",
            "verification_code": "Provider's code",
            "public_key": "Public value (publishable key or merchant id)",
        }


@admin.register(Credential)
class CredentialAdmin(
    KeyActionViewsMixin,
    RelatedFirstSearchMixin,
    LargeListMixin,
    GuardedAdminMixin,
    admin.ModelAdmin,
):
    form = CredentialAdminForm
    change_form_template = "admin/credentials/credential/change_form.html"
    # The columns an agent decides by, narrow enough for 1280 pixels beside the filters.
    list_display = (
        "merchant",
        "provider_mode",
        "secret_hint",
        "provider_said",
        "flagged",
        "followup",
        "acknowledged_by_label",
    )
    list_display_links = ("secret_hint",)
    list_filter = (
        QueueFilter,
        FlaggedFilter,
        "verification_state",
        "lifecycle_state",
        "mode",
        "provider",
        "kind",
    )
    actions = ("acknowledge_selected",)
    list_select_related = ("merchant", "acknowledged_by")
    search_fields = ("merchant__name", "merchant__slug", "secret_hint", "account_id")
    # Merchants are looked up first, then their keys (admin_search.py): indexed both ways.
    search_related = "merchant"
    # No date_hierarchy: its year links read the submission date of every key the filters
    # pass (a million for "All keys") on each page view; the queue is worked by its filters.
    # The helpdesk's queue: what is due for a follow-up first, then the newest; keys only the
    # merchant can fix after those.
    ordering = (WAITING_FOR_MERCHANT_LAST, FOLLOWUP_NULLS_LAST["followup_due_at"], "-submitted_at")
    list_per_page = 50
    # The portal's key page is for the merchant's members: staff would get a 404 there.
    view_on_site = False
    # `secret` is excluded explicitly as well as being non-editable: it must never become a
    # form field, even if someone later lists every field here.
    exclude = ("secret", "extra_secret")
    fieldsets = (
        (
            "Submission",
            {
                "fields": (
                    "merchant",
                    "provider",
                    "mode",
                    "kind",
                    "secret_hint",
                    "public_key",
                    "integrations",
                    "note",
                    "submitted_by",
                    "submitted_at",
                )
            },
        ),
        (
            "Verification",
            {
                "fields": (
                    "verification_state",
                    "verification_reason",
                    "verification_code",
                    "verification_attempts",
                    "checked_at",
                    "missing_permissions_list",
                    "account_id",
                    "account_name",
                    "account_country",
                    "livemode",
                    "charges_enabled",
                    "payouts_enabled",
                    "details_submitted",
                )
            },
        ),
        (
            "Lifecycle",
            {
                "fields": (
                    "lifecycle_state",
                    "lifecycle_changed_at",
                    "replaced_by",
                    "revoked_by",
                    "revoked_reason",
                    "next_reverify_at",
                    "fingerprint",
                )
            },
        ),
        (
            "Helpdesk",
            {
                "fields": (
                    "flags",
                    "helpdesk_notified_at",
                    "acknowledged_at",
                    "acknowledged_by",
                    "followup_due_at",
                    "reminders_sent",
                    "last_reminded_at",
                )
            },
        ),
    )

    @admin.display(description="Key", ordering="mode")
    def provider_mode(self, obj):
        return f"{obj.get_provider_display()} · {obj.get_mode_display()}"

    @admin.display(description="What the provider said", ordering="verification_state")
    def provider_said(self, obj):
        return short_outcome(obj)

    @admin.display(description="Missing permissions")
    def missing_permissions_list(self, obj):
        return "; ".join(obj.missing_permission_labels) or "-"

    @admin.display(description="Flags")
    def flagged(self, obj):
        if not obj.helpdesk_flags:
            return ""
        # A warning sign whose text alternative is the flags themselves (Django's boolean
        # icons would show a green tick for "something is wrong").
        labels = "Please check: " + "; ".join(obj.helpdesk_flag_labels)
        return format_html(
            '<img src="{}" alt="{}" title="{}" class="keyhouse-flag-icon">',
            static("admin/img/icon-alert.svg"),
            labels,
            labels,
        )

    @admin.display(description="Follow-up", ordering="followup_due_at")
    def followup(self, obj):
        if not obj.is_active or obj.acknowledged_at:
            return "-"
        if obj.verification_state == VerificationState.REJECTED:
            return "Waiting for the merchant"
        if obj.followup_due_at is None:
            return "Not started"
        now = timezone.now()
        return format_html(
            '<time datetime="{}" title="{}" class="{}">{}</time>',
            obj.followup_due_at.isoformat(),
            localize(localtime(obj.followup_due_at)),
            "keyhouse-overdue" if obj.followup_due_at <= now else "keyhouse-due",
            relative_due(obj.followup_due_at, now=now),
        )

    @admin.display(description="Acknowledged by", ordering="acknowledged_at")
    def acknowledged_by_label(self, obj):
        if obj.acknowledged_at is None:
            return "-"
        return obj.acknowledged_by.email if obj.acknowledged_by else "a former agent"

    @admin.display(description="Integrations requested")
    def integrations(self, obj):
        labels = obj.requested_integration_labels
        if not labels:
            return "None"
        return format_html(
            '<ul class="keyhouse-list">{}</ul>',
            format_html_join("", "<li>{}</li>", ((label,) for label in labels)),
        )

    @admin.display(description="Please check")
    def flags(self, obj):
        # The sentences, not the stored codes: the agent reads what to look at.
        return "; ".join(obj.helpdesk_flag_labels) or "-"

    # permissions=["change"]: staff who may only view keys are not offered the action.
    @admin.action(
        description="Acknowledge selected submissions (stops reminders)", permissions=["change"]
    )
    def acknowledge_selected(self, request, queryset):
        if not self.has_work_permission(request):
            raise PermissionDenied
        # select_related(None) drops list_select_related, which cannot be combined with only().
        rows = list(queryset.select_related(None).only("pk"))
        done = sum(
            credential_acknowledge(credential=credential, actor=request.user, request=request)
            for credential in rows
        )
        # Counted from the selection, not from the queryset again: the waiting filter no longer
        # holds the rows just acknowledged, nor those a colleague acknowledged meanwhile.
        if request.POST.get("select_across") == "1":
            selected = [credential.pk for credential in rows]
        else:
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        skipped = (
            Credential.objects.filter(pk__in=selected, acknowledged_at__isnull=False).count() - done
        )
        self.message_user(
            request,
            ngettext(
                "%(done)d submission acknowledged.",
                "%(done)d submissions acknowledged.",
                done,
            )
            % {"done": done}
            + (f" {skipped} had already been acknowledged." if skipped else ""),
            messages.SUCCESS,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_work": self.has_work_permission(request),
            "can_reveal": holds(request.user, HELPDESK_REVEAL_SECRETS),
            "verify_again_states": VERIFY_AGAIN_STATES,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": "The helpdesk queue", **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def get_changelist(self, request, **kwargs):
        return CredentialChangeList

    def get_queryset(self, request):
        # The admin never shows the secret, so it never decrypts one either.
        return super().get_queryset(request).defer("secret", "extra_secret")

    def get_readonly_fields(self, request, obj=None):
        # Every fact here was recorded by the system; the helpdesk acts through actions.
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_work_permission(self, request, obj=None):
        """Return True if the user may work the queue: acknowledge, verify again, revoke.

        That is Django's "change" permission on keys, which the list action asks for too.
        """
        return super().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        # A key's page shows what the system recorded and nothing is editable there: as a
        # view-only page it offers no Save, and a POST to it is refused instead of reporting
        # a change. The queue's work goes through the actions and buttons.
        if obj is not None:
            return False
        return self.has_work_permission(request)

    def has_add_permission(self, request):
        # Keys come from merchants through the portal, never typed into the admin.
        return False

    def has_delete_permission(self, request, obj=None):
        # History is kept: keys are superseded or revoked, not deleted.
        return False


@admin.register(EncryptionCanary)
class EncryptionCanaryAdmin(ReadOnlyModelAdmin):
    """Read-only: without the canary the system check has nothing known to decrypt."""

    list_display = ("pk", "created_at")
    exclude = ("value",)
    readonly_fields = ("created_at",)
