"""Store the encryption canary, encrypted with the keys configured when migrating."""

from django.db import migrations


def create_canary(apps, schema_editor):
    EncryptionCanary = apps.get_model("credentials", "EncryptionCanary")
    if not EncryptionCanary.objects.exists():
        EncryptionCanary.objects.create(value="keyhouse-encryption-canary")


class Migration(migrations.Migration):
    dependencies = [("credentials", "0001_initial")]

    operations = [migrations.RunPython(create_canary, migrations.RunPython.noop)]
