"""Keys from more than one provider.

Stripe's publishable key becomes the provider's public value (`public_key`: Kashier's merchant
id), a second encrypted secret holds Kashier's Payment API key, and `missing_permissions` the
permissions a restricted Stripe key lacks. Existing Stripe keys keep their rows and secrets;
active Stripe secret keys get the helpdesk flag that Stripe recommends a restricted key, as a
newly verified one would under the default STRIPE_SECRET_KEY_POLICY (warn).
"""

from django.conf import settings
from django.db import migrations, models

import credentials.fields

SECRET_KEY_FLAG = "secret_key"  # noqa: S105  a flag code, not a secret


def flag_secret_keys(apps, schema_editor):
    if getattr(settings, "STRIPE_SECRET_KEY_POLICY", "warn") != "warn":
        return
    Credential = apps.get_model("credentials", "Credential")
    # Row by row through .only(): the encrypted columns are neither read nor written.
    for credential in Credential.objects.filter(
        provider="stripe", kind="secret", lifecycle_state="active"
    ).only("pk", "helpdesk_flags"):
        if SECRET_KEY_FLAG not in credential.helpdesk_flags:
            credential.helpdesk_flags = [*credential.helpdesk_flags, SECRET_KEY_FLAG]
            credential.save(update_fields=["helpdesk_flags"])


def unflag_secret_keys(apps, schema_editor):
    Credential = apps.get_model("credentials", "Credential")
    for credential in Credential.objects.filter(provider="stripe", kind="secret").only(
        "pk", "helpdesk_flags"
    ):
        if SECRET_KEY_FLAG in credential.helpdesk_flags:
            credential.helpdesk_flags = [
                flag for flag in credential.helpdesk_flags if flag != SECRET_KEY_FLAG
            ]
            credential.save(update_fields=["helpdesk_flags"])


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0007_key_roles_view_keys"),
        ("merchants", "0007_country_from_iso_3166"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameField("credential", "publishable_key", "public_key"),
        migrations.RemoveConstraint(
            model_name="credential",
            name="cred_secret_only_while_active",
        ),
        migrations.AddField(
            model_name="credential",
            name="extra_secret",
            field=credentials.fields.EncryptedSecretField(
                blank=True,
                editable=False,
                help_text="A second secret, where the provider has one (Kashier's Payment API key).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="credential",
            name="missing_permissions",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Permissions the requested integrations need that the key lacks (rak_…).",
            ),
        ),
        migrations.AlterField(
            model_name="credential",
            name="provider",
            field=models.CharField(
                choices=[("stripe", "Stripe"), ("kashier", "Kashier")],
                default="stripe",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="credential",
            name="public_key",
            field=models.CharField(
                help_text="The provider's public value, shown in full: Stripe's publishable key, Kashier's merchant id.",
                max_length=255,
            ),
        ),
        migrations.AlterField(
            model_name="credential",
            name="verification_state",
            field=models.CharField(
                choices=[
                    ("pending", "Waiting to be verified"),
                    ("verifying", "Being verified"),
                    ("verified", "Verified"),
                    ("rejected", "Rejected by the provider"),
                    ("unreachable", "The provider could not be reached"),
                    ("not_verified", "Not verified"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="credential",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("lifecycle_state", "active"), ("secret__isnull", False)),
                    models.Q(
                        models.Q(("lifecycle_state", "active"), _negated=True),
                        ("extra_secret__isnull", True),
                        ("secret__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="cred_secret_only_while_active",
            ),
        ),
        migrations.AddConstraint(
            model_name="credential",
            constraint=models.CheckConstraint(
                condition=models.Q(("provider__in", ["stripe", "kashier"])),
                name="cred_provider_valid",
            ),
        ),
        migrations.RunPython(flag_secret_keys, unflag_secret_keys),
    ]
