"""The world outside Keyhouse for a fault-injection run: Stripe and the mail server.

Both run in threads of the run's own process, where the scenarios can steer them: the fake
Stripe of the test suite (tests/fake_stripe.py), which here also notes when each request
came, and an SMTP sink that can go down and come back on the same address, as a mail server
that restarts does.
"""

import re
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.e2e.smtp_sink import ReceivedMail
from tests.fake_stripe import FakeStripe, masked
from tests.faults.services import free_port

# The outbox's Message-ID (mail.compose.message_id) names the outbox row it was sent from.
_OUTBOX_ID = re.compile(r"<keyhouse\.(\d+)\.")


@dataclass(frozen=True)
class Delivery:
    """One message the sink accepted, when, and the outbox row it came from (None when its
    Message-ID names none)."""

    mail: ReceivedMail
    received_at: float = field(compare=False)

    @property
    def message_id(self) -> str:
        return str(self.mail.message["Message-ID"] or "").strip()

    @property
    def outbox_id(self) -> int | None:
        match = _OUTBOX_ID.match(self.message_id)
        return int(match.group(1)) if match else None


class MailServer:
    """An SMTP sink on a port chosen up front: `up()` accepts mail, `down()` closes the port
    (senders get "connection refused"); what it received is kept across restarts."""

    def __init__(self):
        self.port = free_port()
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._controller is not None

    def up(self) -> "MailServer":
        if self._controller is None:
            # A new controller each time: aiosmtpd's cannot be started again once stopped.
            self._controller = Controller(
                self, hostname="127.0.0.1", port=self.port, server_hostname="sink.faults.test"
            )
            self._controller.start()
        return self

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_DATA(self, server, session, envelope):
        mail = ReceivedMail(
            sender=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            raw=bytes(envelope.original_content or envelope.content),
        )
        with self._lock:
            self._deliveries.append(Delivery(mail, received_at=time.time()))
        return "250 2.0.0 Message accepted for delivery"

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)


class TimedFakeStripe(FakeStripe):
    """The suite's fake Stripe, noting when each request arrived (wall clock), per key hint."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrivals: list[tuple[float, str]] = []

    def _answer(self, method: str, path: str, key: str):
        with self._lock:
            self.arrivals.append((time.time(), masked(key) if key else ""))
        return super()._answer(method, path, key)

    def request_count(self, key: str) -> int:
        return len(self.requests_for(key))

    def first_request_at(self, key: str) -> float | None:
        hint = masked(key)
        with self._lock:
            return min((at for at, seen in self.arrivals if seen == hint), default=None)
