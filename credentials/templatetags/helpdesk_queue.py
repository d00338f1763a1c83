"""The helpdesk queue at a glance, for the admin's home page (templates/admin/index.html)."""

from django import template

from credentials.selectors import credentials_queue_counts

register = template.Library()


@register.simple_tag
def helpdesk_queue_counts() -> dict[str, int]:
    """Return how many keys wait for the helpdesk and how many of those are overdue."""
    return credentials_queue_counts()
