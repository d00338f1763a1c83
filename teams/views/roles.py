"""Custom roles: the list of roles with their permissions, creating, editing, deleting."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.generic import FormView, TemplateView

from audit.refusals import Refused
from merchants.mixins import MerchantPermissionRequiredMixin
from teams import selectors, services
from teams.forms import (
    RoleForm,
)
from teams.permissions import (
    CATALOGUE,
    CATALOGUE_BY_PERM,
    MANAGE_CUSTOM_ROLES,
    VIEW_TEAM,
)
from teams.rules import PERMISSION_NEEDS, role_permission_names
from teams.views.links import roles_url


class RoleListView(MerchantPermissionRequiredMixin, TemplateView):
    """Default and custom roles with their permissions."""

    permission_required = VIEW_TEAM
    template_name = "teams/roles.html"

    def get_context_data(self, **kwargs):
        roles = list(selectors.role_list(merchant=self.merchant))
        return super().get_context_data(
            roles=[
                (
                    role,
                    {f"{p.content_type.app_label}.{p.codename}" for p in role.permissions.all()},
                )
                for role in roles
            ],
            catalogue=CATALOGUE,
            can_manage_roles=self.request.user.has_perm(MANAGE_CUSTOM_ROLES, self.merchant),
            **kwargs,
        )


class _RoleFormView(MerchantPermissionRequiredMixin, FormView):
    """Create or edit a custom role: `save_role()` calls the service, `saved` is the message."""

    permission_required = MANAGE_CUSTOM_ROLES
    template_name = "teams/role_form.html"
    form_class = RoleForm
    saved = ""

    def get_context_data(self, **kwargs):
        # Each permission's description, and what it comes with (the team rules refuse a
        # role without it), so the form says so before it is sent.
        descriptions = {
            perm: (
                f"{description} Comes with “{CATALOGUE_BY_PERM[PERMISSION_NEEDS[perm]].label}”."
                if perm in PERMISSION_NEEDS
                else description
            )
            for perm, description in RoleForm.descriptions().items()
        }
        return super().get_context_data(descriptions=descriptions, **kwargs)

    def form_valid(self, form):
        try:
            role = self.save_role(form.cleaned_data)
        except Refused as refusal:
            form.add_error(None, refusal.message)
            return self.form_invalid(form)
        messages.success(self.request, self.saved.format(name=role.name))
        return redirect(roles_url(self.merchant))


class RoleCreateView(_RoleFormView):
    saved = "Role “{name}” created."

    def save_role(self, fields):
        return services.role_create(
            merchant=self.merchant, actor=self.request.user, request=self.request, **fields
        )


class RoleEditView(_RoleFormView):
    saved = "Role “{name}” saved; it applies from the next page."

    @cached_property
    def role(self):
        return selectors.custom_role_get(merchant=self.merchant, pk=self.kwargs["pk"])

    def get_initial(self):
        return {
            "name": self.role.name,
            "description": self.role.description,
            "permissions": sorted(role_permission_names(self.role)),
        }

    def get_context_data(self, **kwargs):
        return super().get_context_data(role=self.role, **kwargs)

    def save_role(self, fields):
        return services.role_update(
            role=self.role, actor=self.request.user, request=self.request, **fields
        )


class RoleDeleteView(MerchantPermissionRequiredMixin, TemplateView):
    permission_required = MANAGE_CUSTOM_ROLES
    template_name = "teams/role_delete.html"

    def get_context_data(self, **kwargs):
        role = selectors.custom_role_get(merchant=self.merchant, pk=self.kwargs["pk"])
        holders = selectors.membership_list(merchant=self.merchant).filter(role=role)
        return super().get_context_data(role=role, holders=holders, **kwargs)

    def post(self, request, *args, **kwargs):
        role = selectors.custom_role_get(merchant=self.merchant, pk=kwargs["pk"])
        try:
            services.role_delete(role=role, actor=request.user, request=request)
        except Refused as refusal:
            messages.error(request, refusal.message)
            return redirect(
                reverse("teams:role_delete", kwargs={"slug": self.merchant.slug, "pk": role.pk})
            )
        messages.success(request, f"Role “{role.name}” deleted.")
        return redirect(roles_url(self.merchant))
