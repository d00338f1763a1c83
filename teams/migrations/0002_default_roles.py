"""Seed the default roles from the catalogue in teams/permissions.py, their one definition.

The catalogue holds only strings (no models), so reading it here is safe at any point in the
migration history.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from teams.permissions import DEFAULT_ROLES


def seed_default_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran (post_migrate); the roles need
    # them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Permission = apps.get_model("auth", "Permission")
    Role = apps.get_model("teams", "Role")
    for default in DEFAULT_ROLES:
        role, _ = Role.objects.update_or_create(
            merchant=None,
            slug=default.slug,
            defaults={"name": default.name, "description": default.description},
        )
        permissions = []
        for perm in sorted(default.permissions):
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
