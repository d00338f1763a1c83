from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_helpdesk_groups(sender, **kwargs):
    from teams.helpdesk import helpdesk_groups_ensure

    helpdesk_groups_ensure()


class TeamsConfig(AppConfig):
    name = "teams"
    verbose_name = "Teams and access"

    def ready(self):
        # After each app's migrations (and flush): the last run, after every app's
        # permissions exist, leaves the groups matching the code. Connected here, not
        # imported at module level: the app registry is not ready while apps.py loads.
        post_migrate.connect(_ensure_helpdesk_groups, dispatch_uid="ensure_helpdesk_groups")
        # Mail is written in its recipients' time zone, which their accounts know.
        from mail.compose import time_zone_of_recipients
        from teams.time_zones import time_zone_for_addresses

        time_zone_of_recipients(time_zone_for_addresses)
