"""The outbox moved to the mail app: only Django's state forgets it here; the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("merchants", "0004_outgoing_email_urgent"),
        ("mail", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="OutgoingEmail")]
        ),
    ]
