"""What the apps' admin classes share."""

from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """An admin page that shows rows and never adds, edits or deletes them: for records that
    only the app's services write (audit events, mail, invitations, the encryption canary)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
