from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0008_providers"),
    ]

    operations = []
