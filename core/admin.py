"""What the apps' admin classes share."""

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP
from encrypted_model_fields.fields import EncryptedMixin

from core.paginators import EstimatedCountPaginator
from core.validators import SecretFreeTextMixin

# Columns that must never narrow a list: each answer to "does any row start with …?" would
# leak a little of a ciphertext, a key's fingerprint, an invitation's token hash or a
# password hash. Encrypted columns are refused whatever their name.
UNFILTERABLE_FIELDS = frozenset({"secret", "fingerprint", "token_hash", "password"})
# A pattern of the requester's choosing runs in the database (or in Python, on SQLite): a
# catastrophic one ties up a worker.
UNFILTERABLE_LOOKUPS = frozenset({"regex", "iregex"})


def lookup_refused(model, lookup: str) -> bool:
    """Return True if the admin must not filter `model`'s rows by `lookup` (a query-string
    key such as `secret__startswith` or `merchant__credentials__fingerprint`)."""
    parts = lookup.split(LOOKUP_SEP)
    if UNFILTERABLE_FIELDS.intersection(parts) or UNFILTERABLE_LOOKUPS.intersection(parts):
        return True
    for part in parts:
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if isinstance(field, EncryptedMixin):
            return True
        if field.related_model is None:
            return False
        model = field.related_model
    return False


class GuardedAdminMixin:
    """What every admin page in the project does to keep secrets in: it refuses filters on
    secret columns and pattern lookups (an oracle, and a way to stall the database), and
    refuses key-shaped text typed into its forms.

    A refused filter is Django's 400 (DisallowedModelAdminLookup); the list is never narrowed.
    """

    def lookup_allowed(self, lookup, value, request=None):
        if lookup_refused(self.model, lookup):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if issubclass(form, SecretFreeTextMixin):
            return form
        return type(form.__name__, (SecretFreeTextMixin, form), {"__module__": form.__module__})


class ReadOnlyModelAdmin(GuardedAdminMixin, admin.ModelAdmin):
    """An admin page that shows rows and never adds, edits or deletes them: for records that
    only the app's services write (audit events, mail, invitations, the encryption canary)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LargeListMixin:
    """An admin list over a table that grows to millions of rows (keys, audit events, mail,
    merchants and their people): it never counts the whole table, estimates the count of a
    large selection instead of reading every row of it, and shows no facet counts (each
    would be another count per filter choice)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # The page asked for: the paginator counts up to a cap past its start, so that the
        # links always lead on while rows remain (Django's ChangeList reads the same `p`).
        try:
            page_asked = int(request.GET.get(PAGE_VAR, 1))
        except ValueError:
            page_asked = 1
        return self.paginator(
            queryset, per_page, orphans, allow_empty_first_page, page_asked=page_asked
        )
