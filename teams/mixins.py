"""View mixins that resolve the merchant in the URL and enforce a merchant permission."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404

from merchants.models import Merchant
from merchants.selectors import merchant_get_for_member
from teams.models import AuditEvent
from teams.services import audit_record


class MerchantPermissionRequiredMixin(LoginRequiredMixin):
    """Load `self.merchant` from the URL's slug for a member, then require a permission.

    A merchant the user does not belong to is a 404; a member without the permission gets a
    403. Both are written to the audit trail. Every merchant-scoped view declares
    `permission_required`: there is no default.
    """

    permission_required: str | None = None
    merchant_url_kwarg = "slug"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.permission_required:
            raise ImproperlyConfigured(f"{type(self).__name__} must declare permission_required.")
        slug = kwargs[self.merchant_url_kwarg]
        try:
            self.merchant = merchant_get_for_member(user=request.user, slug=slug)
        except Http404:
            self._audit_denial(Merchant.objects.filter(slug=slug).first(), "not a member")
            raise
        if not request.user.has_perm(self.permission_required, self.merchant):
            self._audit_denial(self.merchant, "missing permission")
            raise PermissionDenied("Your role in this merchant does not allow this.")
        return super().dispatch(request, *args, **kwargs)

    def _audit_denial(self, merchant, reason: str) -> None:
        if merchant is None:
            return
        audit_record(
            action=AuditEvent.Action.ACCESS_DENIED,
            actor=self.request.user,
            merchant=merchant,
            target=f"{self.request.method} {self.request.path}"[:255],
            details={"reason": reason, "permission": self.permission_required},
            request=self.request,
        )

    def get_context_data(self, **kwargs):
        kwargs.setdefault("merchant", self.merchant)
        return super().get_context_data(**kwargs)
