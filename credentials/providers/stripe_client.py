"""Ask Stripe what a key opens, and say it in our own words.

Stripe's error messages can echo the key (masked, but still), so nothing here lets one out:
every SDK error becomes a KeyRefused or StripeUnavailable with our own code, raised outside
the `except` block so the original is neither chained nor kept as context for error reports.
"""

import functools
import re
from dataclasses import replace
from urllib.parse import urlsplit

import requests
import stripe
import urllib3
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
        http_client=http_client or _shared_http_client(),
    )


def _timed_out(cause: BaseException | None) -> bool:
    """Whether the HTTP library's error says Stripe did not answer in time (urllib3 counts a
    refused connection among its connect timeouts, for history's sake: it is not one)."""
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        return False
    return isinstance(cause, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError)


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
        timed_out = _timed_out(error.__cause__)
        return StripeUnavailable("timed_out" if timed_out else "connection_failed")
    if isinstance(error, stripe.APIError):
        return StripeUnavailable("stripe_error")
    # Any other answer (400, 404) to a plain GET means Stripe is not behaving as documented;
    # treat it as an outage so it is retried and, in the end, shown to the helpdesk.
    return StripeUnavailable(f"unexpected_{error.http_status or 'answer'}")


class _Urllib3Client(stripe.HTTPClient):
    """The SDK's HTTP client interface over urllib3 (what requests is built on): half of
    requests' CPU per call, which the worker pays for every verification.

    One pool of kept-alive connections, shared by the worker's threads (urllib3's pools are
    thread-safe), so a thread reuses a connection to Stripe rather than shaking hands again.
    Proxies are read from the environment once, for STRIPE_API_BASE, as requests would read
    them for each request (its `no_proxy` rules included). Retries are the SDK's; a network
    failure becomes the SDK's APIConnectionError raised from urllib3's error, which
    `_translate` reads to tell a timeout from a refused or dropped connection.
    """

    name = "urllib3"

    def __init__(self, *, timeout: float, api_base: str, connections: int = 16):
        proxy = _stripe_proxy(requests.utils.get_environ_proxies(api_base))
        super().__init__(proxy=proxy)
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        options = {"maxsize": connections, "ca_certs": stripe.ca_bundle_path}
        proxy_url = (proxy or {}).get(urlsplit(api_base).scheme)
        self._pool = (
            urllib3.ProxyManager(proxy_url, **options)
            if proxy_url
            else urllib3.PoolManager(**options)
        )

    def request(self, method, url, headers, post_data=None):
        try:
            response = self._pool.request(
                method.upper(),
                url,
                headers=dict(headers or {}),
                body=post_data,
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:
            # Our own words: urllib3's message names the address, never the key, but the
            # SDK's would be kept in error reports.
            retry = not isinstance(error, urllib3.exceptions.SSLError)
            raise stripe.APIConnectionError(
                f"Could not reach Stripe ({type(error).__name__}).", should_retry=retry
            ) from error
        return response.data, response.status, response.headers

    def request_stream(self, method, url, headers, post_data=None):
        raise NotImplementedError("Keyhouse reads no streamed answers from Stripe.")

    def close(self):
        self._pool.clear()


def _stripe_proxy(proxies: dict) -> dict | None:
    """The SDK's form of requests' proxies (`all_proxy` stands for both schemes)."""
    http = proxies.get("http") or proxies.get("all")
    https = proxies.get("https") or proxies.get("all")
    return {"http": http, "https": https} if http or https else None


@functools.cache
def _http_client(timeout: float, api_base: str) -> stripe.HTTPClient:
    """Return the HTTP client for requests with this timeout, shared by every verification."""
    return _Urllib3Client(timeout=timeout, api_base=api_base)


def _shared_http_client() -> stripe.HTTPClient:
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
