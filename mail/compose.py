"""Composing mail: rendering a stored mail from its templates, in its recipients' time zone,
and turning a stored mail into the message handed to the mail server."""

import hashlib
import zoneinfo
from collections.abc import Callable
from email.charset import BASE64, Charset
from email.header import Header
from email.policy import Compat32
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from mail.models import OutgoingEmail

RecipientsTimeZone = Callable[[list[str]], str]
_recipients_time_zone: list[RecipientsTimeZone] = []


def time_zone_of_recipients(resolver: RecipientsTimeZone) -> RecipientsTimeZone:
    """Register `resolver(addresses)`, which names the time zone (IANA) that times in mail to
    `addresses` are written in. The app that knows people's zones registers it; until then
    mail is written in TIME_ZONE."""
    _recipients_time_zone[:] = [resolver]
    return resolver


def _time_zone_for(addresses: list[str]) -> zoneinfo.ZoneInfo:
    name = _recipients_time_zone[0](addresses) if _recipients_time_zone else settings.TIME_ZONE
    return zoneinfo.ZoneInfo(name)


def email_compose(
    *,
    dedupe_key: str,
    kind: str,
    to: list[str],
    template: str,
    context: dict,
    topic: str = "",
    urgent: bool = False,
    time_zone: str = "",
) -> OutgoingEmail:
    """Return a mail rendered from `emails/<template>`, not stored yet, with times in the
    recipients' zone: `time_zone` when the caller knows it, else `time_zone_of_recipients`'s.
    Templates never receive a secret."""
    context = {"site_url": settings.SITE_URL, **context}
    # Times in the mail are written in its recipients' zone.
    zone = zoneinfo.ZoneInfo(time_zone) if time_zone else _time_zone_for(list(to))
    with timezone.override(zone):
        subject = " ".join(render_to_string(f"emails/{template}.subject.txt", context).split())
        body_text = render_to_string(f"emails/{template}.txt", context)
        body_html = render_to_string(f"emails/{template}.html", context)
    return OutgoingEmail(
        dedupe_key=dedupe_key,
        kind=kind,
        to=list(to),
        subject=subject[:255],
        body_text=body_text,
        body_html=body_html,
        topic=topic,
        urgent=urgent,
    )


def message_id(email: OutgoingEmail) -> str:
    """Return the mail's Message-ID: the same for every attempt, so a receiving system can
    drop a copy that a crash made us send twice."""
    digest = hashlib.sha256(email.dedupe_key.encode("utf-8")).hexdigest()[:20]
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "keyhouse.invalid"
    return f"<keyhouse.{email.pk}.{digest}@{domain}>"


# A subject that is not ASCII (a key's hint has an ellipsis) goes out as base64 "encoded
# words": Python's email package, asked for the shorter of quoted-printable and base64, tries
# both at every place it might fold the line, which costs more CPU than the rest of the mail.
_SUBJECT_CHARSET = Charset("utf-8")
_SUBJECT_CHARSET.header_encoding = BASE64


class _Policy(Compat32):
    """The email package's compat32 policy, which Django's messages use, with a short cut:
    a header value of printable ASCII that fits on its line is written as it is, which is
    what folding it gives, without building a `Header` to find that out (a sixth of the CPU
    of composing a message; tests/mail/test_compose.py holds it to the package's folding)."""

    def fold_binary(self, name, value):
        if (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()
            and len(name) + 2 + len(value) <= (self.max_line_length or 78)
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_POLICY = _Policy()


class _Message(EmailMultiAlternatives):
    def message(self):
        message = self._message()
        message.policy = _POLICY
        return message

    def _message(self):
        subject = self.subject
        if subject.isascii():
            return super().message()
        self.subject = ""
        try:
            message = super().message()
        finally:
            self.subject = subject
        # One line already (composing joins its words), so no header can be injected.
        message.replace_header("Subject", Header(subject, _SUBJECT_CHARSET).encode())
        return message


def mime_message(email: OutgoingEmail) -> EmailMultiAlternatives:
    """Return the message to hand to the mail server for the stored `email`."""
    message = _Message(
        subject=email.subject,
        body=email.body_text,
        from_email=email.from_email,
        to=email.to,
        headers={"Message-ID": message_id(email)},
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    if email.urgent:
        message.extra_headers.update({"X-Priority": "1", "Importance": "high"})
    return message
