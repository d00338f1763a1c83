"""What every page needs to show the merchants the user can switch between."""

from django.utils.functional import SimpleLazyObject


def merchant_switcher(request):
    """Give templates `my_memberships`, queried only if a page shows it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def memberships():
        from merchants.selectors import memberships_for_user

        return list(memberships_for_user(user=user))

    return {"my_memberships": SimpleLazyObject(memberships)}
