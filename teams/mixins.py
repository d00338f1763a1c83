"""View mixins that resolve the merchant in the URL and enforce a merchant permission."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied

from merchants.selectors import merchant_get_for_member


class MerchantPermissionRequiredMixin(LoginRequiredMixin):
    """Load `self.merchant` from the URL's slug for a member, then require a permission.

    A merchant the user does not belong to is a 404; a member without the permission gets a
    403. Every merchant-scoped view declares `permission_required`: there is no default.
    """

    permission_required: str | None = None
    merchant_url_kwarg = "slug"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.permission_required:
            raise ImproperlyConfigured(f"{type(self).__name__} must declare permission_required.")
        self.merchant = merchant_get_for_member(
            user=request.user, slug=kwargs[self.merchant_url_kwarg]
        )
        if not request.user.has_perm(self.permission_required, self.merchant):
            raise PermissionDenied("Your role in this merchant does not allow this.")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        kwargs.setdefault("merchant", self.merchant)
        return super().get_context_data(**kwargs)
