"""The audit trail: an append-only record of every security-relevant action."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit events are append-only: they are never updated.")

    def delete(self):
        raise TypeError("Audit events are append-only: they are never deleted.")


class AuditEvent(models.Model):
    """One security-relevant action: who, for which merchant, what, on what, when, from where.

    Append-only: saving an existing event, or updating or deleting through a queryset,
    raises. Details are small JSON written by services, and never hold a secret.
    """

    class Action(models.TextChoices):
        SIGNED_IN = "signed_in", "Signed in"
        SIGN_IN_FAILED = "sign_in_failed", "Failed sign-in"
        SIGN_IN_LOCKED_OUT = "sign_in_locked_out", "Sign-in locked after repeated failures"
        SIGN_IN_UNLOCKED = "sign_in_unlocked", "Sign-in lockout lifted"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_RESET = "password_reset", "Password reset by emailed link"
        ACCESS_DENIED = "access_denied", "Access denied"
        ACTION_REFUSED = "action_refused", "Action refused by the team rules"
        INVITATION_SENT = "invitation_sent", "Invitation sent"
        INVITATION_RESENT = "invitation_resent", "Invitation resent"
        INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        ROLE_CREATED = "role_created", "Role created"
        ROLE_CHANGED = "role_changed", "Role changed"
        ROLE_DELETED = "role_deleted", "Role deleted"
        MEMBER_ROLE_CHANGED = "member_role_changed", "Member's role changed"
        MEMBER_REMOVED = "member_removed", "Member removed"
        MEMBER_LEFT = "member_left", "Member left"
        MERCHANT_PROFILE_CHANGED = "merchant_profile_changed", "Merchant profile changed"
        KEY_SUBMITTED = "key_submitted", "Key submitted"
        KEY_VERIFICATION = "key_verification", "Key verification outcome"
        SUBMISSION_ACKNOWLEDGED = "submission_acknowledged", "Submission acknowledged"
        KEY_SUPERSEDED = "key_superseded", "Key replaced by a newer one"
        KEY_REVOKED = "key_revoked", "Key reported compromised and revoked"
        KEY_REVERIFICATION = "key_reverification", "Key re-checked"
        KEY_VERIFY_AGAIN = "key_verify_again", "Key sent to be verified again"
        KEY_REVEALED = "key_revealed", "Secret revealed to the helpdesk"
        KEY_REVEAL_REFUSED = "key_reveal_refused", "Secret reveal refused"
        ENCRYPTION_KEY_ROTATED = "encryption_key_rotated", "Encryption key rotated"
        MERCHANT_CREATED = "merchant_created", "Merchant created"
        USER_CREATED = "user_created", "User created"
        USER_CHANGED = "user_changed", "User changed"
        USER_DELETED = "user_deleted", "User deleted"
        SERVICE_ACCOUNT_CREATED = "service_account_created", "Service account created"
        SERVICE_ACCOUNT_CHANGED = "service_account_changed", "Service account changed"
        SERVICE_TOKEN_ROLLED = "service_token_rolled", "Service account token rolled"
        SERVICE_ACCOUNT_REVOKED = "service_account_revoked", "Service account revoked"
        WEBHOOK_ENDPOINT_CHANGED = "webhook_endpoint_changed", "Webhook endpoint changed"
        WEBHOOK_RESENT = "webhook_resent", "Webhook delivery sent again"
        SECRET_FETCHED = "secret_fetched", "Secret fetched through the API"

    # PROTECT: an account that acted cannot be deleted (deactivate it), so every event keeps
    # who did it; its address is kept in actor_email as well.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    actor_email = models.EmailField(
        blank=True, help_text="Kept when the user is deleted; the address typed for failures."
    )
    merchant = models.ForeignKey(
        "merchants.Merchant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    action = models.CharField(max_length=64, choices=Action, db_index=True)
    target = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        # The table predates this app (it was created as teams' own).
        db_table = "teams_auditevent"
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            models.Index(fields=["merchant", "-occurred_at"], name="audit_merchant_time"),
            # One kind of event of one merchant, newest first: the secret fetches a key's
            # page lists (integrations write one per API fetch).
            models.Index(
                fields=["merchant", "action", "-occurred_at"], name="audit_merchant_action_time"
            ),
        ]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_email or 'system'}: {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise TypeError("Audit events are append-only: they are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only: they are never deleted.")


class RefusalWindow(models.Model):
    """Refusals of one person on one merchant's route, counted for one window of time.

    Someone probing another tenant must not flood its trail: the first refusal of a window is
    an audit event, the next ones only count here, and when the window is over one more event
    says how many there were (`audit.refusals`). The trail itself stays append-only; this
    counter is working state, not a record, and goes once it is summed up.
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=64)  # an AuditEvent.Action
    target = models.CharField(max_length=255)
    opened_at = models.DateTimeField(db_index=True)
    last_at = models.DateTimeField()
    more = models.PositiveIntegerField(
        default=0, help_text="Refusals after the one recorded when the window opened."
    )
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    last_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["actor", "merchant", "action", "target"], name="refusal_window_once"
            )
        ]

    def __str__(self):
        return f"{self.action} {self.target}: {self.more} more since {self.opened_at:%H:%M}"
