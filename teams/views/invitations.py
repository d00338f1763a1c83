"""Invitations: sending, resending and revoking them, and the page their link opens."""

from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
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
from teams.rules import refusal_to_grant
from teams.services.invitations import invitation_code_send
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


class InvitationRevokeView(_InvitationActionView, TemplateView):
    """Revoke an invitation: a page that asks for confirmation, then one POST."""

    http_method_names = ["get", "post"]
    template_name = "teams/invitation_revoke.html"

    def get_context_data(self, **kwargs):
        invitation = selectors.invitation_get(merchant=self.merchant, pk=self.kwargs["pk"])
        return super().get_context_data(
            invitation=invitation,
            refusal=refusal_to_grant(self.request.user, self.merchant, invitation.role),
            **kwargs,
        )

    def act(self, invitation):
        services.invitation_revoke(
            invitation=invitation, actor=self.request.user, request=self.request
        )
        messages.success(self.request, f"Invitation to {invitation.email} revoked.")


# Where the invitation page keeps the invitation its link opened: the token is exchanged for
# this at once, so no page is ever shown at an address holding the token.
SESSION_KEY = "teams_invitation"


@method_decorator(never_cache, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
class InvitationLinkView(View):
    """The link in the mail: exchange its token for the invitation in the session and go on
    to the invitation page, whose address holds no token.

    The token appears only in this one request line. Every method gets the same redirect:
    a refusal here (a 405, a failed CSRF check) would be logged with the path, token included.
    Nothing is rendered and no invitation changes (mail scanners open links too); the
    exemption from CSRF adds nothing a forged GET could not already do.
    """

    def dispatch(self, request, token):
        invitation = selectors.invitation_get_by_token(token=token)
        if invitation is None:
            request.session.pop(SESSION_KEY, None)
        else:
            request.session[SESSION_KEY] = {"pk": invitation.pk, "hash": invitation.token_hash}
        response = redirect("teams:invitation_accept")
        response["Referrer-Policy"] = "no-referrer"
        return response


@method_decorator(never_cache, name="dispatch")
@method_decorator(sensitive_post_parameters("password1", "password2", "code"), name="dispatch")
class InvitationAcceptView(TemplateView):
    """The invitation page, for the invitation whose link this browser opened.

    A new person asks for a code mailed to the invited address, then enters it with a name
    and a password; an existing user signs in and joins; someone signed in with another
    address may sign out and carry on. Expired, used, revoked or tampered links get a page
    that says so, never an error.
    """

    template_name = "teams/invitation.html"

    def dispatch(self, request, *args, **kwargs):
        opened = request.session.get(SESSION_KEY) or {}
        self.invitation = None
        if opened.get("pk") and opened.get("hash"):
            self.invitation = selectors.invitation_get_opened(
                pk=opened["pk"], token_hash=opened["hash"]
            )
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
            if not has_account:
                context["code_sent"] = (
                    selectors.invitation_code_current(invitation=invitation) is not None
                )
                if "form" not in kwargs:
                    context["form"] = AcceptInvitationForm(email=invitation.email)
        return super().get_context_data(**context, **kwargs)

    def post(self, request, *args, **kwargs):
        invitation = self.invitation
        if invitation is None or invitation.state != Invitation.State.PENDING:
            return self.get(request, *args, **kwargs)
        action = request.POST.get("action", "join")
        if action == "switch":
            return self.switch_account(invitation)
        try:
            if request.user.is_authenticated:
                return self.join(invitation)
            if action == "send_code":
                return self.send_code(invitation)
            return self.create_account(invitation)
        except Refused as refusal:
            messages.error(request, refusal.message)
            return redirect("teams:invitation_accept")

    def switch_account(self, invitation):
        """Sign out, keeping the invitation this browser opened, and show it again."""
        logout(self.request)
        self.request.session[SESSION_KEY] = {"pk": invitation.pk, "hash": invitation.token_hash}
        return redirect("teams:invitation_accept")

    def join(self, invitation):
        membership = services.invitation_accept(
            invitation=invitation, user=self.request.user, request=self.request
        )
        self.request.session.pop(SESSION_KEY, None)
        messages.success(self.request, f"Welcome to {membership.merchant.name}.")
        return redirect(membership.merchant.get_absolute_url())

    def send_code(self, invitation):
        invitation_code_send(invitation=invitation, request=self.request)
        messages.success(
            self.request,
            f"A 6-digit code is on its way to {invitation.email}. Enter it below; it works for "
            "15 minutes.",
        )
        return redirect("teams:invitation_accept")

    def create_account(self, invitation):
        form = AcceptInvitationForm(self.request.POST, email=invitation.email)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            user = services.user_create_from_invitation(
                invitation=invitation,
                code=form.cleaned_data["code"],
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password1"],
                request=self.request,
            )
        except Refused as refusal:
            form.add_error(None, refusal.message)
            return self.render_to_response(self.get_context_data(form=form))
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        self.request.session.pop(SESSION_KEY, None)
        messages.success(self.request, f"Welcome to {invitation.merchant.name}.")
        return redirect(invitation.merchant.get_absolute_url())
