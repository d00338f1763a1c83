"""Every way Stripe can fail a verification, each on a key of its own, through the real
worker and the stripe SDK: how each is classified (state and code), and whether it is retried.

Refusals (401, 403) are final: one attempt. Outages (429, 500, a timeout, a refused
connection) are retried with back-off up to VERIFY_MAX_ATTEMPTS, then the key is marked
unreachable; an outage that ends is verified on the next attempt. Stripe is asked once per
attempt (`STRIPE_MAX_NETWORK_RETRIES=0`), so its requests count the attempts.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from tests.fake_stripe import FakeStripe, account_reply, error_reply
from tests.faults.browser import key_pair
from tests.faults.results import Outcome
from tests.faults.services import free_port
from tests.faults.stage import Run, wait_for

MAX_ATTEMPTS = 3
STRIPE_TIMEOUT = 2.0


def _nothing(stripe: FakeStripe, key: str) -> None:
    """Leave the key to the fake Stripe's default: a valid account."""


def _on_account(*replies) -> Callable[[FakeStripe, str], None]:
    def arrange(stripe: FakeStripe, key: str) -> None:
        stripe.on(key, "/v1/account", [reply(key) for reply in replies])

    return arrange


def _refused(case: str) -> Callable[[FakeStripe, str], None]:
    def arrange(stripe: FakeStripe, key: str) -> None:
        stripe.reject(key, case)

    return arrange


def _forbidden(*, balance_ok: bool) -> Callable[[FakeStripe, str], None]:
    def arrange(stripe: FakeStripe, key: str) -> None:
        stripe.restricted_without_account_access(key, balance_ok=balance_ok)

    return arrange


def _granted(*permissions: str) -> Callable[[FakeStripe, str], None]:
    def arrange(stripe: FakeStripe, key: str) -> None:
        stripe.restricted(key, granted=permissions)

    return arrange


def _rate_limited(key: str):
    return error_reply("rate_limited", key)


def _server_error(key: str):
    return error_reply("api_error", key)


def _too_slow(key: str):
    return dataclasses.replace(account_reply(key), delay=STRIPE_TIMEOUT + 1.5)


@dataclass(frozen=True)
class Fault:
    """A fault, and how its key must end: state, code, attempts and Stripe requests."""

    label: str
    arrange: Callable[[FakeStripe, str], None]
    state: str
    code: str
    attempts: int
    requests: int
    kind: str = "sk"
    # The REASONS entry the merchant must read, when it matters which.
    reason: str = ""

    @property
    def expected(self) -> str:
        retried = "retried" if self.attempts > 1 else "not retried"
        return (
            f"{self.state}/{self.code}, {self.attempts} attempt(s) ({retried}), "
            f"{self.requests} request(s)" + (f", reason {self.reason}" if self.reason else "")
        )


FAULTS = (
    Fault("200 (control)", _nothing, "verified", "verified", 1, 1),
    Fault("401 invalid key", _refused("invalid_api_key"), "rejected", "invalid_api_key", 1, 1),
    Fault("401 expired key", _refused("expired_api_key"), "rejected", "api_key_expired", 1, 1),
    # A restricted key is probed once per read permission online payments needs (three),
    # then asked for the account: refused everywhere, it is verified with every gap named.
    Fault(
        "403 restricted key, no permission",
        _forbidden(balance_ok=False),
        "verified",
        "missing_permissions",
        1,
        4,
        kind="rk",
    ),
    Fault(
        "restricted key, every permission",
        _granted("rak_charge_read", "rak_payment_intent_read", "rak_customer_read"),
        "verified",
        "verified_restricted",
        1,
        4,
        kind="rk",
    ),
    Fault(
        "403 secret key",
        _forbidden(balance_ok=False),
        "rejected",
        "insufficient_permissions",
        1,
        2,
        reason="secret_key_forbidden",
    ),
    Fault("429 rate limited", _on_account(_rate_limited), "unreachable", "rate_limited", 3, 3),
    Fault(
        "429, then 200",
        _on_account(_rate_limited, account_reply),
        "verified",
        "verified",
        2,
        2,
    ),
    Fault("500 server error", _on_account(_server_error), "unreachable", "stripe_error", 3, 3),
    Fault(
        f"timeout (answer after {STRIPE_TIMEOUT + 1.5:.1f} s)",
        _on_account(_too_slow),
        "unreachable",
        "timed_out",
        3,
        3,
    ),
)
# Nothing listens at Stripe's address: a worker of its own is pointed at a closed port.
CONNECTION_REFUSED = Fault("connection refused", _nothing, "unreachable", "connection_failed", 3, 0)


def _measured(fault: Fault, credential, requests: int) -> str:
    from credentials.providers.stripe import REASONS as STRIPE_REASONS
    from credentials.services.checking import REASONS as SHARED_REASONS

    REASONS = {**SHARED_REASONS, **STRIPE_REASONS}

    reason = ""
    if fault.reason:
        said = credential.verification_reason
        reason = next((name for name, text in REASONS.items() if text == said), "another")
    return (
        f"{credential.verification_state}/{credential.verification_code}, "
        f"{credential.verification_attempts} attempt(s), {requests} request(s)"
        + (f", reason {reason}" if reason else "")
    )


def _as_expected(fault: Fault, credential, requests: int) -> bool:
    from credentials.providers.stripe import REASONS as STRIPE_REASONS
    from credentials.services.checking import REASONS as SHARED_REASONS

    REASONS = {**SHARED_REASONS, **STRIPE_REASONS}

    return (
        credential is not None
        and credential.verification_state == fault.state
        and credential.verification_code == fault.code
        and credential.verification_attempts == fault.attempts
        and requests == fault.requests
        and (not fault.reason or credential.verification_reason == REASONS[fault.reason])
    )


def every_stripe_fault(run: Run) -> Outcome:
    """Every Stripe fault is classified as it should be and retried only when retrying can
    help: refusals are final after one attempt, outages are retried with back-off and end
    "unreachable", an outage that ends is verified; the helpdesk is told once per key."""
    outcome = Outcome(
        done=(
            f"one key per fault, submitted through the web; the fake Stripe answers each as "
            f"Stripe does (`STRIPE_TIMEOUT_SECONDS={STRIPE_TIMEOUT:g}`, "
            f"`VERIFY_MAX_ATTEMPTS={MAX_ATTEMPTS}`); for a refused connection, a worker "
            "pointed at a closed port"
        )
    )
    with run.stage(
        "stripe_faults",
        outcome,
        STRIPE_TIMEOUT_SECONDS=f"{STRIPE_TIMEOUT:g}",
        VERIFY_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
    ) as stage:
        owner, merchants = stage.merchants(len(FAULTS) + 1)
        web = stage.start_web()
        worker = stage.start_worker(concurrency=4)
        stage.start_beat()
        browser = web.browser(owner)
        keys = {}
        for fault, merchant in zip(FAULTS, merchants, strict=False):
            publishable, secret = key_pair(kind=fault.kind)
            fault.arrange(stage.stripe, secret)
            browser.submit_keys(merchant, publishable_key=publishable, secret_key=secret)
            keys[fault] = secret
        wait_for(lambda: stage.decided() == len(FAULTS), timeout=90)

        # A refused connection: the same deployment, with Stripe's address closed.
        worker.stop()
        stage.start_worker(concurrency=1, STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}")
        publishable, secret = key_pair()
        browser.submit_keys(merchants[-1], publishable_key=publishable, secret_key=secret)
        keys[CONNECTION_REFUSED] = secret
        wait_for(lambda: stage.decided() == len(keys), timeout=60)
        wait_for(lambda: stage.mail_settled(len(keys)), timeout=30)
        stage.stop_processes()

        stored = stage.by_secret(list(keys.values()))
        for fault, secret in keys.items():
            credential = stored[secret]
            requests = stage.stripe.request_count(secret)
            outcome.check(
                fault.label,
                _measured(fault, credential, requests) if credential else "not stored",
                fault.expected,
                _as_expected(fault, credential, requests),
            )
        stage.check_one_mail_each(len(keys))
    return outcome
