"""Durations as operators write them in FOLLOWUP_AFTER and FOLLOWUP_CHECK_EVERY."""

import math

import pytest

from core.durations import parse_duration_seconds


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("86400", 86400.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
    ],
)
def test_plain_seconds_and_units_are_read(written, seconds):
    assert parse_duration_seconds(written) == seconds


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("24H", 86400.0), (" 24h ", 86400.0), ("24 h", 86400.0), ("\t90S\n", 90.0)],
)
def test_units_ignore_case_and_surrounding_whitespace(written, seconds):
    assert parse_duration_seconds(written) == seconds


@pytest.mark.parametrize(("given", "seconds"), [(60, 60.0), (2.5, 2.5)])
def test_numbers_are_taken_as_seconds(given, seconds):
    result = parse_duration_seconds(given)

    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "written", ["soon", "", "   ", "h", "24 hours", "1h30m", "-5", "-5s", "1e3", "24w", "1,5h"]
)
def test_unreadable_durations_are_refused_with_the_accepted_forms(written):
    with pytest.raises(ValueError, match="Cannot read the duration") as refused:
        parse_duration_seconds(written)

    message = str(refused.value)
    assert repr(written) in message
    assert "86400" in message
    assert "24h" in message


@pytest.mark.parametrize("given", ["0", "0s", "0.0h", 0, -1, -0.5])
def test_zero_and_negative_durations_are_refused(given):
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration_seconds(given)


@pytest.mark.parametrize("given", [math.inf, math.nan])
def test_infinite_and_nan_durations_are_refused(given):
    with pytest.raises(ValueError, match="finite"):
        parse_duration_seconds(given)
