"""Team pages: members, invitations, custom roles and the audit trail of one merchant.

Every merchant page declares the permission it needs (MerchantPermissionRequiredMixin);
objects in the URL are found through selectors scoped to that merchant; services decide
what is allowed and audit their refusals, which pages show as messages or form errors.
"""

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView

from audit.refusals import Refused
from audit.selectors import audit_event_list
from merchants.mixins import MerchantPermissionRequiredMixin
from teams import selectors, services
from teams.forms import (
    AcceptInvitationForm,
    AuditFilterForm,
    InvitationForm,
    MemberRoleForm,
    RoleForm,
)
from teams.models import Invitation
from teams.permissions import (
    CATALOGUE,
    INVITE_MEMBERS,
    MANAGE_CUSTOM_ROLES,
    MANAGE_MEMBER_ROLES,
    VIEW_MERCHANT,
    VIEW_TEAM,
)
from teams.rules import refusal_to_manage_member, role_permission_names

AUDIT_PAGE_SIZE = 50


def _team_url(merchant) -> str:
    return reverse("teams:team", kwargs={"slug": merchant.slug})


def _roles_url(merchant) -> str:
    return reverse("teams:roles", kwargs={"slug": merchant.slug})


class TeamView(MerchantPermissionRequiredMixin, TemplateView):
    """Members with role, joined date and last sign-in; open invitations with expiry."""

    permission_required = VIEW_TEAM
    template_name = "teams/team.html"

    def get_context_data(self, **kwargs):
        user, merchant = self.request.user, self.merchant
        can_manage = user.has_perm(MANAGE_MEMBER_ROLES, merchant)
        # Apart from oneself, whether a member may be managed depends only on their role:
        # ask once per role, so the page's queries do not grow with the team.
        manageable_roles: dict[int, bool] = {}

        def may_manage(membership) -> bool:
            if not can_manage or membership.user_id == user.pk:
                return False
            if membership.role_id not in manageable_roles:
                manageable_roles[membership.role_id] = (
                    refusal_to_manage_member(user, membership) is None
                )
            return manageable_roles[membership.role_id]

        rows = [
            (membership, may_manage(membership))
            for membership in selectors.membership_list(merchant=merchant)
        ]
        return super().get_context_data(
            rows=rows,
            invitations=selectors.invitation_list_open(merchant=merchant),
            can_invite=user.has_perm(INVITE_MEMBERS, merchant),
            **kwargs,
        )


class InvitationCreateView(MerchantPermissionRequiredMixin, FormView):
    permission_required = INVITE_MEMBERS
    template_name = "teams/invite.html"
    form_class = InvitationForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "actor": self.request.user, "merchant": self.merchant}

    def form_valid(self, form):
        try:
            invitation = services.invitation_create(
                merchant=self.merchant,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=self.request.user,
                request=self.request,
            )
        except Refused as refusal:
            form.add_error(None, refusal.message)
            return self.form_invalid(form)
        invitation.refresh_from_db(fields=["sent_at"])
        if invitation.sent_at is None:
            messages.warning(
                self.request,
                f"The invitation to {invitation.email} is saved, but the mail could not be sent "
                "just now. Use Resend below in a few minutes.",
            )
        else:
            messages.success(
                self.request,
                f"Invitation sent to {invitation.email} as {invitation.role.name}; the link "
                "works for 10 days.",
            )
        return redirect(_team_url(self.merchant))


class _InvitationActionView(MerchantPermissionRequiredMixin, View):
    permission_required = INVITE_MEMBERS
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        invitation = selectors.invitation_get(merchant=self.merchant, pk=kwargs["pk"])
        try:
            self.act(invitation)
        except Refused as refusal:
            messages.error(request, refusal.message)
        return redirect(_team_url(self.merchant))


class InvitationResendView(_InvitationActionView):
    def act(self, invitation):
        services.invitation_resend(
            invitation=invitation, actor=self.request.user, request=self.request
        )
        messages.success(
            self.request,
            f"Invitation sent again to {invitation.email}; the old link no longer works.",
        )


class InvitationRevokeView(_InvitationActionView):
    def act(self, invitation):
        services.invitation_revoke(
            invitation=invitation, actor=self.request.user, request=self.request
        )
        messages.success(self.request, f"Invitation to {invitation.email} revoked.")


class MemberEditView(MerchantPermissionRequiredMixin, FormView):
    """Change another member's role."""

    permission_required = MANAGE_MEMBER_ROLES
    template_name = "teams/member_edit.html"
    form_class = MemberRoleForm

    def get_membership(self):
        return selectors.membership_get(merchant=self.merchant, pk=self.kwargs["pk"])

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "actor": self.request.user, "merchant": self.merchant}

    def get_initial(self):
        return {"role": self.get_membership().role}

    def get_context_data(self, **kwargs):
        membership = self.get_membership()
        return super().get_context_data(
            membership=membership,
            refusal=refusal_to_manage_member(self.request.user, membership),
            **kwargs,
        )

    def form_valid(self, form):
        membership = self.get_membership()
        try:
            services.membership_change_role(
                membership=membership,
                role=form.cleaned_data["role"],
                actor=self.request.user,
                request=self.request,
            )
        except Refused as refusal:
            form.add_error(None, refusal.message)
            return self.form_invalid(form)
        messages.success(
            self.request, f"{membership.user.email} is now {form.cleaned_data['role'].name}."
        )
        return redirect(_team_url(self.merchant))


class MemberRemoveView(MerchantPermissionRequiredMixin, TemplateView):
    permission_required = MANAGE_MEMBER_ROLES
    template_name = "teams/member_remove.html"

    def get_context_data(self, **kwargs):
        membership = selectors.membership_get(merchant=self.merchant, pk=self.kwargs["pk"])
        return super().get_context_data(
            membership=membership,
            refusal=refusal_to_manage_member(self.request.user, membership),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        membership = selectors.membership_get(merchant=self.merchant, pk=kwargs["pk"])
        try:
            services.membership_remove(membership=membership, actor=request.user, request=request)
        except Refused as refusal:
            messages.error(request, refusal.message)
            return redirect(_team_url(self.merchant))
        messages.success(request, f"{membership.user.email} was removed from {self.merchant.name}.")
        return redirect(_team_url(self.merchant))


class LeaveView(MerchantPermissionRequiredMixin, TemplateView):
    """Leave a merchant (any member may, except the last Owner)."""

    permission_required = VIEW_MERCHANT
    template_name = "teams/leave.html"

    def post(self, request, *args, **kwargs):
        membership = selectors.membership_get_own(user=request.user, merchant=self.merchant)
        try:
            services.membership_leave(membership=membership, actor=request.user, request=request)
        except Refused as refusal:
            messages.error(request, refusal.message)
            return redirect(self.merchant.get_absolute_url())
        messages.success(request, f"You left {self.merchant.name}.")
        return redirect("merchants:dashboard")


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
        return super().get_context_data(descriptions=RoleForm.descriptions(), **kwargs)

    def form_valid(self, form):
        try:
            role = self.save_role(form.cleaned_data)
        except Refused as refusal:
            form.add_error(None, refusal.message)
            return self.form_invalid(form)
        messages.success(self.request, self.saved.format(name=role.name))
        return redirect(_roles_url(self.merchant))


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
        return redirect(_roles_url(self.merchant))


class AuditTrailView(MerchantPermissionRequiredMixin, TemplateView):
    """The merchant's audit trail, for members who may manage roles; 50 events a page."""

    permission_required = MANAGE_MEMBER_ROLES
    template_name = "teams/audit.html"

    def get_context_data(self, **kwargs):
        members = selectors.membership_list(merchant=self.merchant)
        form = AuditFilterForm(self.request.GET or None, members=members)
        action, actor_id = "", None
        if form.is_valid():
            action = form.cleaned_data["action"]
            actor_id = form.cleaned_data["member"]
        events = audit_event_list(merchant=self.merchant, action=action, actor_id=actor_id)
        page = Paginator(events, AUDIT_PAGE_SIZE).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        return super().get_context_data(
            form=form, page=page, filter_query=query.urlencode(), **kwargs
        )


@method_decorator(never_cache, name="dispatch")
@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class InvitationAcceptView(TemplateView):
    """The page an invitation link opens. Not merchant-scoped: the token is the key.

    A new user sets a password and joins; an existing user signs in and joins; expired,
    used, revoked or tampered links get a page that says so, never an error.
    """

    template_name = "teams/invitation.html"

    def dispatch(self, request, *args, **kwargs):
        self.invitation = selectors.invitation_get_by_token(token=kwargs["token"])
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        invitation = self.invitation
        user = self.request.user
        state = invitation.state if invitation else "invalid"
        context = {"invitation": invitation, "state": state}
        if state == Invitation.State.PENDING:
            has_account = get_user_model().objects.filter(email__iexact=invitation.email).exists()
            context["has_account"] = has_account
            context["signed_in_as_invitee"] = (
                user.is_authenticated and user.email.lower() == invitation.email.lower()
            )
            if not has_account and "form" not in kwargs:
                context["form"] = AcceptInvitationForm(email=invitation.email)
        return super().get_context_data(**context, **kwargs)

    def post(self, request, *args, **kwargs):
        invitation = self.invitation
        if invitation is None or invitation.state != Invitation.State.PENDING:
            return self.get(request, *args, **kwargs)
        token = kwargs["token"]
        if request.user.is_authenticated:
            try:
                membership = services.invitation_accept(
                    token=token, user=request.user, request=request
                )
            except Refused as refusal:
                messages.error(request, refusal.message)
                return self.get(request, *args, **kwargs)
            messages.success(request, f"Welcome to {membership.merchant.name}.")
            return redirect(membership.merchant.get_absolute_url())
        form = AcceptInvitationForm(request.POST, email=invitation.email)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            user = services.user_create_from_invitation(
                token=token,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password1"],
                request=request,
            )
        except Refused as refusal:
            messages.error(request, refusal.message)
            return self.get(request, *args, **kwargs)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to {invitation.merchant.name}.")
        return redirect(invitation.merchant.get_absolute_url())
