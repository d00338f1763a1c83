from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db import models
from django.db.models import Count, Q

from core.admin import ReadOnlyModelAdmin
from merchants.models import Merchant
from teams.models import Invitation, Membership, Role, User
from teams.permissions import CATALOGUE


class EmailUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class EmailUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = EmailUserChangeForm
    add_form = EmailUserCreationForm
    list_display = ("email", "full_name", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name")
    ordering = ("email",)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("full_name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class RoleAdminForm(forms.ModelForm):
    """A custom role of one merchant. A role without a merchant would be a new default role,
    shared by every merchant and then read-only: those come from the data migration only."""

    class Meta:
        model = Role
        fields = ("merchant", "name", "description", "permissions")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "merchant" in self.fields:
            self.fields["merchant"].required = True
        if "permissions" in self.fields:
            catalogue = Q()
            for entry in CATALOGUE:
                catalogue |= Q(content_type__app_label=entry.app_label, codename=entry.codename)
            self.fields["permissions"].queryset = self.fields["permissions"].queryset.filter(
                catalogue
            )

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if Role.objects.defaults().filter(name__iexact=name).exists():
            raise forms.ValidationError(
                f"“{name}” is the name of a default role; choose another name for a custom role."
            )
        return name


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    form = RoleAdminForm
    list_display = ("name", "merchant", "description")
    list_select_related = ("merchant",)
    list_filter = (("merchant", admin.EmptyFieldListFilter),)
    search_fields = ("name", "merchant__name")
    filter_horizontal = ("permissions",)

    def has_change_permission(self, request, obj=None):
        # Default roles are shared by every merchant: read-only everywhere.
        if obj is not None and obj.is_default:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)


class MembershipAdminForm(forms.ModelForm):
    """Refuse a custom role that belongs to another merchant than the membership's."""

    class Meta:
        model = Membership
        fields = ("user", "merchant", "role", "joined_at")

    def clean(self):
        cleaned_data = super().clean()
        role = cleaned_data.get("role")
        # The standalone form chooses the merchant; an inline's merchant is its parent's.
        merchant = cleaned_data.get("merchant") if "merchant" in self.fields else None
        merchant_id = merchant.pk if merchant else self.instance.merchant_id
        if role is not None and role.merchant_id not in (None, merchant_id):
            self.add_error("role", "This custom role belongs to another merchant.")
        return cleaned_data


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipAdminForm
    list_display = ("user", "merchant", "role", "joined_at")
    list_select_related = ("user", "merchant", "role")
    list_filter = ("role",)
    search_fields = ("user__email", "merchant__name", "merchant__slug")
    autocomplete_fields = ("user", "merchant")


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyModelAdmin):
    """Invitations are sent and revoked from the portal, where the team rules apply; the
    admin shows them. Deleting one would bypass the revocation's audit event and erase who
    invited whom."""

    list_display = ("email", "merchant", "role", "state_label", "invited_by", "expires_at")
    list_select_related = ("merchant", "role", "invited_by")
    list_filter = ("role",)
    search_fields = ("email", "merchant__name", "merchant__slug")
    date_hierarchy = "created_at"
    exclude = ("token_hash",)
    readonly_fields = [
        field.name for field in Invitation._meta.fields if field.name != "token_hash"
    ]

    @admin.display(description="State")
    def state_label(self, obj):
        return obj.get_state_display()


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipAdminForm
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "joined_at")
    readonly_fields = ("joined_at",)

    def get_queryset(self, request):
        # Each row prints the membership (user, merchant and role): one query for all rows.
        return super().get_queryset(request).select_related("user", "merchant", "role")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        role = formset.form.base_fields.get("role")
        if role is not None:
            # Offer the default roles and this merchant's own, never another merchant's.
            role.queryset = Role.objects.available_to(obj)
        return formset


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "contact_email", "country", "active_keys", "created_at")
    search_fields = ("name", "slug", "contact_email")
    list_filter = ("country",)
    prepopulated_fields = {"slug": ("name",)}
    # Merchants type their address without a scheme; assume https, not Django 5's http.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = (MembershipInline,)
    ordering = ("name",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_key_count=Count(
                    "credentials", filter=Q(credentials__lifecycle_state="active")
                )
            )
        )

    @admin.display(description="Active keys", ordering="active_key_count")
    def active_keys(self, obj):
        return obj.active_key_count
