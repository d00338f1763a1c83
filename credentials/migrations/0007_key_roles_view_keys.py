"""Custom roles that submit or revoke keys also view them (issue 14, item 2): a member who
submitted a key was sent to its page, and mailed its address, without the right to open it.
The team rules now refuse such a role; this gives the roles made before that rule the one
permission they lacked."""

from django.db import migrations

NEEDS_VIEW_KEYS = ("submit_keys", "revoke_keys")


def give_key_roles_view_keys(apps, schema_editor):
    """Add "View keys" to every custom role with "Submit and roll keys" or "Revoke keys"."""
    permission = apps.get_model("auth", "Permission")
    role = apps.get_model("teams", "Role")
    view_keys = permission.objects.filter(
        content_type__app_label="credentials", codename="view_key_status"
    ).first()
    if view_keys is None:  # a fresh database: permissions come after the migrations
        return
    for custom in role.objects.filter(
        merchant__isnull=False,
        permissions__content_type__app_label="credentials",
        permissions__codename__in=NEEDS_VIEW_KEYS,
    ).distinct():
        custom.permissions.add(view_keys)


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0006_retired_keys_not_verified"),
        ("teams", "0007_invitation_mails_and_codes"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(give_key_roles_view_keys, migrations.RunPython.noop),
    ]
