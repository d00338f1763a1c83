"""Composing mail: rendering a stored mail from its templates, in its recipients' time zone,
and turning a stored mail into the message handed to the mail server."""

import base64
import functools
import hashlib
import random
import re
import sys
import zoneinfo
from collections.abc import Callable
from email.policy import Compat32
from email.utils import formatdate, parseaddr

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
    return f"<keyhouse.{email.pk}.{digest}@{_domain_of(settings.DEFAULT_FROM_EMAIL)}>"


@functools.lru_cache(maxsize=8)
def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "keyhouse.invalid"


# A subject that is not ASCII (a key's hint has an ellipsis) goes out as base64 "encoded
# words" (RFC 2047). The email package, asked for them, tries every place it might fold the
# line to find the shortest; this writes one word per line, each short enough that the line,
# "Subject: " included, stays within 78 characters: 42 bytes of UTF-8 make 56 characters of
# base64, 68 with the word's frame.
_WORD_BYTES = 42


def encoded_words(text: str) -> str:
    """Return `text` as UTF-8 base64 encoded words, one per line (joined by a newline and a
    space, the header's folding), never splitting a character between two words."""
    data = text.encode("utf-8")
    words, start = [], 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a character
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return "\n ".join(words)


class _Policy(Compat32):
    """The email package's compat32 policy, which Django's messages use, with a short cut:
    a header value of printable ASCII whose lines fit (continuation lines starting with a
    space, as a folded value's do, and no line of a folded value ending in one) is written
    as it is, which is what folding it gives, without building a `Header` to find that out
    (a sixth of the CPU of composing a message; tests/mail/test_compose.py holds it to the
    package's folding)."""

    def fold_binary(self, name, value):
        if isinstance(value, str) and value.isascii():
            limit = self.max_line_length or 78
            first, *more = value.split("\n")
            if (
                first.isprintable()
                and len(name) + 2 + len(first) <= limit
                and all(_fits_folded(line, limit) for line in more)
                and not (more and first.endswith(" "))
            ):
                return f"{name}: {self.linesep.join([first, *more])}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


def _fits_folded(line: str, limit: int) -> bool:
    """Whether a continuation line is written as it is: the package drops the whitespace
    that ends a line of a folded value."""
    return (
        line.startswith(" ")
        and not line.endswith(" ")
        and line.isprintable()
        and len(line) <= limit
    )


_POLICY = _Policy()
# As the email package writes a boundary, where it would pick one.
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))


class _Message(EmailMultiAlternatives):
    def message(self):
        message = self._message()
        message.policy = _POLICY
        if self.alternatives:
            # Chosen here, not by the email package, which compiles a pattern for each
            # boundary it tries to make sure that no part's text contains it.
            message.set_boundary(self._boundary())
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
        message.replace_header("Subject", encoded_words(subject))
        return message

    def _boundary(self) -> str:
        texts = [self.body, *(alternative.content for alternative in self.alternatives)]
        while True:
            token = random.randrange(sys.maxsize)  # noqa: S311  unique, not secret
            boundary = f"{'=' * 15}{token:0{_BOUNDARY_DIGITS}d}=="
            if not any(boundary in text for text in texts):
                return boundary

    def wire_bytes(self) -> bytes:
        """Return the message as it goes to the mail server (CRLF line ends).

        Every mail Keyhouse sends has one shape: a text part and an HTML alternative, in
        UTF-8, to a few plain addresses, with a one-line subject. That shape is written
        here directly, byte for byte what Django and the email package write for it
        (tests/mail/test_compose.py holds the two to each other), at a tenth of their CPU;
        anything else (a long line that needs quoted-printable, a name or a header that
        needs encoding or folding) goes through them.
        """
        direct = self._direct(formatdate(localtime=settings.EMAIL_USE_LOCALTIME))
        if direct is not None:
            return direct
        return self.message().as_bytes(linesep="\r\n")

    def _direct(self, date: str) -> bytes | None:
        html = self._html_alternative()
        subject = self._subject_header()
        if html is None or subject is None or not self.to or settings.DEFAULT_CHARSET != "utf-8":
            return None
        headers = [("From", self.from_email), ("To", ", ".join(self.to))]
        headers += [("Date", date), *self.extra_headers.items()]
        if not all(_plain_header(name, value) for name, value in headers):
            return None
        parts = [_text_part("plain", self.body), _text_part("html", html)]
        if None in parts:
            return None
        boundary = self._boundary()
        lines = [
            "Content-Type: multipart/alternative;",
            f' boundary="{boundary}"',
            "MIME-Version: 1.0",
            subject,
            *(f"{name}: {value}" for name, value in headers),
            "",
            f"--{boundary}",
        ]
        head = ("\r\n".join(lines) + "\r\n").encode("ascii")
        delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
        return b"".join([head, parts[0], delimiter, parts[1], f"\r\n--{boundary}--\r\n".encode()])

    def _html_alternative(self) -> str | None:
        """The HTML part, when the message is the usual text and HTML and nothing else."""
        if (
            not self.body  # then Django leaves the text part out
            or self.attachments
            or self.cc
            or self.bcc
            or self.reply_to
            or self.encoding
            or self.content_subtype != "plain"
            or self.alternative_subtype != "alternative"
            or len(self.alternatives) != 1
            or set(self.extra_headers) - _DIRECT_HEADERS
        ):
            return None
        content, mimetype = self.alternatives[0]
        return content if mimetype == "text/html" and isinstance(content, str) else None

    def _subject_header(self) -> str | None:
        subject = self.subject
        if not subject or " ".join(subject.split()) != subject:
            return None
        if not subject.isascii():
            return "Subject: " + encoded_words(subject).replace("\n", "\r\n")
        # Longer, it would be folded.
        return f"Subject: {subject}" if subject.isprintable() and len(subject) <= 69 else None


# The headers `mime_message` sets besides those every message has.
_DIRECT_HEADERS = frozenset({"Message-ID", "X-Priority", "Importance"})
# RFC 5322's limit on a line, beyond which Django sends a part as quoted-printable.
_LONGEST_LINE = 998


def _plain_header(name: str, value) -> bool:
    """Whether the header is written as it is: printable ASCII that fits its line."""
    return (
        isinstance(value, str)
        and value.isascii()
        and value.isprintable()
        and len(name) + 2 + len(value) <= 78
    )


def _text_part(subtype: str, text: str) -> bytes | None:
    """A UTF-8 text part as the email package writes it (headers, then the text with its
    line ends made CRLF), or None if it would be written otherwise (a line too long for
    8bit, characters that cannot be encoded)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if any(len(line) > _LONGEST_LINE for line in data.splitlines()):
        return None
    encoding = "7bit" if data.isascii() else "8bit"
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"MIME-Version: 1.0\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode("ascii") + _LINE_ENDS.sub(b"\r\n", data)


# Any line end, as the email package finds them.
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


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
