"""Ask Kashier what a secret key opens, and say it in our own words.

The call is `GET /v2/account` on the host of the key's mode (KASHIER_API_BASE_TEST or
KASHIER_API_BASE_LIVE), with `Authorization: <secret key>` (the raw key: Kashier takes no
`Bearer`). It reads the merchant's account (merchant id, name, balances) and creates, changes
and charges nothing: no order, no payment request, no refund. The endpoint is seen in
integrations, not in Kashier's official docs, so every field of the answer is optional and an
answer of another shape is an outage to retry, never a verdict on the key.

Kashier's messages are never read: every failure becomes a KeyRefused or KashierUnavailable
with our own code, raised outside the `except` block so no exception chain leads back to the
HTTP library's error or Kashier's text.
"""

import threading
from dataclasses import dataclass

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

ACCOUNT_PATH = "/v2/account"
# Credential.account_id and account_name's length.
MAX_FACT_LENGTH = 255


class KeyRefused(Exception):
    """The host answered that this key does not work there (401 or 403)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class KashierUnavailable(Exception):
    """Kashier could not answer now (rate limit, server error, timeout, no connection), or
    answered in a shape Keyhouse cannot read."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class KashierAccount:
    """What an accepting host said about the account: "" where it said nothing."""

    merchant_id: str = ""
    name: str = ""


def api_base(mode: str) -> str:
    """Return the Kashier host for `mode`, read at call time so tests and demos can point it
    at a local server."""
    base = settings.KASHIER_API_BASE_LIVE if mode == "live" else settings.KASHIER_API_BASE_TEST
    return base.rstrip("/")


_sessions = threading.local()


def _session() -> requests.Session:
    """Return this thread's session, shared by every verification the thread runs.

    A worker thread reuses its connection to Kashier (no new TCP and TLS handshake per key),
    and holds at most one connection per host.
    """
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


@sensitive_variables("secret")
def kashier_account(secret: str, *, mode: str) -> KashierAccount:
    """Return what the host of `mode` says about the account behind `secret`.

    Raise KeyRefused("invalid_secret_key") when the host does not accept the key, and
    KashierUnavailable for anything else that is not a SUCCESS answer.
    """
    failure = None
    try:
        reply = _session().get(
            api_base(mode) + ACCOUNT_PATH,
            headers={"Authorization": secret, "Accept": "application/json"},
            timeout=settings.KASHIER_TIMEOUT_SECONDS,
            # A redirect is an answer of its own (unexpected_3xx), never followed with the key.
            allow_redirects=False,
        )
    except requests.Timeout:
        failure = KashierUnavailable("timed_out")
    except requests.ConnectionError:
        failure = KashierUnavailable("connection_failed")
    except requests.RequestException:
        failure = KashierUnavailable("request_failed")
    if failure is not None:
        # Raised outside the except block: no __context__ leads back to the request's error.
        raise failure
    return _account(reply)


def _account(reply: requests.Response) -> KashierAccount:
    status = reply.status_code
    if status in (401, 403):
        raise KeyRefused("invalid_secret_key")
    if status == 429:
        raise KashierUnavailable("rate_limited")
    if status >= 500:
        raise KashierUnavailable("kashier_error")
    if status != 200:
        raise KashierUnavailable(f"unexpected_{status}")
    try:
        body = reply.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or str(body.get("status", "")).upper() != "SUCCESS":
        raise KashierUnavailable("unexpected_answer")
    account = body.get("response")
    if not isinstance(account, dict):
        account = {}
    return KashierAccount(merchant_id=_text(account, "merchantId"), name=_text(account, "name"))


def _text(data: dict, name: str) -> str:
    value = data.get(name)
    return value.strip()[:MAX_FACT_LENGTH] if isinstance(value, str) else ""
