"""The authentication backend that answers merchant permissions from memberships."""

from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import Permission

from merchants.models import Merchant


class MerchantRoleBackend(BaseBackend):
    """Answer `user.has_perm(perm, merchant)` from the user's role in that merchant.

    Global permissions (obj=None) are left to ModelBackend: they serve the helpdesk admin and
    never open a merchant's portal pages. The answer is cached on the user object, which lives
    for one request, so a role change takes effect on the next request.
    """

    def get_all_permissions(self, user_obj, obj=None):
        if not isinstance(obj, Merchant) or not user_obj.is_active or user_obj.is_anonymous:
            return set()
        cache = user_obj.__dict__.setdefault("_merchant_perm_cache", {})
        if obj.pk not in cache:
            rows = Permission.objects.filter(
                merchant_roles__memberships__user=user_obj,
                merchant_roles__memberships__merchant=obj,
            ).values_list("content_type__app_label", "codename")
            cache[obj.pk] = {f"{app_label}.{codename}" for app_label, codename in rows}
        return cache[obj.pk]

    def has_perm(self, user_obj, perm, obj=None):
        return perm in self.get_all_permissions(user_obj, obj)
