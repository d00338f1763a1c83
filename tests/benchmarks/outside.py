"""The world outside Keyhouse, for the pipeline benchmark: a fake Stripe and an SMTP sink.

They stand for Stripe's API and the mail server, which are not on the machine in a real
deployment, so they run in a process of their own: in the benchmark's process they would take
the interpreter's lock from the submitting client and answer late. They still use the
machine's 2 cores, which the report counts.

`python -m tests.benchmarks.outside LATENCY` prints one JSON line with the fake Stripe's
address and the sink's port, serves until its standard input closes, then prints one JSON
line with the number of messages the sink received.
"""

import json
import socketserver
import sys
import threading

from tests.fake_stripe import FakeStripe


class SmtpSink(socketserver.ThreadingTCPServer):
    """An SMTP server on 127.0.0.1 that accepts every message and only counts them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _SmtpSession)
        self.received = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def count(self) -> None:
        with self._lock:
            self.received += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _SmtpSession(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib: greet, accept any envelope, swallow DATA."""

    disable_nagle_algorithm = True

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 sink ESMTP")
        while line := self.rfile.readline():
            verb = line.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 sink")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                while self.rfile.readline() not in (b".\r\n", b".\n", b""):
                    pass
                self.server.count()
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Not implemented")


def main() -> int:
    latency = float(sys.argv[1])
    with FakeStripe(latency=latency) as stripe, SmtpSink() as sink:
        print(json.dumps({"stripe_url": stripe.url, "smtp_port": sink.port}), flush=True)
        sys.stdin.read()
        print(json.dumps({"received": sink.received}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
