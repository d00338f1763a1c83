"""Writes of merchant data, the outbox of mail, and the helpdesk's follow-up reminders."""

import logging
from contextlib import suppress
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from config.celery_app import enqueue
from credentials.models import Credential, LifecycleState
from merchants.models import Merchant, OutgoingEmail
from teams.models import AuditEvent, Role
from teams.permissions import EDIT_MERCHANT_PROFILE, OWNER
from teams.services import (
    audit_record,
    audits_refusals,
    membership_create,
    require_permission,
)


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


@audits_refusals(lambda kw: kw["merchant"])
@transaction.atomic
def merchant_update_profile(*, merchant: Merchant, actor, request=None, **changes) -> Merchant:
    """Change the merchant's contact details and requested integrations."""
    require_permission(actor, EDIT_MERCHANT_PROFILE, merchant)
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


def email_compose(
    *,
    dedupe_key: str,
    kind: str,
    to: list[str],
    template: str,
    context: dict,
    merchant: Merchant | None = None,
    credential: Credential | None = None,
    urgent: bool = False,
) -> OutgoingEmail:
    """Return a mail rendered from `emails/<template>`, not stored yet. Templates never
    receive a secret."""
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{template}.subject.txt", context).split())
    return OutgoingEmail(
        dedupe_key=dedupe_key,
        kind=kind,
        to=list(to),
        subject=subject[:255],
        body_text=render_to_string(f"emails/{template}.txt", context),
        body_html=render_to_string(f"emails/{template}.html", context),
        merchant=merchant,
        credential=credential,
        urgent=urgent,
    )


def emails_enqueue(
    emails: list[OutgoingEmail], *, send_in_process: bool = False
) -> list[OutgoingEmail]:
    """Store `emails` and send them once the transaction commits; return those stored.

    A mail whose `dedupe_key` already exists is left out: the event it reports was processed
    before.

    By default a `send_email` task sends each. Code already running in a worker passes
    `send_in_process=True` to send them right after commit instead, together over one
    connection to the mail server: that spares a task per mail and keeps the mails from
    queueing behind other work. They are stored already claimed by this worker, so no
    other sends them meanwhile; if this worker dies first, the sweep sends them once the
    claim has lapsed. A failed send is retried by the sweep either way.
    """
    new = list(emails)
    if not new:
        return []
    if send_in_process:
        lease_until = timezone.now() + EMAIL_SEND_LEASE
        for email in new:
            email.next_attempt_at, email.attempts = lease_until, 1
    try:
        # The common case, none stored before, in one insert.
        with transaction.atomic():
            OutgoingEmail.objects.bulk_create(new)
    except IntegrityError:
        # Some were stored before (the event is processed again): store the others.
        new = [email for email in new if _store_unless_duplicate(email)]
    if send_in_process and new:
        transaction.on_commit(lambda: _deliver(new))
    else:
        for email in new:
            transaction.on_commit(partial(enqueue, "merchants.tasks.send_email", email.pk))
    return new


def _store_unless_duplicate(email: OutgoingEmail) -> bool:
    email.pk = None
    try:
        with transaction.atomic():
            email.save(force_insert=True)
    except IntegrityError:
        if OutgoingEmail.objects.filter(dedupe_key=email.dedupe_key).exists():
            return False
        raise
    return True


def email_enqueue(*, send_in_process: bool = False, **mail) -> OutgoingEmail | None:
    """Compose one mail (the arguments of `email_compose`) and enqueue it: return it, or
    None, storing nothing, if a mail with its `dedupe_key` already exists."""
    stored = emails_enqueue([email_compose(**mail)], send_in_process=send_in_process)
    return stored[0] if stored else None


def _retry_delay(attempts: int) -> float:
    return min(EMAIL_RETRY_MAX_SECONDS, settings.EMAIL_RETRY_BASE_SECONDS * 2 ** (attempts - 1))


def email_send(*, email_id: int) -> bool:
    """Send mail `email_id` if it is due and unsent; return True if it was sent now.

    A worker first claims the mail (a conditional update), so two workers never send it
    together.
    """
    if not _claim(email_id, timezone.now()):
        return False
    return _deliver([OutgoingEmail.objects.get(pk=email_id)]) == 1


def _claim(email_id: int, now) -> bool:
    return bool(
        OutgoingEmail.objects.filter(
            pk=email_id, state=OutgoingEmail.State.PENDING, next_attempt_at__lte=now
        ).update(next_attempt_at=now + EMAIL_SEND_LEASE, attempts=F("attempts") + 1)
    )


def _message(email: OutgoingEmail) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=email.subject, body=email.body_text, from_email=email.from_email, to=email.to
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    if email.urgent:
        message.extra_headers.update({"X-Priority": "1", "Importance": "high"})
    return message


def _deliver(emails: list[OutgoingEmail]) -> int:
    """Send `emails`, claimed by this worker, over one connection; return how many were sent.

    Each is marked sent only after the mail server accepted it; a failed one is scheduled
    again with a growing delay and never counted as sent.
    """
    sent, failed = [], []
    connection = get_connection()
    try:
        connection.open()
    except Exception as error:  # noqa: BLE001  any mail failure: retried, never marked sent
        failed = [(email, error) for email in emails]
    else:
        for email in emails:
            # Each mail is its own attempt: a message the server refuses (a 4xx for that
            # recipient, say) does not hold back the others.
            try:
                connection.send_messages([_message(email)])
            except Exception as error:  # noqa: BLE001  retried, never marked sent
                failed.append((email, error))
            else:
                sent.append(email)
        with suppress(Exception):
            connection.close()
    sent_at = timezone.now()
    with transaction.atomic():
        if sent:
            OutgoingEmail.objects.filter(pk__in=[email.pk for email in sent]).update(
                state=OutgoingEmail.State.SENT, sent_at=sent_at, last_error=""
            )
            _on_sent(sent, sent_at)
        for email, error in failed:
            delay = _retry_delay(email.attempts)
            OutgoingEmail.objects.filter(pk=email.pk).update(
                next_attempt_at=timezone.now() + timedelta(seconds=delay),
                last_error=type(error).__name__,
            )
            logger.warning(
                "Sending mail %s (%s) failed with %s; trying again in %.0f s.",
                email.pk,
                email.kind,
                type(error).__name__,
                delay,
            )
    return len(sent)


def _on_sent(emails: list[OutgoingEmail], sent_at) -> None:
    """What sending a mail records besides its own state: the helpdesk was told of a key."""
    notified = [
        e.credential_id for e in emails if e.kind == HELPDESK_SUBMISSION and e.credential_id
    ]
    if notified:
        Credential.objects.filter(pk__in=notified, helpdesk_notified_at__isnull=True).update(
            helpdesk_notified_at=sent_at
        )


def emails_send_due() -> int:
    """Send every unsent mail whose time has come (new, or due for a retry); return how many.

    The due mails are claimed together: locked with SKIP LOCKED (a sweep running at the same
    time takes others) and leased in one update, then sent over one connection.
    """
    now = timezone.now()
    with transaction.atomic():
        due = list(
            OutgoingEmail.objects.select_for_update(skip_locked=True)
            .filter(state=OutgoingEmail.State.PENDING, next_attempt_at__lte=now)
            .order_by("pk")[:SWEEP_BATCH]
        )
        OutgoingEmail.objects.filter(pk__in=[email.pk for email in due]).update(
            next_attempt_at=now + EMAIL_SEND_LEASE, attempts=F("attempts") + 1
        )
    if not due:
        return 0
    for email in due:
        email.attempts += 1
    return _deliver(due)


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
