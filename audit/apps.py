from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from audit import (
            deletions,  # noqa: F401  (connects the account-deletion receiver)
            signals,  # noqa: F401  (connects the sign-in audit receivers)
        )
