"""Bounded waiting for what other threads do: it happens, or the test says what did not."""

import time
from collections.abc import Callable

# Generous: a loaded CI machine is slow, and only "it happened" is asserted, never how fast.
DEFAULT_TIMEOUT = 20.0
POLL_INTERVAL = 0.1


def wait_until(
    condition: Callable[[], object],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = POLL_INTERVAL,
    stable_for: int = 1,
):
    """Return the first truthy value of `condition()`, polled every `interval` seconds.

    With `stable_for=n`, the condition must hold on n polls in a row (for "nothing is left to
    do", which is briefly true between a queue being read and the task being registered).
    Fail with `what` in the message after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    streak = 0
    while True:
        value = condition()
        streak = streak + 1 if value else 0
        if streak >= stable_for:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"Gave up after {timeout:.0f} s waiting for {what}.")
        time.sleep(interval)
