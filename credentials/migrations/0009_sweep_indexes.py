import django.db.models.functions.comparison
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0008_providers"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="credential",
            index=models.Index(
                condition=models.Q(
                    ("acknowledged_at__isnull", True),
                    ("lifecycle_state", "active"),
                    models.Q(("verification_state", "rejected"), _negated=True),
                ),
                fields=["followup_due_at", "id"],
                name="cred_followup_due",
            ),
        ),
        migrations.AddIndex(
            model_name="credential",
            index=models.Index(
                django.db.models.functions.comparison.Coalesce(
                    "verification_next_attempt_at", "submitted_at"
                ),
                models.F("id"),
                condition=models.Q(
                    ("lifecycle_state", "active"), ("verification_state", "pending")
                ),
                name="cred_pending_since",
            ),
        ),
        migrations.AddIndex(
            model_name="credential",
            index=models.Index(
                condition=models.Q(
                    ("lifecycle_state", "active"), ("verification_state", "verifying")
                ),
                fields=["verification_claimed_at", "id"],
                name="cred_verifying_since",
            ),
        ),
        migrations.AddIndex(
            model_name="credential",
            index=models.Index(
                condition=models.Q(
                    ("lifecycle_state", "active"),
                    ("verification_state__in", ["verified", "unreachable"]),
                ),
                fields=["next_reverify_at", "id"],
                name="cred_reverify_due",
            ),
        ),
    ]
