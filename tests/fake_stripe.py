"""A fake Stripe API: a real HTTP server on 127.0.0.1 answering with Stripe's own shapes.

The responses are built from the examples in ../shared/fixtures/stripe/ (or the copy next to
this file), varied per key: tests register what a given secret key should get, and the real
stripe SDK talks to the server over HTTP. Run it for a demo with
`python -m tests.fake_stripe --port 12111` and STRIPE_API_BASE=http://127.0.0.1:12111;
`make demo` takes another free port when 12111 is held (`--free-port`).
"""

import argparse
import copy
import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_FIXTURE_DIRS = (
    Path(__file__).resolve().parent / "fixtures" / "stripe",
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stripe",
)


def _fixture_dir() -> Path:
    for directory in _FIXTURE_DIRS:
        if (directory / "account.json").exists():
            return directory
    raise FileNotFoundError(f"Stripe fixtures not found in {', '.join(map(str, _FIXTURE_DIRS))}")


def load_fixture(name: str) -> dict:
    return json.loads((_fixture_dir() / f"{name}.json").read_text())


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: a status and a JSON body, after an optional delay."""

    status: int
    body: dict
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


def masked(key: str) -> str:
    """Mask a key the way Stripe does in its error messages: prefix, stars, last four."""
    prefix = key[: key.index("_", 3) + 1] if key.count("_") >= 2 else ""
    return prefix + "*" * max(0, len(key) - len(prefix) - 4) + key[-4:]


def account_reply(key: str, **overrides) -> Reply:
    """A 200 with an account object for `key`; the id is stable per key unless given."""
    body = copy.deepcopy(load_fixture("account"))
    body["id"] = "acct_" + hashlib.sha256(key.encode()).hexdigest()[:16]
    body["settings"]["dashboard"]["display_name"] = "Fake Stripe account"
    body["charges_enabled"] = True
    body["payouts_enabled"] = True
    body["details_submitted"] = True
    body["livemode"] = "_live_" in key
    for name, value in overrides.items():
        if name == "display_name":
            body["settings"]["dashboard"]["display_name"] = value
        else:
            body[name] = value
    return Reply(200, body)


def balance_reply(key: str, **overrides) -> Reply:
    body = copy.deepcopy(load_fixture("balance"))
    body["livemode"] = "_live_" in key
    body.update(overrides)
    return Reply(200, body)


def error_reply(case: str, key: str = "", delay: float = 0.0) -> Reply:
    """An error exactly as Stripe sends it for `case` (a name in errors.json)."""
    spec = copy.deepcopy(load_fixture("errors")[case])
    error = spec["body"]["error"]
    if key and "message" in error:
        # Stripe echoes the masked key: keep that trait so tests prove it is never stored.
        for sample in (
            "sk_test_********************Aso0",
            "sk_live_*********************4242",
            "rk_live_*********************abcd",
        ):
            error["message"] = error["message"].replace(sample, masked(key))
    headers = (("Retry-After", "1"),) if spec["status"] == 429 else ()
    return Reply(spec["status"], spec["body"], delay=delay, headers=headers)


@dataclass
class Behaviour:
    """What one key gets, per path. A list of replies is played in order, the last repeating."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)

    def next_reply(self, path: str) -> Reply | None:
        queue = self.replies.get(path)
        if not queue:
            return None
        return queue.pop(0) if len(queue) > 1 else queue[0]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    key_hint: str


class FakeStripe:
    """The server and its per-key behaviour. Thread-safe; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0):
        self.latency = latency
        self._behaviours: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test that starts a server.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeStripe":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Behaviour, per key ----------------------------------------------------------------
    def on(self, key: str, path: str, replies: Reply | Iterable[Reply]) -> None:
        """Answer requests made with `key` to `path` with `replies`, in order."""
        queue = [replies] if isinstance(replies, Reply) else list(replies)
        with self._lock:
            self._behaviours.setdefault(key, Behaviour()).replies[path] = queue

    def account(self, key: str, **overrides) -> None:
        self.on(key, "/v1/account", account_reply(key, **overrides))

    def reject(self, key: str, case: str = "invalid_api_key") -> None:
        for path in ("/v1/account", "/v1/balance"):
            self.on(key, path, error_reply(case, key))

    def restricted_without_account_access(self, key: str, *, balance_ok: bool = True) -> None:
        self.on(key, "/v1/account", error_reply("restricted_key_missing_permission", key))
        self.on(
            key,
            "/v1/balance",
            balance_reply(key)
            if balance_ok
            else error_reply("restricted_key_missing_permission", key),
        )

    def requests_for(self, key: str) -> list[Request]:
        hint = masked(key)
        with self._lock:
            return [request for request in self.requests if request.key_hint == hint]

    def _answer(self, method: str, path: str, key: str) -> Reply:
        with self._lock:
            self.requests.append(Request(method, path, masked(key) if key else ""))
            behaviour = self._behaviours.get(key)
            reply = behaviour.next_reply(path) if behaviour else None
        if reply is not None:
            return reply
        if not key.startswith(("sk_", "rk_")) or key.endswith("bad0"):
            return error_reply("invalid_api_key", key)
        if path == "/v1/account":
            return account_reply(key)
        if path == "/v1/balance":
            return balance_reply(key)
        return Reply(
            404,
            {"error": {"message": "Unrecognized request URL.", "type": "invalid_request_error"}},
        )

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the body would
            # wait for the client's delayed ACK (40 ms) on a kept-alive connection.
            disable_nagle_algorithm = True

            def do_GET(self):
                authorization = self.headers.get("Authorization", "")
                key = authorization.removeprefix("Bearer ").strip()
                reply = fake._answer("GET", self.path.split("?", 1)[0], key)
                delay = fake.latency + reply.delay
                if delay:
                    time.sleep(delay)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    request_id = hashlib.sha256(payload).hexdigest()[:14]
                    self.send_header("Request-Id", f"req_{request_id}")
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout): as with the real API, nothing to do.
                    pass

            def log_message(self, format, *args):
                # Silent: request lines would otherwise be printed to stderr in every test.
                pass

        return Handler


DEMO_PORT = 12111


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return True if nothing listens on `port` (a bind would succeed)."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def demo_port(preferred: int = DEMO_PORT) -> int:
    """Return `preferred` if it is free, else a free port the system chooses (port 0)."""
    if port_free(preferred):
        return preferred
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Stripe API for demos.")
    parser.add_argument("--port", type=int, default=DEMO_PORT, help="0: any free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each reply")
    parser.add_argument(
        "--free-port",
        action="store_true",
        help=f"print {DEMO_PORT}, or a free port if another program holds it, and exit",
    )
    args = parser.parse_args(argv)
    if args.free_port:
        print(demo_port())
        return 0
    try:
        server = FakeStripe(port=args.port, latency=args.latency)
    except OSError as exc:
        print(
            f"Fake Stripe cannot listen on 127.0.0.1:{args.port} ({exc.strerror}): another "
            f"program (another `make demo`?) holds it. Stop it, or start on another port.",
            file=sys.stderr,
        )
        return 1
    print(
        f"Fake Stripe on {server.url}: any sk_/rk_ key is valid; keys ending in 'bad0' are "
        "rejected",
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
