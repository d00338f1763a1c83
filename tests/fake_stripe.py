"""A fake Stripe API: a real HTTP server on 127.0.0.1 answering with Stripe's own shapes.

The responses are built from the examples in ../shared/fixtures/stripe/ (or the copy next to
this file), varied per key: tests register what a given secret key should get, and the real
stripe SDK talks to the server over HTTP. Run it for a demo with
`python -m tests.fake_stripe --port 12111` and STRIPE_API_BASE=http://127.0.0.1:12111;
`make demo` takes another free port when 12111 is held (`--free-port`).

Any sk_/rk_ key it has not been told about is valid and may read everything; keys ending in
`bad0` are refused. Requests other than GET are refused (405): verification only ever reads.
"""

import argparse
import copy
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.local_server import LocalServer

_FIXTURE_DIRS = (
    Path(__file__).resolve().parent / "fixtures" / "stripe",
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stripe",
)


# For demos: a restricted key ending in "gap0" may not read customers, invoices or the account,
# so the portal shows a key verified with missing permissions without registering anything.
GAPS_SUFFIX = "gap0"
GAPS = {
    "/v1/customers": "rak_customer_read",
    "/v1/invoices": "rak_invoice_read",
    "/v1/account": "rak_accounts_kyc_basic_read",
}


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


def account_id(key: str) -> str:
    """Return the id of the account behind `key`: made up, stable per key."""
    return "acct_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def account_reply(key: str, **overrides) -> Reply:
    """A 200 with an account object for `key`; the id is stable per key unless given."""
    body = copy.deepcopy(load_fixture("account"))
    body["id"] = account_id(key)
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


def permission_error_reply(key: str, permission: str) -> Reply:
    """A 403 as Stripe sends it to a restricted key without `permission`: the message names
    the permission, the account and the key (masked)."""
    reply = error_reply("restricted_key_missing_permission", key)
    error = reply.body["error"]
    message = re.sub(r"'acct_\w+'", f"'{account_id(key)}'", error["message"])
    error["message"] = re.sub(r"'rak_\w+'", f"'{permission}'", message)
    return reply


# Stripe's list endpoints the fake serves (those the permission probes read), each answering
# an empty page.
LIST_PATHS = (
    "/v1/charges",
    "/v1/payment_intents",
    "/v1/customers",
    "/v1/terminal/readers",
    "/v1/terminal/locations",
    "/v1/subscriptions",
    "/v1/products",
    "/v1/prices",
    "/v1/invoices",
    "/v1/payouts",
    "/v1/balance_transactions",
    "/v1/reporting/report_runs",
)

# The permission Stripe names when a restricted key may not read the account.
ACCOUNT_PERMISSION = "rak_accounts_kyc_basic_read"


def list_reply(path: str) -> Reply:
    """A 200 with an empty page of Stripe's list object for `path`."""
    return Reply(200, {"object": "list", "data": [], "has_more": False, "url": path})


def method_not_allowed_reply(method: str, path: str) -> Reply:
    return Reply(
        405,
        {
            "error": {
                "message": f"Unrecognized request method ({method}: {path}).",
                "type": "invalid_request_error",
            }
        },
    )


def _path_only(target: str) -> str:
    """Return the path of a request target or registered path, without its query string."""
    return target.split("?", 1)[0]


@dataclass
class Behaviour:
    """What one key gets, per path. A list of replies is played in order, the last repeating.

    `otherwise` answers every path `replies` does not list (a refused key); `forbidden` maps
    the paths a restricted key may not read to the permission Stripe names in its 403.
    """

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    otherwise: Reply | None = None
    forbidden: dict[str, str] = field(default_factory=dict)

    def next_reply(self, path: str) -> Reply | None:
        queue = self.replies.get(path)
        if not queue:
            return None
        return queue.pop(0) if len(queue) > 1 else queue[0]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string, which is kept apart
    key_hint: str
    query: str = ""


class FakeStripe(LocalServer):
    """The server and its per-key behaviour. Thread-safe; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0):
        self.latency = latency
        self._behaviours: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self._serve_on(host, port)

    # Behaviour, per key ----------------------------------------------------------------
    def on(self, key: str, path: str, replies: Reply | Iterable[Reply]) -> None:
        """Answer requests made with `key` to `path` with `replies`, in order. A query string
        in `path` is ignored, as it is in the requests matched against it."""
        queue = [replies] if isinstance(replies, Reply) else list(replies)
        with self._lock:
            self._behaviours.setdefault(key, Behaviour()).replies[_path_only(path)] = queue

    def account(self, key: str, **overrides) -> None:
        self.on(key, "/v1/account", account_reply(key, **overrides))

    def reject(self, key: str, case: str = "invalid_api_key") -> None:
        """Refuse `key` on every path, as Stripe refuses a key it does not accept."""
        with self._lock:
            self._behaviours[key] = Behaviour(otherwise=error_reply(case, key))

    def restricted(
        self,
        key: str,
        *,
        granted: Iterable[str],
        account_access: bool = False,
        **account_overrides,
    ) -> None:
        """Make `key` a restricted key with the read permissions named in `granted` (Stripe's
        names, from `stripe_permissions.PERMISSIONS`): it may read the probe of each, and the
        account only with `account_access` (with `account_overrides` in it); any other probe
        or the account answers Stripe's 403 naming the permission it needs. It replaces what
        the key was given before; `on` can then change one path (an outage on one probe).
        """
        # Imported here, not at the top: the manifest is Django code (it names the
        # integrations), and the demo runs this server without Django.
        from credentials.providers.stripe_permissions import PERMISSIONS

        granted = set(granted)
        if unknown := granted - PERMISSIONS.keys():
            raise ValueError(f"Not in the permission manifest: {', '.join(sorted(unknown))}")
        if account_overrides and not account_access:
            raise ValueError("Account overrides need account_access=True.")
        behaviour = Behaviour(
            forbidden={
                _path_only(permission.probe): name
                for name, permission in PERMISSIONS.items()
                if name not in granted
            }
        )
        if account_access:
            behaviour.replies["/v1/account"] = [account_reply(key, **account_overrides)]
        else:
            behaviour.forbidden["/v1/account"] = ACCOUNT_PERMISSION
        with self._lock:
            self._behaviours[key] = behaviour

    def restricted_without_account_access(self, key: str, *, balance_ok: bool = True) -> None:
        """Make `key` a restricted key that may read the balance (if `balance_ok`) and
        nothing else: not the account, not any other probe."""
        self.restricted(key, granted=("rak_balance_read",) if balance_ok else ())

    def requests_for(self, key: str) -> list[Request]:
        hint = masked(key)
        with self._lock:
            return [request for request in self.requests if request.key_hint == hint]

    def _answer(self, method: str, path: str, key: str) -> Reply:
        """Record the request and return its reply. `path` may carry a query string: it is
        kept in the record but ignored in finding the reply."""
        path, _, query = path.partition("?")
        with self._lock:
            self.requests.append(Request(method, path, masked(key) if key else "", query))
            if method != "GET":
                return method_not_allowed_reply(method, path)
            behaviour = self._behaviours.get(key) or Behaviour()
            reply = behaviour.next_reply(path)
        if reply is not None:
            return reply
        if behaviour.otherwise is not None:
            return behaviour.otherwise
        if not key.startswith(("sk_", "rk_")) or key.endswith("bad0"):
            return error_reply("invalid_api_key", key)
        if permission := behaviour.forbidden.get(path):
            return permission_error_reply(key, permission)
        if key.startswith("rk_") and key.endswith(GAPS_SUFFIX) and path in GAPS:
            return permission_error_reply(key, GAPS[path])
        if path == "/v1/account":
            return account_reply(key)
        if path == "/v1/balance":
            return balance_reply(key)
        if path in LIST_PATHS:
            return list_reply(path)
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
                self._reply()

            # Verification only reads: anything else is a bug worth a loud answer.
            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def _reply(self):
                # Read any body, so the kept-alive connection is ready for the next request.
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                authorization = self.headers.get("Authorization", "")
                key = authorization.removeprefix("Bearer ").strip()
                reply = fake._answer(self.command, self.path, key)
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
        f"rejected; restricted keys ending in '{GAPS_SUFFIX}' lack customers, invoices and "
        "account read permissions",
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
