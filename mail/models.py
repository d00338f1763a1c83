"""The durable outbox: every mail the system sends, stored before it is sent."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class OutgoingEmail(models.Model):
    """A mail to send, written in the same transaction as the event it reports (an outbox).

    The outbox knows nothing of merchants or keys: `topic` is an opaque label its sender
    chooses, so that mail about one thing can be found (and cancelled) again. The unique
    `dedupe_key` makes each mail exist once however often the event is processed
    (a redelivered task, two sweeps at once); `sent_at` is set only after the mail server
    accepted it, so a failed send is retried and never recorded as sent. The content is
    rendered from templates that never receive a secret.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled (no longer needed)"

    dedupe_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=64)
    topic = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="What the mail is about, as its sender names it (such as credential:42).",
    )
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    urgent = models.BooleanField(
        default=False, help_text="Sent with high-priority headers (a compromised key)."
    )
    state = models.CharField(max_length=16, choices=State, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.CharField(
        max_length=255, blank=True, help_text="The exception class of the last failed send."
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table predates this app (it was created as merchants' own).
        db_table = "merchants_outgoingemail"
        verbose_name = "mail"
        verbose_name_plural = "mail"
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="email_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=["pending", "cancelled"], sent_at__isnull=True)
                | models.Q(state="sent", sent_at__isnull=False),
                name="email_sent_at_iff_sent",
            ),
        ]

    def __str__(self):
        return f"{self.subject} → {', '.join(self.to)}"

    @property
    def from_email(self) -> str:
        return settings.DEFAULT_FROM_EMAIL
