from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Keys"

    def ready(self):
        from credentials import checks  # noqa: F401  (registers the system checks)
