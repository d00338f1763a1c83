"""A team's two-factor requirement, kept before any page of that merchant."""

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

from merchants.mixins import MerchantPermissionRequiredMixin
from merchants.models import Merchant
from teams import two_factor


class TeamTwoFactorMiddleware:
    """Send a member of a merchant that requires two-factor sign-in to set up their
    authenticator app (no device yet) or to give a code (a session signed in without one)
    before any of that merchant's pages.

    A merchant page is a view built on `MerchantPermissionRequiredMixin`; the merchant is the
    one its URL names. Someone who is not a member is left to the page, which answers 404.
    Must come after django-otp's OTPMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "view_class", None)
        if view_class is None or not issubclass(view_class, MerchantPermissionRequiredMixin):
            return None
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        slug = view_kwargs.get(view_class.merchant_url_kwarg)
        required = Merchant.objects.filter(
            slug=slug, require_two_factor=True, memberships__user=user
        ).exists()
        if not required:
            return None
        step = "account:two_factor_verify" if two_factor.has_device(user) else "account:two_factor"
        return redirect_to_login(request.get_full_path(), reverse(step))
