"""Django's SMTP backend, doing less for each message a worker sends all day.

- **One connection per thread, kept between batches.** A worker sends a verification's two
  mails a few milliseconds after the previous key's: connecting, the greeting, EHLO (with
  TLS, the handshake too) and QUIT for every pair was a few percent of a verification's CPU
  (docs/benchmarks.md, "Cost of one verification"). The thread that opened a connection
  keeps it, idle, for EMAIL_KEEP_OPEN_SECONDS; the next send from that thread to the same
  server takes it up. A kept connection that the server closed meanwhile fails on its first
  command, before the message went over it, and is replaced once by a new one. A connection
  on which anything failed is never kept. EMAIL_KEEP_OPEN_SECONDS = 0 closes each at once,
  as Django does.
- **Each envelope address sanitized and quoted once.** Django parses the sender and every
  recipient with the email package's header parser for every message, and smtplib parses
  them again for its MAIL and RCPT commands; the result depends on the address alone.
- **The message's bytes written by the message itself** when it knows how: Keyhouse's
  mails (mail.compose) write their usual shape directly.
"""

import functools
import os
import smtplib
import threading
import time

from django.conf import settings
from django.core.mail.backends import smtp
from django.core.mail.message import sanitize_address

_kept = threading.local()


@functools.lru_cache(maxsize=1024)
def _sanitized(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)


@functools.lru_cache(maxsize=1024)
def _quoted(address: str) -> str:
    return smtplib.quoteaddr(address)


class _QuotingOnce:
    """smtplib's MAIL and RCPT commands, with each address quoted once: smtplib parses it
    with the email package's address parser for every command."""

    def mail(self, sender, options=()):
        if any(option.lower() == "smtputf8" for option in options):
            return super().mail(sender, options)  # smtplib's own checks for SMTPUTF8
        self.putcmd("mail", f"FROM:{_quoted(sender)}{self._options(options)}")
        return self.getreply()

    def rcpt(self, recip, options=()):
        self.putcmd("rcpt", f"TO:{_quoted(recip)}{self._options(options)}")
        return self.getreply()

    def _options(self, options) -> str:
        return " " + " ".join(options) if options and self.does_esmtp else ""


class _SMTP(_QuotingOnce, smtplib.SMTP):
    pass


class _SMTP_SSL(_QuotingOnce, smtplib.SMTP_SSL):
    pass


class EmailBackend(smtp.EmailBackend):
    _taken_up = False  # the connection was kept from before and has sent nothing yet
    _keep = True  # nothing failed on the connection

    @property
    def connection_class(self):
        return _SMTP_SSL if self.use_ssl else _SMTP

    def _server(self) -> tuple:
        """What a kept connection must have been opened to, and by this process (a forked
        child must not talk over its parent's socket)."""
        return (
            os.getpid(),
            self.host,
            self.port,
            self.username,
            self.use_tls,
            self.use_ssl,
            self.timeout,
        )

    def open(self):
        if self.connection is None:
            kept = getattr(_kept, "connection", None)
            _kept.connection = None
            if kept is not None:
                server, connection, since = kept
                if server == self._server() and time.monotonic() - since < _keep_seconds():
                    self.connection, self._taken_up, self._keep = connection, True, True
                    # As for a new connection: `send_messages` closes (keeps) it after.
                    return True
                _quit(connection)
            self._taken_up, self._keep = False, True
        return super().open()

    def close(self):
        if self.connection is None:
            return
        if not (self._keep and _keep_seconds() > 0):
            super().close()
            return
        connection, self.connection = self.connection, None
        previous = getattr(_kept, "connection", None)
        _kept.connection = (self._server(), connection, time.monotonic())
        if previous is not None:
            _quit(previous[1])

    def _send(self, email_message):
        """Django's `_send`, with the addresses sanitized once and a kept connection that
        the server closed replaced by a new one."""
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = _sanitized(email_message.from_email, encoding)
        recipients = [_sanitized(address, encoding) for address in email_message.recipients()]
        message = _wire_bytes(email_message)
        try:
            self._sendmail(from_email, recipients, message)
        except smtplib.SMTPException:
            self._keep = False
            if not self.fail_silently:
                raise
            return False
        except BaseException:
            self._keep = False
            raise
        return True

    def _sendmail(self, from_email: str, recipients: list[str], message: bytes) -> None:
        taken_up, self._taken_up = self._taken_up, False
        try:
            self.connection.sendmail(from_email, recipients, message)
        except smtplib.SMTPServerDisconnected:
            if not taken_up:
                raise
            # Closed by the server while it was kept: a server that hangs up on an idle
            # connection fails its first command, before the message went over it. Once
            # more, over a new connection (at worst a copy with the same Message-ID).
            self.connection.close()
            self.connection = None
            if not super().open():
                raise
            self.connection.sendmail(from_email, recipients, message)


def _wire_bytes(message) -> bytes:
    """The message as it goes to the server: written directly by a message that knows how
    (mail.compose's `wire_bytes`), else by the email package, as Django's backend does."""
    wire_bytes = getattr(message, "wire_bytes", None)
    if wire_bytes is not None:
        return wire_bytes()
    return message.message().as_bytes(linesep="\r\n")


def _keep_seconds() -> float:
    return settings.EMAIL_KEEP_OPEN_SECONDS


def _quit(connection: smtplib.SMTP) -> None:
    """Say goodbye on a connection no longer wanted, as Django's `close` does, quietly."""
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()


def _quit_kept() -> None:
    """Close this thread's kept connection, if any (for a test that stops its server)."""
    kept, _kept.connection = getattr(_kept, "connection", None), None
    if kept is not None:
        _quit(kept[1])
