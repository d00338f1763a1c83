"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 recording what it is sent.

The integrator's endpoint, as the delivery code meets it over HTTP: every request is kept as
it arrived (method, path, headers, the raw bytes of its body), so tests check the signature
over exactly those bytes. Answers are scripted per call: `script(Reply(500), Reply(200,
delay=3))` plays them in order, the last one repeating; without a script every call gets a
200 at once. A delayed answer is still recorded as received (the sender may have given up
waiting for it).
"""

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/hooks/keyhouse"


@dataclass(frozen=True)
class Reply:
    """One answer: a status and a body, after an optional delay (seconds)."""

    status: int = 200
    delay: float = 0.0
    body: bytes = b'{"received": true}'
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it, and the answer it gave (or tried to give)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answer: Reply
    at: float

    def header(self, name: str) -> str | None:
        """Return header `name` (any case), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self):
        return json.loads(self.body)


class WebhookReceiver:
    """The server, its script and what it received. Thread-safe; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self._script: list[Reply] = []
        self._received: list[Received] = []
        self._arrived = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def script(self, *replies: Reply) -> None:
        """Answer the next calls with `replies`, in order; the last one repeats."""
        with self._lock:
            self._script = list(replies)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Return the requests received once there are `count` of them (or after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._received) < count and time.monotonic() < deadline:
                self._arrived.wait(deadline - time.monotonic())
            return list(self._received)

    def _next_reply(self) -> Reply:
        with self._lock:
            if not self._script:
                return Reply()
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def _record(self, request: Received) -> None:
        with self._arrived:
            self._received.append(request)
            self._arrived.notify_all()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = receiver._next_reply()
                receiver._record(
                    Received(
                        method=self.command,
                        path=self.path,
                        headers=dict(self.headers.items()),
                        body=body,
                        answer=reply,
                        at=time.time(),
                    )
                )
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.send_header("Connection", "close")
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender stopped waiting

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, format, *args):  # quiet in tests
                pass

        return Handler

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
