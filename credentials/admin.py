"""The helpdesk's queue of submitted keys. The secret is never a field here, only the hint."""

from django.contrib import admin

from credentials.models import Credential, EncryptionCanary


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = (
        "merchant",
        "provider",
        "mode",
        "kind",
        "secret_hint",
        "verification_state",
        "lifecycle_state",
        "submitted_at",
        "submitted_by",
    )
    list_filter = ("verification_state", "lifecycle_state", "mode", "provider", "kind")
    list_select_related = ("merchant", "submitted_by")
    search_fields = ("merchant__name", "merchant__slug", "secret_hint", "account_id")
    date_hierarchy = "submitted_at"
    ordering = ("-submitted_at",)
    list_per_page = 50
    show_full_result_count = False
    # `secret` is excluded explicitly as well as being non-editable: it must never become a
    # form field, even if someone later lists every field here.
    exclude = ("secret",)
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
                    "publishable_key",
                    "requested_integrations",
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
                    "verification_attempts",
                    "checked_at",
                    "verification_code",
                    "verification_reason",
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
        ("Lifecycle", {"fields": ("lifecycle_state", "lifecycle_changed_at", "fingerprint")}),
        (
            "Helpdesk",
            {
                "fields": (
                    "helpdesk_notified_at",
                    "acknowledged_at",
                    "acknowledged_by",
                    "followup_due_at",
                    "reminders_sent",
                )
            },
        ),
    )

    def get_queryset(self, request):
        # The admin never shows the secret, so it never decrypts one either.
        return super().get_queryset(request).defer("secret")

    def get_readonly_fields(self, request, obj=None):
        # Every fact here was recorded by the system; the helpdesk acts through actions.
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_add_permission(self, request):
        # Keys come from merchants through the portal, never typed into the admin.
        return False

    def has_delete_permission(self, request, obj=None):
        # History is kept: keys are superseded or revoked, not deleted.
        return False


@admin.register(EncryptionCanary)
class EncryptionCanaryAdmin(admin.ModelAdmin):
    list_display = ("pk", "created_at")
    exclude = ("value",)
    readonly_fields = ("created_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Without the canary the system check has nothing known to decrypt.
        return False
