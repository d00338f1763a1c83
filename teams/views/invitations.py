"""Invitations: sending, resending and revoking them, and the page their link opens."""

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView

from audit.refusals import Refused
from merchants.mixins import MerchantPermissionRequiredMixin
from teams import selectors, services
from teams.forms import (
    AcceptInvitationForm,
    InvitationForm,
)
from teams.models import Invitation
from teams.permissions import (
    INVITE_MEMBERS,
)
from teams.views.links import team_url


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
        return redirect(team_url(self.merchant))


class _InvitationActionView(MerchantPermissionRequiredMixin, View):
    permission_required = INVITE_MEMBERS
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        invitation = selectors.invitation_get(merchant=self.merchant, pk=kwargs["pk"])
        try:
            self.act(invitation)
        except Refused as refusal:
            messages.error(request, refusal.message)
        return redirect(team_url(self.merchant))


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
