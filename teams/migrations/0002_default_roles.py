"""Seed the default roles. Their permission sets are frozen here, as history."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ALL = [
    "merchants.access_merchant",
    "merchants.edit_merchant_profile",
    "credentials.view_key_status",
    "credentials.submit_keys",
    "credentials.revoke_keys",
    "teams.view_team",
    "teams.invite_members",
    "teams.manage_member_roles",
    "teams.manage_custom_roles",
]
DEFAULT_ROLES = [
    ("owner", "Owner", "Everything, including making other Owners.", ALL),
    ("administrator", "Administrator", "Everything but ownership.", ALL),
    (
        "developer",
        "Developer",
        "Sends and rolls keys and follows their verification.",
        [
            "merchants.access_merchant",
            "credentials.view_key_status",
            "credentials.submit_keys",
            "teams.view_team",
        ],
    ),
    (
        "support",
        "Support",
        "Follows the state of the keys.",
        ["merchants.access_merchant", "credentials.view_key_status"],
    ),
    ("view-only", "View only", "Sees the merchant's page.", ["merchants.access_merchant"]),
]


def seed_default_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran (post_migrate); the roles need
    # them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Permission = apps.get_model("auth", "Permission")
    Role = apps.get_model("teams", "Role")
    for slug, name, description, perms in DEFAULT_ROLES:
        role, _ = Role.objects.update_or_create(
            merchant=None, slug=slug, defaults={"name": name, "description": description}
        )
        permissions = []
        for perm in perms:
            app_label, codename = perm.split(".")
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        role.permissions.set(permissions)


def remove_default_roles(apps, schema_editor):
    apps.get_model("teams", "Role").objects.filter(merchant=None).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("teams", "0001_initial"),
        ("merchants", "0001_initial"),
        ("credentials", "0001_initial"),
    ]

    operations = [migrations.RunPython(seed_default_roles, remove_default_roles)]
