"""Ask Stripe what a key opens, and say it in our own words.

Stripe's error messages can echo the key (masked, but still), so nothing here lets one out:
every SDK error becomes a KeyRefused or StripeUnavailable with our own code, raised outside
the `except` block so the original is neither chained nor kept as context for error reports.
"""

import functools
import re
from dataclasses import replace

import requests
import stripe
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from credentials.providers.base import AccountFacts


class KeyRefused(Exception):
    """Stripe answered that this key does not work. Retrying will not change that."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class StripeUnavailable(Exception):
    """Stripe could not answer now (rate limit, server error, timeout, no connection)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@sensitive_variables("secret")
def stripe_client(secret: str, *, http_client=None) -> stripe.StripeClient:
    """Return a client for `secret`, on STRIPE_API_BASE, with a timeout and quick retries.

    Settings are read here, at call time, so tests and demos can point at a local server.
    The SDK retries connection errors and 5xx a few times within one attempt; longer
    back-off (429 and outages) is the Celery task's.
    """
    return stripe.StripeClient(
        secret,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        http_client=http_client or stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
    )


def _error_code(error: stripe.StripeError) -> str | None:
    """Return Stripe's error code. The SDK leaves `error.code` empty on some errors (401 and
    403 among them) even when the body names one; the parsed error object keeps it."""
    return error.code or getattr(error.error, "code", None)


def _translate(error: stripe.StripeError) -> Exception:
    if isinstance(error, stripe.AuthenticationError):
        expired = _error_code(error) == "api_key_expired"
        return KeyRefused("api_key_expired" if expired else "invalid_api_key")
    if isinstance(error, stripe.PermissionError):
        return KeyRefused("insufficient_permissions")
    if isinstance(error, stripe.RateLimitError):
        return StripeUnavailable("rate_limited")
    if isinstance(error, stripe.APIConnectionError):
        # The SDK raises it `from` the HTTP library's error: a timeout is told apart from a
        # refused or dropped connection, so the helpdesk knows which it was.
        timed_out = isinstance(error.__cause__, requests.exceptions.Timeout)
        return StripeUnavailable("timed_out" if timed_out else "connection_failed")
    if isinstance(error, stripe.APIError):
        return StripeUnavailable("stripe_error")
    # Any other answer (400, 404) to a plain GET means Stripe is not behaving as documented;
    # treat it as an outage so it is retried and, in the end, shown to the helpdesk.
    return StripeUnavailable(f"unexpected_{error.http_status or 'answer'}")


class _RequestsClient(stripe.RequestsClient):
    """The SDK's requests client, with the environment's proxy settings read once.

    Left to itself, requests reads the environment on every request (proxies, which hosts
    bypass them, ~/.netrc): a fifth of its CPU per verification. The proxies for Stripe's
    address are worked out when the client is made, as requests would for each request, and
    each thread's session is told not to read the environment again.
    """

    def __init__(self, *, timeout: float, api_base: str):
        proxies = requests.utils.get_environ_proxies(api_base)
        super().__init__(timeout=timeout, proxy=_stripe_proxy(proxies))

    def request(self, *args, **kwargs):
        if getattr(self._thread_local, "session", None) is None:
            session = requests.Session()
            session.trust_env = False
            self._thread_local.session = session
        return super().request(*args, **kwargs)


def _stripe_proxy(proxies: dict) -> dict | None:
    """The SDK's form of requests' proxies (`all_proxy` stands for both schemes)."""
    http = proxies.get("http") or proxies.get("all")
    https = proxies.get("https") or proxies.get("all")
    return {"http": http, "https": https} if http or https else None


@functools.cache
def _http_client(timeout: float, api_base: str) -> stripe.RequestsClient:
    """Return the HTTP client for requests with this timeout, shared by every verification.

    It keeps one requests session per thread, so a worker thread reuses its connection to
    Stripe (no new TCP and TLS handshake per key) and a worker holds at most one per thread.
    """
    return _RequestsClient(timeout=timeout, api_base=api_base)


def _shared_http_client() -> stripe.RequestsClient:
    return _http_client(settings.STRIPE_TIMEOUT_SECONDS, settings.STRIPE_API_BASE)


@sensitive_variables("secret", "client")
def stripe_account_facts(secret: str) -> AccountFacts:
    """Return what `GET /v1/account` says about the account behind `secret`.

    A restricted key without permission to read the account is probed with
    `GET /v1/balance`: if that works, the key is usable, with limited permissions.
    Raise KeyRefused or StripeUnavailable otherwise.
    """
    client = stripe_client(secret, http_client=_shared_http_client())
    return _account_facts(client)


def _get(client: stripe.StripeClient, path: str) -> dict:
    """GET `path` through the SDK (its retries, its errors) and return the parsed JSON body:
    only a few fields are read, so the SDK's object tree is not built."""
    return client.raw_request("get", path).data


@sensitive_variables("client")
def _account_facts(client: stripe.StripeClient, *, fall_back_to_balance=True) -> AccountFacts:
    failure = None
    try:
        data = _get(client, "/v1/account")
    except stripe.PermissionError:
        data = None
    except stripe.StripeError as error:
        failure = _translate(error)
    if failure is not None:
        # Raised outside the except block: no __context__ leads back to Stripe's message.
        raise failure
    if data is not None:
        dashboard = (data.get("settings") or {}).get("dashboard") or {}
        profile = data.get("business_profile") or {}
        return AccountFacts(
            account_id=data.get("id") or "",
            display_name=dashboard.get("display_name") or profile.get("name") or "",
            country=(data.get("country") or "")[:2],
            charges_enabled=data.get("charges_enabled"),
            payouts_enabled=data.get("payouts_enabled"),
            details_submitted=data.get("details_submitted"),
            # Stripe's account object does not always carry livemode; when it does not, the
            # mode is the key's own (a test key can only reach test mode).
            livemode=data.get("livemode"),
        )
    if not fall_back_to_balance:
        raise KeyRefused("insufficient_permissions")
    try:
        balance = _get(client, "/v1/balance")
    except stripe.StripeError as error:
        failure = _translate(error)
    if failure is not None:
        raise failure
    return AccountFacts(livemode=balance.get("livemode"), limited_permissions=True)


# The permission a 403 names ("Having the 'rak_invoice_read' permission would allow this
# request to continue"); only this token is read from Stripe's message, which can echo the key.
_NAMED_PERMISSION = re.compile(r"'(rak_[a-z0-9_]+)'")


def _named_permission(error: stripe.PermissionError) -> str | None:
    match = _NAMED_PERMISSION.search(getattr(error, "user_message", None) or str(error) or "")
    return match[1] if match else None


@sensitive_variables("secret", "client")
def restricted_key_facts(secret: str, probes: dict[str, str]) -> AccountFacts:
    """Return what a restricted key may read: each of `probes` (permission name → read-only
    GET) is asked, and the names Stripe refuses with a 403 are `missing_permissions`. The
    account's details are read too when the key may (many restricted keys may not).

    Raise KeyRefused when Stripe does not accept the key at all, or when it may read nothing
    asked of it (no probes, and neither the account nor its balance), StripeUnavailable on an
    outage.
    """
    client = stripe_client(secret, http_client=_shared_http_client())
    if not probes:
        # Nothing the integrations need: the key works if it reads the account or, failing
        # that, the balance (which also tells the mode), as a secret key is checked.
        return _account_facts(client)
    missing, failure = [], None
    for name, path in probes.items():
        try:
            _get(client, path)
        except stripe.PermissionError as error:
            # Stripe's own name when its message gives one: that is what must be switched on
            # (once, though Stripe may name it for two probes).
            named = _named_permission(error) or name
            if named not in missing:
                missing.append(named)
        except stripe.StripeError as error:
            failure = _translate(error)
        if failure is not None:
            # Raised outside the except block: no __context__ leads back to Stripe's message.
            raise failure
    try:
        account = _account_facts(client, fall_back_to_balance=False)
    except KeyRefused as refusal:
        if refusal.code != "insufficient_permissions":
            raise
        account = AccountFacts()
    # Asked for what the integrations need, the key does not have to read the account: its
    # facts are there when it may, and limited_permissions stays False either way.
    return replace(account, missing_permissions=tuple(missing))
