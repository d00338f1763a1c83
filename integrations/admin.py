"""The integration side in the admin: service accounts (superusers only) and the webhook
delivery log. Each lives in its own module; registering them here lets the admin find them."""

from integrations import admin_accounts, admin_webhooks  # noqa: F401
