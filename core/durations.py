"""Durations written by operators: `86400`, `90s`, `15m`, `24h`, `2d`."""

import math
import re

_DURATION = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[smhd]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_seconds(value: str | int | float) -> float:
    """Return the number of seconds that `value` stands for.

    Raise ValueError with an example of the accepted forms when it cannot be read, so that a
    mistyped setting stops the process at start-up with a message that says how to fix it.
    """
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"Cannot read the duration {value!r}: write seconds (86400) or a number with "
                "a unit s, m, h or d (90s, 15m, 24h, 2d)."
            )
        seconds = float(match["amount"]) * _UNIT_SECONDS[match["unit"].lower()]
    # `not 0 < seconds < inf` also refuses NaN, which compares false with everything.
    if not 0 < seconds < math.inf:
        raise ValueError(f"The duration {value!r} must be a finite number greater than zero.")
    return seconds
