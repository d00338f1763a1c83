"""Template filters that tell a key's state in the same words on every page."""

from django import template

from credentials.selectors import credential_status

register = template.Library()


@register.filter
def key_status(credential):
    """Return the key's KeyStatus (`code`, `label`): `{% with status=key|key_status %}`."""
    return credential_status(credential)
