"""What a service account may do through the API, one scope per kind of read."""

from django.db import models

# Who manages service accounts, their tokens and webhooks: superusers (no group holds it).
MANAGE_SERVICE_ACCOUNTS = "integrations.manage_service_accounts"


class Scope(models.TextChoices):
    MERCHANTS_READ = "merchants:read", "List the merchants it serves"
    CREDENTIALS_READ = "credentials:read", "Read their keys' status (never a secret)"
    SECRETS_READ = "secrets:read", "Fetch the secrets of their active verified keys (audited)"


class EventType(models.TextChoices):
    SUBMITTED = "credential.submitted", "A key was submitted"
    VERIFIED = "credential.verified", "A key was verified"
    REJECTED = "credential.rejected", "A key was rejected by its provider"
    SUPERSEDED = "credential.superseded", "A key was replaced by a newer one"
    REVOKED = "credential.revoked", "A key was revoked"
    STOPPED_WORKING = "credential.stopped_working", "A verified key stopped working"
