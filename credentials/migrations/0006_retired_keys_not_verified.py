"""Keys replaced or revoked before Stripe answered end "not verified" instead of staying
"waiting to be verified" or "being verified" for ever (issue 14, item 4)."""

from django.db import migrations, models

STATES = ["pending", "verifying", "verified", "rejected", "unreachable", "not_verified"]


def settle_retired_verifications(apps, schema_editor):
    """Mark retired keys left pending or verifying as not verified."""
    credential = apps.get_model("credentials", "Credential")
    credential.objects.exclude(lifecycle_state="active").filter(
        verification_state__in=["pending", "verifying"]
    ).update(
        verification_state="not_verified",
        verification_claimed_at=None,
        verification_next_attempt_at=None,
    )


def unsettle_retired_verifications(apps, schema_editor):
    """Before "not verified" existed, such keys were left "waiting to be verified"."""
    credential = apps.get_model("credentials", "Credential")
    credential.objects.filter(verification_state="not_verified").update(
        verification_state="pending"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0005_verification_round"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="credential",
            name="cred_verification_state_valid",
        ),
        migrations.AlterField(
            model_name="credential",
            name="verification_state",
            field=models.CharField(
                choices=[
                    ("pending", "Waiting to be verified"),
                    ("verifying", "Being verified"),
                    ("verified", "Verified"),
                    ("rejected", "Rejected by Stripe"),
                    ("unreachable", "Stripe could not be reached"),
                    ("not_verified", "Not verified"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="credential",
            constraint=models.CheckConstraint(
                condition=models.Q(verification_state__in=STATES),
                name="cred_verification_state_valid",
            ),
        ),
        # Before the rule held, a key superseded while its verification ran kept that state.
        migrations.RunPython(settle_retired_verifications, unsettle_retired_verifications),
    ]
