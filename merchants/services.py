"""Writes of merchant data, the outbox of mail, and the helpdesk's follow-up reminders."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from config.celery_app import enqueue
from credentials.models import Credential, LifecycleState
from merchants.models import Merchant, OutgoingEmail
from teams.models import Role
from teams.permissions import OWNER
from teams.services import membership_create


@transaction.atomic
def merchant_create(
    *,
    name: str,
    owner,
    actor,
    slug: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    website: str = "",
    country: str = "",
    requested_integrations: list[str] | None = None,
) -> Merchant:
    """Create a merchant with `owner` as its first Owner."""
    merchant = Merchant(
        name=name,
        slug=slug or slugify(name),
        contact_email=contact_email,
        contact_phone=contact_phone,
        website=website,
        country=country,
        requested_integrations=list(requested_integrations or []),
    )
    merchant.full_clean()
    merchant.save()
    membership_create(
        user=owner, merchant=merchant, role=Role.objects.defaults().get(slug=OWNER), actor=actor
    )
    return merchant


logger = logging.getLogger(__name__)

# How long a worker may hold a mail it is sending before another may try it.
EMAIL_SEND_LEASE = timedelta(minutes=5)
EMAIL_RETRY_MAX_SECONDS = 3600
# Rows per sweep: bounded so that a transaction never grows without limit.
SWEEP_BATCH = 500


PROFILE_FIELDS = ("contact_email", "contact_phone", "website", "country", "requested_integrations")


@transaction.atomic
def merchant_update_profile(*, merchant: Merchant, actor, request=None, **changes) -> Merchant:
    """Change the merchant's contact details and requested integrations."""
    from teams.models import AuditEvent
    from teams.permissions import EDIT_MERCHANT_PROFILE
    from teams.services import TeamRuleViolation, audit_record

    if not actor.has_perm(EDIT_MERCHANT_PROFILE, merchant):
        raise TeamRuleViolation("Your role in this merchant does not allow this.")
    changed = {}
    for field in PROFILE_FIELDS:
        if field in changes and getattr(merchant, field) != changes[field]:
            changed[field] = {"from": getattr(merchant, field), "to": changes[field]}
            setattr(merchant, field, changes[field])
    if not changed:
        return merchant
    merchant.full_clean()
    merchant.save(update_fields=list(changed))
    audit_record(
        action=AuditEvent.Action.MERCHANT_PROFILE_CHANGED,
        actor=actor,
        merchant=merchant,
        target="profile",
        details=changed,
        request=request,
    )
    return merchant


def email_enqueue(
    *,
    dedupe_key: str,
    kind: str,
    to: list[str],
    template: str,
    context: dict,
    merchant: Merchant | None = None,
    credential: Credential | None = None,
    urgent: bool = False,
    send_in_process: bool = False,
) -> OutgoingEmail | None:
    """Store a mail rendered from `emails/<template>` and send it once the transaction commits.

    Return None, storing nothing, when a mail with this `dedupe_key` already exists: the
    event it reports was processed before. Templates never receive a secret.

    By default a `send_email` task sends it; code already running in a worker passes
    `send_in_process=True` to send it right after commit instead, which spares a task and
    keeps the mail from queueing behind other work. A failed send is retried by the sweep
    either way.
    """
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{template}.subject.txt", context).split())
    body_text = render_to_string(f"emails/{template}.txt", context)
    body_html = render_to_string(f"emails/{template}.html", context)
    with transaction.atomic():
        email, created = OutgoingEmail.objects.get_or_create(
            dedupe_key=dedupe_key,
            defaults={
                "kind": kind,
                "to": list(to),
                "subject": subject[:255],
                "body_text": body_text,
                "body_html": body_html,
                "merchant": merchant,
                "credential": credential,
                "urgent": urgent,
            },
        )
    if not created:
        return None
    if send_in_process:
        transaction.on_commit(lambda: email_send(email_id=email.pk))
    else:
        transaction.on_commit(lambda: enqueue("merchants.tasks.send_email", email.pk))
    return email


def _retry_delay(attempts: int) -> float:
    return min(EMAIL_RETRY_MAX_SECONDS, settings.EMAIL_RETRY_BASE_SECONDS * 2 ** (attempts - 1))


def email_send(*, email_id: int) -> bool:
    """Send mail `email_id` if it is due and unsent; return True if it was sent now.

    A worker first claims the mail (a conditional update), so two workers never send it
    together. Only after the mail server accepted it is it marked sent: a failed send is
    scheduled again with a growing delay and never counted as sent.
    """
    now = timezone.now()
    claimed = OutgoingEmail.objects.filter(
        pk=email_id, state=OutgoingEmail.State.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + EMAIL_SEND_LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return False
    email = OutgoingEmail.objects.get(pk=email_id)
    message = EmailMultiAlternatives(
        subject=email.subject, body=email.body_text, from_email=email.from_email, to=email.to
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    if email.urgent:
        message.extra_headers.update({"X-Priority": "1", "Importance": "high"})
    try:
        message.send()
    except Exception as error:  # noqa: BLE001  any mail failure: retried, never marked sent
        delay = _retry_delay(email.attempts)
        OutgoingEmail.objects.filter(pk=email_id).update(
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            last_error=type(error).__name__,
        )
        logger.warning(
            "Sending mail %s (%s) failed with %s; trying again in %.0f s.",
            email_id,
            email.kind,
            type(error).__name__,
            delay,
        )
        return False
    sent_at = timezone.now()
    with transaction.atomic():
        OutgoingEmail.objects.filter(pk=email_id).update(
            state=OutgoingEmail.State.SENT, sent_at=sent_at, last_error=""
        )
        if email.kind == HELPDESK_SUBMISSION and email.credential_id:
            Credential.objects.filter(
                pk=email.credential_id, helpdesk_notified_at__isnull=True
            ).update(helpdesk_notified_at=sent_at)
    return True


def emails_send_due() -> int:
    """Send every unsent mail whose time has come (new, or due for a retry); return how many."""
    due = OutgoingEmail.objects.filter(
        state=OutgoingEmail.State.PENDING, next_attempt_at__lte=timezone.now()
    ).values_list("pk", flat=True)[:SWEEP_BATCH]
    return sum(email_send(email_id=pk) for pk in list(due))


HELPDESK_SUBMISSION = "helpdesk_submission"
HELPDESK_REMINDER = "helpdesk_reminder"


def followups_send_due(*, now=None) -> int:
    """Queue one reminder to the helpdesk for each unacknowledged submission now due.

    Rows are claimed with SELECT … FOR UPDATE SKIP LOCKED and a conditional update, so two
    sweeps running at once never remind twice; the next reminder is due FOLLOWUP_AFTER from
    now, so reminders missed while workers were down go out once, not once per missed period.
    Return the number of reminders queued.
    """
    now = now or timezone.now()
    next_due = now + timedelta(seconds=settings.FOLLOWUP_AFTER)
    queued = 0
    with transaction.atomic():
        due = list(
            Credential.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                acknowledged_at__isnull=True,
                followup_due_at__lte=now,
                lifecycle_state=LifecycleState.ACTIVE,
            )
            .order_by("followup_due_at", "pk")
            .values_list("pk", "followup_due_at", "reminders_sent")[:SWEEP_BATCH]
        )
        numbers = {}
        for pk, due_at, reminders_sent in due:
            claimed = Credential.objects.filter(
                pk=pk, followup_due_at=due_at, acknowledged_at__isnull=True
            ).update(
                reminders_sent=reminders_sent + 1, last_reminded_at=now, followup_due_at=next_due
            )
            if claimed:
                numbers[pk] = reminders_sent + 1
        claimed_credentials = (
            Credential.objects.select_related("merchant", "submitted_by")
            .defer("secret")
            .in_bulk(list(numbers))
        )
        for pk, number in numbers.items():
            credential = claimed_credentials[pk]
            reminder = email_enqueue(
                dedupe_key=f"reminder:{pk}:{number}",
                kind=HELPDESK_REMINDER,
                to=[settings.HELPDESK_EMAIL],
                template="helpdesk_reminder",
                context={
                    "credential": credential,
                    "merchant": credential.merchant,
                    "number": number,
                    "admin_url": credential_admin_url(credential),
                },
                merchant=credential.merchant,
                credential=credential,
            )
            if reminder is not None:
                queued += 1
    return queued


def reminders_cancel(*, credential: Credential) -> int:
    """Cancel the reminders about `credential` that were queued but not sent; return how many.

    Called when reminding no longer makes sense: the submission was acknowledged, or its key
    revoked.
    """
    return OutgoingEmail.objects.filter(
        credential=credential, kind=HELPDESK_REMINDER, state=OutgoingEmail.State.PENDING
    ).update(state=OutgoingEmail.State.CANCELLED)


def credential_admin_url(credential: Credential) -> str:
    """Return the absolute address of the credential's page in the helpdesk admin."""
    return settings.SITE_URL + reverse("admin:credentials_credential_change", args=[credential.pk])
