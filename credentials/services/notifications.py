"""The mail every key event sends: one to the merchant, one to the helpdesk.

`key_event_notify` composes and queues both for any event (a verification's outcome, a
revocation, a key that stopped working), from the templates named after the event's kinds.
Templates receive the key's hint and never its secret.
"""

from enum import StrEnum

from django.conf import settings
from django.db.models.expressions import RawSQL
from django.urls import reverse

from core.sql import column
from credentials.models import Credential
from mail.compose import email_compose
from mail.models import OutgoingEmail
from mail.services import emails_enqueue, unsent_mail_exists
from teams.time_zones import time_zone_for_account


class KeyEvent(StrEnum):
    """What happened to a key that both sides are told about; the value starts each mail's
    dedupe key, so each is sent once however often the event is processed."""

    VERIFICATION = "verification"
    REVOKED = "revoked"
    NO_LONGER_VALID = "no-longer-valid"


# (merchant's mail, helpdesk's mail): each is both the mail's kind and its template's name.
HELPDESK_SUBMISSION = "helpdesk_submission"
HELPDESK_REMINDER = "helpdesk_reminder"
EVENT_MAILS = {
    KeyEvent.VERIFICATION: ("merchant_verification_result", HELPDESK_SUBMISSION),
    KeyEvent.REVOKED: ("merchant_key_revoked", "helpdesk_key_revoked"),
    KeyEvent.NO_LONGER_VALID: ("merchant_key_no_longer_valid", "helpdesk_key_no_longer_valid"),
}
URGENT_EVENTS = frozenset({KeyEvent.REVOKED})


def credential_topic(credential_id: int) -> str:
    """Return the outbox topic of mail about a key."""
    return f"credential:{credential_id}"


def credential_id_of_topic(topic: str) -> int | None:
    """Return the key id a topic names, or None for mail about something else."""
    prefix, _, pk = topic.partition(":")
    return int(pk) if prefix == "credential" and pk.isdigit() else None


def key_target(credential: Credential) -> str:
    """Name a key in the audit trail by its hint: never by anything that holds the secret."""
    return f"{credential.get_mode_display().lower()} key {credential.secret_hint}"


def credential_admin_url(credential: Credential) -> str:
    """Return the absolute address of the key's page in the helpdesk admin."""
    return settings.SITE_URL + reverse("admin:credentials_credential_change", args=[credential.pk])


def key_names(credential: Credential) -> dict:
    """Return the key's provider and mode as mail writes them ("Stripe", "Live"), looked up
    once for the many places a mail's three parts name them."""
    return {"provider": credential.get_provider_display(), "mode": credential.get_mode_display()}


def mail_context(credential: Credential, **extra) -> dict:
    """Return what every mail about a key needs: the key (hint only) and its names, its
    merchant and the absolute links to its page, to the submit form and to the helpdesk
    admin."""
    merchant = credential.merchant
    return {
        "credential": credential,
        **key_names(credential),
        "merchant": merchant,
        "merchant_url": settings.SITE_URL + credential.get_absolute_url(),
        "submit_url": settings.SITE_URL
        + reverse("credentials:submit", kwargs={"slug": merchant.slug}),
        "admin_url": credential_admin_url(credential),
        **extra,
    }


def merchant_recipients(credential: Credential, *, also=()) -> list[str]:
    """Return who at the merchant hears about a key: its submitter and the contact address."""
    submitter = credential.submitted_by.email if credential.submitted_by else ""
    addresses = (submitter, credential.merchant.contact_email, *also)
    return sorted({address for address in addresses if address})


def key_event_notify(
    *,
    credential: Credential,
    event: KeyEvent,
    merchant_to: list[str],
    occurrence: str = "",
    send_in_process: bool = False,
    none_waiting: bool = False,
    **context,
) -> list[OutgoingEmail]:
    """Queue the merchant's mail (when anyone is to receive it) and the helpdesk's about
    `event`, in the caller's transaction; return those stored (not already sent before).

    Mail goes out in the order it is stored: the merchant's first, except for an urgent
    event, whose alert to the helpdesk leads. `occurrence` tells apart events that can
    happen more than once to one key. `none_waiting`: the caller knows no earlier mail about
    the key is unsent (`unsent_mail_about_key`).
    """
    merchant_template, helpdesk_template = EVENT_MAILS[event]
    ident = f"{event}:{credential.pk}" + (f":{occurrence}" if occurrence else "")
    context = mail_context(credential, **context)
    common = {"context": context, "topic": credential_topic(credential.pk)}
    urgent = event in URGENT_EVENTS
    mails = []
    if merchant_to:
        mails.append(
            email_compose(
                dedupe_key=f"{ident}:merchant",
                kind=merchant_template,
                to=merchant_to,
                template=merchant_template,
                time_zone=_submitter_zone(credential, merchant_to),
                **common,
            )
        )
    helpdesk_mail = email_compose(
        dedupe_key=f"{ident}:helpdesk",
        kind=helpdesk_template,
        to=[settings.HELPDESK_EMAIL],
        template=helpdesk_template,
        # The helpdesk's mail about a compromised key is sent with high priority.
        urgent=urgent,
        **common,
    )
    # Stored first, sent first (by the sweep, and by tasks queued in this order).
    mails.insert(0 if urgent else len(mails), helpdesk_mail)
    return emails_enqueue(mails, send_in_process=send_in_process, none_waiting=none_waiting)


def _submitter_zone(credential: Credential, to: list[str]) -> str:
    """Return the time zone of mail to the key's submitter alone, who is loaded with the key
    (no query to look them up by address); "" for other recipients."""
    submitter = credential.submitted_by
    if submitter is None or list(to) != [submitter.email]:
        return ""
    return time_zone_for_account(submitter)


def unsent_mail_about_key() -> RawSQL:
    """Whether unsent mail about a key (the row this annotates) waits: see `key_event_notify`.
    The topic is `credential_topic`'s, computed in SQL."""
    return unsent_mail_exists(f"'credential:' || {column(Credential, 'id')}")
