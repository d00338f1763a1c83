"""What every page needs to show the merchants the user can switch between."""

from django.utils.functional import SimpleLazyObject

from teams.selectors import membership_list_for_user


def merchant_switcher(request):
    """Give templates `my_memberships`, queried only if a page shows it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def memberships():
        return list(membership_list_for_user(user=user))

    return {"my_memberships": SimpleLazyObject(memberships)}
