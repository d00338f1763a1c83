"""A fake Kashier API: real HTTP servers on 127.0.0.1 answering with Kashier's shapes.

Kashier has one host per mode, and so does the fake: one server per mode, each accepting the
keys registered with it (`accept`, `on`) and answering any other key with Kashier's 401
(shapes from ../shared/fixtures/kashier/README.md). The client under test talks to it over
HTTP; `fake_kashier_pair(settings)` starts both and points KASHIER_API_BASE_TEST/LIVE at them.
Only GET is served: anything else is answered 405 and recorded, so tests prove verification
never writes. Run one for a demo with `python -m tests.fake_kashier --mode test` (port 12112;
live: 12113) and KASHIER_API_BASE_TEST=http://127.0.0.1:12112.
"""

import argparse
import copy
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.fake_stripe import demo_port
from tests.local_server import LocalServer

ACCOUNT_PATH = "/v2/account"
MERCHANT_ID = "MID-3552-454"
DEMO_PORTS = {"test": 12112, "live": 12113}

_SECRET_KEY = re.compile(r"^[0-9A-Fa-f]{32}\$[0-9A-Fa-f]{32,}$")

REFUSED_BODY = {
    "status": "FAILURE",
    "error": {"cause": "invalid authorization"},
    "messages": {"en": "Forbidden request", "ar": "Forbidden request"},
}


def fake_secret_key() -> str:
    """Return a made-up Kashier-shaped secret key: 32 hex digits, `$`, 96 hex digits."""
    return f"{secrets.token_hex(16)}${secrets.token_hex(48)}"


def fake_payment_api_key() -> str:
    """Return a made-up Payment API key (a UUID)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: a status and a JSON body (or raw text), after an optional delay."""

    status: int
    body: dict | str
    delay: float = 0.0


def account_reply(
    *,
    merchant_id: str | None = MERCHANT_ID,
    name: str | None = "Fake Kashier merchant",
    account_id: str | None = None,
    delay: float = 0.0,
) -> Reply:
    """A 200 SUCCESS with the account; a field given as None is left out of the answer."""
    account = {
        "merchantId": merchant_id,
        "accountId": account_id or f"acc_{secrets.token_hex(6)}",
        "name": name,
        # The balances' inner shape is not documented; the client does not read it.
        "balances": [{"currency": "EGP", "available": 0, "pending": 0}],
    }
    body = {
        "status": "SUCCESS",
        "response": {name: value for name, value in account.items() if value is not None},
        "messages": {"en": "Account retrieved successfully"},
    }
    return Reply(200, body, delay=delay)


def refused_reply(delay: float = 0.0) -> Reply:
    """Kashier's 401 for a missing or unknown key."""
    return Reply(401, copy.deepcopy(REFUSED_BODY), delay=delay)


def error_reply(status: int, message: str = "Internal server error", delay: float = 0.0) -> Reply:
    """A FAILURE with `status`; `message` stands for whatever Kashier says (tests pass one
    that echoes the key, to prove it is never kept)."""
    body = {"status": "FAILURE", "error": {"cause": message}, "messages": {"en": message}}
    return Reply(status, body, delay=delay)


def key_hint(key: str) -> str:
    """Identify `key` in the recorded requests without keeping it."""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else ""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    key_hint: str


@dataclass
class Behaviour:
    """What one key gets, per path. A list of replies is played in order, the last repeating."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)

    def next_reply(self, path: str) -> Reply | None:
        queue = self.replies.get(path)
        if not queue:
            return None
        return queue.pop(0) if len(queue) > 1 else queue[0]


class FakeKashier(LocalServer):
    """One Kashier host (test or live) and its per-key behaviour. Thread-safe; use as a
    context manager.

    With `demo=True` it accepts any well-shaped secret key except those ending in `bad0`, and
    answers without a merchant id (it cannot know the one submitted).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        mode: str = "test",
        latency: float = 0.0,
        demo: bool = False,
    ):
        self.mode = mode
        self.latency = latency
        self.demo = demo
        self._behaviours: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self._serve_on(host, port)

    # Behaviour, per key ----------------------------------------------------------------
    def on(self, secret_key: str, replies: Reply | Iterable[Reply], *, path=ACCOUNT_PATH) -> None:
        """Answer requests made with `secret_key` to `path` with `replies`, in order."""
        queue = [replies] if isinstance(replies, Reply) else list(replies)
        with self._lock:
            self._behaviours.setdefault(secret_key, Behaviour()).replies[path] = queue

    def accept(
        self,
        secret_key: str,
        merchant_id: str | None = MERCHANT_ID,
        name: str | None = "Fake Kashier merchant",
        **fields,
    ) -> None:
        """Accept `secret_key` on this host, answering for `merchant_id` (None: the answer
        names none)."""
        self.on(secret_key, account_reply(merchant_id=merchant_id, name=name, **fields))

    def requests_for(self, secret_key: str) -> list[Request]:
        hint = key_hint(secret_key)
        with self._lock:
            return [request for request in self.requests if request.key_hint == hint]

    @property
    def non_get_requests(self) -> list[Request]:
        """Every request that was not a GET (all answered 405)."""
        with self._lock:
            return [request for request in self.requests if request.method != "GET"]

    def _answer(self, method: str, path: str, key: str) -> Reply:
        with self._lock:
            self.requests.append(Request(method, path, key_hint(key)))
            behaviour = self._behaviours.get(key)
            reply = behaviour.next_reply(path) if behaviour and method == "GET" else None
        if method != "GET":
            return error_reply(405, "Method not allowed")
        if reply is not None:
            return reply
        if behaviour is not None:
            # A registered key on a path it was not given: the host knows the key, not the page.
            return error_reply(404, "Not found")
        if self.demo and _SECRET_KEY.match(key) and not key.lower().endswith("bad0"):
            if path == ACCOUNT_PATH:
                return account_reply(merchant_id=None)
            return error_reply(404, "Not found")
        return refused_reply()

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the body would
            # wait for the client's delayed ACK (40 ms) on a kept-alive connection.
            disable_nagle_algorithm = True

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PUT(self):
                self._serve("PUT")

            def do_PATCH(self):
                self._serve("PATCH")

            def do_DELETE(self):
                self._serve("DELETE")

            def _serve(self, method: str):
                # Read any body, so a kept-alive connection stays in step.
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # Kashier takes the raw key: "Bearer <key>" is an unknown key, as there.
                key = self.headers.get("Authorization", "").strip()
                reply = fake._answer(method, self.path.split("?", 1)[0], key)
                delay = fake.latency + reply.delay
                if delay:
                    time.sleep(delay)
                if isinstance(reply.body, str):
                    payload, content_type = reply.body.encode(), "text/html"
                else:
                    payload, content_type = json.dumps(reply.body).encode(), "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout): as with the real API, nothing to do.
                    pass

            def log_message(self, format, *args):
                # Silent: request lines would otherwise be printed to stderr in every test.
                pass

        return Handler


@dataclass(frozen=True)
class FakeKashierHosts:
    """The test and live fake hosts, also reachable as `hosts["live"]`."""

    test: FakeKashier
    live: FakeKashier

    def __getitem__(self, mode: str) -> FakeKashier:
        return {"test": self.test, "live": self.live}[mode]

    def requests_for(self, secret_key: str) -> list[tuple[str, Request]]:
        """Return `(mode, request)` for every request made with `secret_key`, on either host."""
        return [
            (host.mode, request)
            for host in (self.test, self.live)
            for request in host.requests_for(secret_key)
        ]

    @property
    def non_get_requests(self) -> list[Request]:
        return self.test.non_get_requests + self.live.non_get_requests


@contextmanager
def fake_kashier_pair(settings, **options) -> Iterator[FakeKashierHosts]:
    """Start a fake test host and a fake live host, and point KASHIER_API_BASE_TEST and
    KASHIER_API_BASE_LIVE at them (restored on the way out). `settings` is pytest-django's
    fixture or django.conf.settings."""
    with (
        FakeKashier(mode="test", **options) as test,
        FakeKashier(mode="live", **options) as live,
    ):
        previous = settings.KASHIER_API_BASE_TEST, settings.KASHIER_API_BASE_LIVE
        settings.KASHIER_API_BASE_TEST, settings.KASHIER_API_BASE_LIVE = test.url, live.url
        try:
            yield FakeKashierHosts(test=test, live=live)
        finally:
            settings.KASHIER_API_BASE_TEST, settings.KASHIER_API_BASE_LIVE = previous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Kashier host for demos.")
    parser.add_argument("--mode", choices=("test", "live"), default="test")
    parser.add_argument("--port", type=int, help="default 12112 (test) or 12113 (live); 0: any")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each reply")
    parser.add_argument(
        "--free-port",
        action="store_true",
        help="print the mode's default port, or a free port if another program holds it, and exit",
    )
    args = parser.parse_args(argv)
    default_port = DEMO_PORTS[args.mode]
    if args.free_port:
        print(demo_port(default_port))
        return 0
    port = default_port if args.port is None else args.port
    try:
        server = FakeKashier(port=port, mode=args.mode, latency=args.latency, demo=True)
    except OSError as exc:
        print(
            f"Fake Kashier cannot listen on 127.0.0.1:{port} ({exc.strerror}): another "
            f"program (another `make demo`?) holds it. Stop it, or start on another port.",
            file=sys.stderr,
        )
        return 1
    setting = f"KASHIER_API_BASE_{args.mode.upper()}"
    print(
        f"Fake Kashier ({args.mode}) on {server.url} (set {setting}={server.url}): any secret "
        "key shaped <32 hex>$<hex> is accepted, keys ending in 'bad0' are refused; answers "
        "name no merchant id",
        flush=True,
    )
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
