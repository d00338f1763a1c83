from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_helpdesk_groups(sender, **kwargs):
    from merchants.helpdesk import helpdesk_groups_ensure

    helpdesk_groups_ensure()


class MerchantsConfig(AppConfig):
    name = "merchants"
    verbose_name = "Merchants"

    def ready(self):
        # After migrate, when every permission exists: the groups always match the code.
        post_migrate.connect(_ensure_helpdesk_groups, sender=self)
