"""Team pages: the members and their roles, changing or removing a member, leaving, and
the merchant's audit trail."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.views.generic import FormView, TemplateView

from audit.refusals import Refused
from audit.selectors import audit_event_list
from merchants.mixins import MerchantPermissionRequiredMixin
from teams import selectors, services
from teams.forms import (
    AuditFilterForm,
    MemberRoleForm,
)
from teams.permissions import (
    INVITE_MEMBERS,
    MANAGE_MEMBER_ROLES,
    VIEW_MERCHANT,
    VIEW_TEAM,
)
from teams.rules import refusal_to_grant, refusal_to_leave, refusal_to_manage_member
from teams.views.links import team_url


class TeamView(MerchantPermissionRequiredMixin, TemplateView):
    """Members with role, joined date and last sign-in; open invitations with their inviter
    and expiry."""

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
        own = next((membership for membership, _ in rows if membership.user_id == user.pk), None)
        can_invite = user.has_perm(INVITE_MEMBERS, merchant)
        # Resend and revoke follow the rule for giving the invitation's role: asked once per role.
        grantable_roles: dict[int, bool] = {}

        def may_act(invitation) -> bool:
            if not can_invite:
                return False
            if invitation.role_id not in grantable_roles:
                grantable_roles[invitation.role_id] = (
                    refusal_to_grant(user, merchant, invitation.role) is None
                )
            return grantable_roles[invitation.role_id]

        invitations = [
            (invitation, may_act(invitation))
            for invitation in selectors.invitation_list_open(merchant=merchant)
        ]
        return super().get_context_data(
            rows=rows,
            invitations=invitations,
            can_invite=can_invite,
            # The last Owner is not offered "Leave".
            can_leave=own is not None and refusal_to_leave(own) is None,
            **kwargs,
        )


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
        return redirect(team_url(self.merchant))


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
            return redirect(team_url(self.merchant))
        messages.success(request, f"{membership.user.email} was removed from {self.merchant.name}.")
        return redirect(team_url(self.merchant))


class LeaveView(MerchantPermissionRequiredMixin, TemplateView):
    """Leave a merchant (any member may, except the last Owner)."""

    permission_required = VIEW_MERCHANT
    template_name = "teams/leave.html"

    def get_context_data(self, **kwargs):
        membership = selectors.membership_get_own(user=self.request.user, merchant=self.merchant)
        return super().get_context_data(refusal=refusal_to_leave(membership), **kwargs)

    def post(self, request, *args, **kwargs):
        membership = selectors.membership_get_own(user=request.user, merchant=self.merchant)
        try:
            services.membership_leave(membership=membership, actor=request.user, request=request)
        except Refused as refusal:
            messages.error(request, refusal.message)
            return redirect(self.merchant.get_absolute_url())
        messages.success(request, f"You left {self.merchant.name}.")
        return redirect("merchants:dashboard")


AUDIT_PAGE_SIZE = 50


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
