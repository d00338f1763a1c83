"""The admin's app config: the default admin site is the one that asks for a TOTP code."""

from django.contrib.admin.apps import AdminConfig


class KeyhouseAdminConfig(AdminConfig):
    """`django.contrib.admin` with `teams.admin_site.KeyhouseAdminSite` as `admin.site`.

    Every `@admin.register` and every ModelAdmin's custom view then goes through that site's
    `admin_view`, which lets in only sessions verified by a TOTP device.
    """

    default_site = "teams.admin_site.KeyhouseAdminSite"

    def ready(self):
        super().ready()
        from teams.admin_site import replace_device_admin

        # django-otp registers an editable device admin; staff get a read-only one instead.
        replace_device_admin()
