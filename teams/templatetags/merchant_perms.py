"""Template tags that ask the same permission question as the views."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def has_merchant_perm(context, perm, merchant):
    """Return True if the signed-in user holds `perm` for `merchant`.

    Usage: `{% has_merchant_perm "credentials.submit_keys" merchant as can_submit %}`.
    """
    return context["request"].user.has_perm(perm, merchant)
