"""The outbox forgets merchants and keys: an opaque `topic` replaces its two foreign keys."""

from django.db import migrations, models
from django.db.models.functions import Cast, Concat


def _topic(prefix, column):
    return Concat(models.Value(f"{prefix}:"), Cast(column, models.CharField()))


def fill_topic(apps, schema_editor):
    # Set-based: no row is read into Python. A mail about a key names the key (its merchant
    # follows from it); a mail about a merchant alone keeps naming that merchant.
    OutgoingEmail = apps.get_model("mail", "OutgoingEmail")
    OutgoingEmail.objects.filter(credential__isnull=False).update(
        topic=_topic("credential", "credential_id")
    )
    OutgoingEmail.objects.filter(credential__isnull=True, merchant__isnull=False).update(
        topic=_topic("merchant", "merchant_id")
    )


def fill_links(apps, schema_editor):
    OutgoingEmail = apps.get_model("mail", "OutgoingEmail")
    Credential = apps.get_model("credentials", "Credential")
    Merchant = apps.get_model("merchants", "Merchant")
    merchant_of_credential = dict(Credential.objects.values_list("pk", "merchant_id"))
    merchants = set(Merchant.objects.values_list("pk", flat=True))
    for pk, topic in list(OutgoingEmail.objects.exclude(topic="").values_list("pk", "topic")):
        prefix, _, object_id = topic.partition(":")
        if not object_id.isdigit():
            continue
        object_id = int(object_id)
        if prefix == "credential" and object_id in merchant_of_credential:
            OutgoingEmail.objects.filter(pk=pk).update(
                credential_id=object_id, merchant_id=merchant_of_credential[object_id]
            )
        elif prefix == "merchant" and object_id in merchants:
            OutgoingEmail.objects.filter(pk=pk).update(merchant_id=object_id)


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
        migrations.RunPython(fill_topic, fill_links),
        migrations.RemoveField(model_name="outgoingemail", name="credential"),
        migrations.RemoveField(model_name="outgoingemail", name="merchant"),
    ]
