from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0004_key_lifecycle"),
    ]

    operations = [
        migrations.AddField(
            model_name="credential",
            name="verification_round",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text=(
                    "How many times verification started again (re-checks of a key Stripe "
                    "could not be reached for, the helpdesk's Verify again); each round's "
                    "outcome is mailed once."
                ),
            ),
        ),
    ]
