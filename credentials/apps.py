from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Keys"

    def ready(self):
        # Registers the system checks, and the outbox hook that records when the helpdesk
        # was told of a key.
        from credentials import checks  # noqa: F401
        from credentials.services import helpdesk  # noqa: F401
