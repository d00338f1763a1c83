from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_helpdesk_groups(sender, **kwargs):
    from merchants.helpdesk import helpdesk_groups_ensure

    helpdesk_groups_ensure()


class MerchantsConfig(AppConfig):
    name = "merchants"
    verbose_name = "Merchants"

    def ready(self):
        # After each app's migrations (and flush): the last run, after every app's
        # permissions exist, leaves the groups matching the code.
        post_migrate.connect(_ensure_helpdesk_groups, dispatch_uid="ensure_helpdesk_groups")
