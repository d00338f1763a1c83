"""The outbox forgets merchants and keys: an opaque `topic` replaces its two foreign keys."""

from django.db import migrations, models


def fill_topic(apps, schema_editor):
    OutgoingEmail = apps.get_model("mail", "OutgoingEmail")
    for pk, credential_id in (
        OutgoingEmail.objects.filter(credential__isnull=False)
        .values_list("pk", "credential_id")
        .iterator()
    ):
        OutgoingEmail.objects.filter(pk=pk).update(topic=f"credential:{credential_id}")


def fill_credential(apps, schema_editor):
    OutgoingEmail = apps.get_model("mail", "OutgoingEmail")
    Credential = apps.get_model("credentials", "Credential")
    for pk, topic in OutgoingEmail.objects.exclude(topic="").values_list("pk", "topic").iterator():
        prefix, _, credential_id = topic.partition(":")
        if prefix == "credential" and credential_id.isdigit():
            credential = Credential.objects.filter(pk=int(credential_id)).first()
            if credential is not None:
                OutgoingEmail.objects.filter(pk=pk).update(
                    credential=credential, merchant_id=credential.merchant_id
                )


class Migration(migrations.Migration):
    dependencies = [("mail", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="outgoingemail",
            name="topic",
            field=models.CharField(
                blank=True,
                db_index=True,
                help_text="What the mail is about, as its sender names it (such as credential:42).",
                max_length=64,
            ),
        ),
        migrations.RunPython(fill_topic, fill_credential),
        migrations.RemoveField(model_name="outgoingemail", name="credential"),
        migrations.RemoveField(model_name="outgoingemail", name="merchant"),
    ]
