"""The view mixin every merchant page uses: the tenant from the URL, and the permission."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404

from audit.refusals import Refused
from merchants.services import merchant_open


class MerchantPermissionRequiredMixin(LoginRequiredMixin):
    """Load `self.merchant` from the URL's slug for a member, then require a permission.

    Both checks are `merchants.services.merchant_open`, which goes through the one door
    (`audit.refusals.authorize`) and its one audit: a merchant the user does not belong to is
    a 404, a member without the permission a 403. Every merchant page declares
    `permission_required`: there is no default.
    """

    permission_required: str | None = None
    merchant_url_kwarg = "slug"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.permission_required:
            raise ImproperlyConfigured(f"{type(self).__name__} must declare permission_required.")
        try:
            self.merchant = merchant_open(
                actor=request.user,
                slug=kwargs[self.merchant_url_kwarg],
                permission=self.permission_required,
                request=request,
            )
        except Refused as refusal:
            if refusal.hidden:
                raise Http404("No such merchant.") from None
            raise
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        kwargs.setdefault("merchant", self.merchant)
        return super().get_context_data(**kwargs)
