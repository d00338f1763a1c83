"""The helpdesk admin for accounts, teams and merchants.

Every write here goes through the same services as the portal, with the staff member as the
actor, so the rules hold and the audit trail records it: merchants are created with their
first Owner (`merchant_create_with_owner`) and edited through `merchant_update_profile`;
accounts through `user_save_by_staff`. Roles, memberships and invitations are read-only here:
merchants manage their own teams in the portal, where the team rules (nobody grants more than
they hold, the last Owner stays) apply to whoever acts.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db import models
from django.db.models import Count, Q

from core.admin import GuardedAdminMixin, LargeListMixin, ReadOnlyModelAdmin
from merchants.models import Integration, Merchant
from merchants.services import PROFILE_FIELDS, STAFF_FIELDS, merchant_update_profile
from teams.models import Invitation, Membership, Role, User
from teams.services import merchant_create_with_owner
from teams.services.users import PRIVILEGE_FIELDS, user_save_by_staff


class EmailUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class EmailUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(LargeListMixin, GuardedAdminMixin, DjangoUserAdmin):
    """Accounts. Saved through `user_save_by_staff`: audited, and only a superuser changes
    privileges. Never deleted here: deactivate an account instead, which keeps who did what
    in the audit trail."""

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

    def get_readonly_fields(self, request, obj=None):
        # Offer only what the staff member may change: privileges are a superuser's to give
        # (the service refuses anything else).
        if request.user.is_superuser:
            return ("last_login", "date_joined")
        return ("last_login", "date_joined", *sorted(PRIVILEGE_FIELDS))

    def save_model(self, request, obj, form, change):
        user_save_by_staff(user=obj, changed=form.changed_data, actor=request.user, request=request)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Role)
class RoleAdmin(ReadOnlyModelAdmin):
    """Default roles and every merchant's custom roles. Custom roles are made by the
    merchant's own managers in the portal, within the team rules."""

    list_display = ("name", "merchant", "description", "permission_list")
    list_select_related = ("merchant",)
    list_filter = (("merchant", admin.EmptyFieldListFilter),)
    search_fields = ("name", "merchant__name")
    fields = ("name", "merchant", "description", "permission_list")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("permissions")

    @admin.display(description="Permissions")
    def permission_list(self, obj):
        return ", ".join(permission.name for permission in obj.permissions.all())


@admin.register(Membership)
class MembershipAdmin(LargeListMixin, ReadOnlyModelAdmin):
    """Who belongs to which merchant with which role. Changed in the portal only, where the
    team rules apply (the last Owner stays, nobody grants more than they hold)."""

    list_display = ("user", "merchant", "role", "joined_at")
    list_select_related = ("user", "merchant", "role")
    list_filter = ("role",)
    search_fields = ("user__email", "merchant__name", "merchant__slug")
    readonly_fields = ("user", "merchant", "role", "joined_at")


@admin.register(Invitation)
class InvitationAdmin(LargeListMixin, ReadOnlyModelAdmin):
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
    """The merchant's team, read-only (see MembershipAdmin)."""

    model = Membership
    extra = 0
    fields = ("user", "role", "joined_at")
    readonly_fields = fields

    def get_queryset(self, request):
        # Each row prints the membership (user, merchant and role): one query for all rows.
        return super().get_queryset(request).select_related("user", "merchant", "role")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MerchantAddForm(forms.ModelForm):
    """A new merchant and the account that becomes its first Owner."""

    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("email"),
        help_text="The person who becomes the merchant's first Owner; they invite the rest.",
    )
    # Merchants type their address without a scheme; assume https, not Django 5's http.
    website = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = Merchant
        fields = ("name", "slug", *PROFILE_FIELDS)


@admin.register(Merchant)
class MerchantAdmin(LargeListMixin, GuardedAdminMixin, admin.ModelAdmin):
    """Merchants. Created with their first Owner and edited through the merchant services
    (audited, with the staff member as the actor); never deleted (their keys' history stays)."""

    list_display = ("name", "slug", "contact_email", "country", "active_keys", "created_at")
    search_fields = ("name", "slug", "contact_email")
    list_filter = ("country",)
    prepopulated_fields = {"slug": ("name",)}
    # Merchants type their address without a scheme; assume https, not Django 5's http.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = (MembershipInline,)
    # The portal's merchant page is for its members: staff would get a 404 there.
    view_on_site = False
    ordering = ("name",)
    fields = (*STAFF_FIELDS, "slug", *PROFILE_FIELDS)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "requested_integrations":
            # The catalogue as checkboxes, as in the portal's profile form, not its stored JSON.
            return forms.MultipleChoiceField(
                choices=Integration.choices,
                widget=forms.CheckboxSelectMultiple,
                required=False,
                label="Integrations to switch on",
                # Django's message would repeat the value, which could be a pasted key.
                error_messages={"invalid_choice": "Choose integrations from the list."},
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = MerchantAddForm
            kwargs["fields"] = ("name", "slug", "owner", *PROFILE_FIELDS)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "slug", "owner", *PROFILE_FIELDS)
        return self.fields

    def get_inlines(self, request, obj):
        # A new merchant's team is its first Owner, chosen in the form.
        return self.inlines if obj is not None else ()

    def get_readonly_fields(self, request, obj=None):
        # The slug is in every link the merchant was sent: fixed once created.
        return ("slug",) if obj is not None else ()

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if obj is None else {}

    def save_model(self, request, obj, form, change):
        if change:
            saved = merchant_update_profile(
                merchant=Merchant.objects.get(pk=obj.pk),
                actor=request.user,
                request=request,
                **{field: form.cleaned_data[field] for field in form.changed_data},
            )
        else:
            values = {field: form.cleaned_data[field] for field in PROFILE_FIELDS}
            saved = merchant_create_with_owner(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                owner=form.cleaned_data["owner"],
                actor=request.user,
                request=request,
                **values,
            )
        # The admin goes on with `obj` (its messages and redirect): make it the saved row.
        obj.pk = saved.pk
        obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        return False

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
