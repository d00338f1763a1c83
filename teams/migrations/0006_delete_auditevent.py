"""The audit trail moved to the audit app: only Django's state forgets it here; the table
stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0005_audit_lifecycle_actions"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")]
        ),
    ]
