"""A real SMTP server on 127.0.0.1 that keeps every message it accepts, as raw bytes.

The application sends through Django's SMTP backend to it, so a test sees the mail exactly as
a mail server would: headers, MIME parts and transfer encodings included.
"""

import email
import threading
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

# What a mail server answers when it cannot take a message now (greylisting, a full queue).
TRY_AGAIN_LATER = "451 4.3.0 Try again later"


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink accepted: the envelope and the bytes of the DATA command.

    The bytes stay out of the repr: a failing assertion prints the mail, and it must not
    print a secret that leaked into it.
    """

    sender: str
    recipients: tuple[str, ...]
    raw: bytes = field(repr=False)

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=policy.default)

    @property
    def subject(self) -> str:
        # A folded, encoded subject comes back with the fold's leading space.
        return str(self.message["Subject"]).strip()

    @property
    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()

    def decoded_parts(self) -> list[str]:
        """Return the headers and every leaf part with its transfer encoding undone."""
        message = self.message
        parts = [str(name) + ": " + str(value) for name, value in message.items()]
        for part in message.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
        return parts


class _Handler:
    def __init__(self, sink: "SmtpSink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        return self.sink._deliver(envelope)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.sink._lock:
            self.sink.sessions += 1
        return responses


class _Controller(Controller):
    """aiosmtpd's controller, on whichever free port the system gives (port 0)."""

    def _trigger_server(self):
        # The server is bound by now: learn its port before the controller connects to it.
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """Start with `start()` (or `with`); read `received` and `sessions`; make it refuse with
    `refuse_next()`."""

    def __init__(self, idle_timeout: float = 300):
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        self._refusals: deque[str] = deque()
        self.refused = 0
        self.sessions = 0  # SMTP sessions greeted (EHLO), one per connection used
        self._controller = _Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=0,
            server_hostname="smtp-sink.test",
            # Seconds the server waits for a client's next command before hanging up.
            timeout=idle_timeout,
        )

    @property
    def host(self) -> str:
        return self._controller.hostname

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> "SmtpSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def refuse_next(self, count: int = 1, reply: str = TRY_AGAIN_LATER) -> None:
        """Answer the next `count` messages with `reply` (a 4xx: the sender must retry)."""
        with self._lock:
            self._refusals.extend([reply] * count)

    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    def received_by(self, address: str) -> list[ReceivedMail]:
        return [mail for mail in self.received if address in mail.recipients]

    def _deliver(self, envelope) -> str:
        with self._lock:
            if self._refusals:
                self.refused += 1
                return self._refusals.popleft()
            self._received.append(
                ReceivedMail(
                    sender=envelope.mail_from,
                    recipients=tuple(envelope.rcpt_tos),
                    raw=bytes(envelope.original_content or envelope.content),
                )
            )
        return "250 2.0.0 Message accepted for delivery"
