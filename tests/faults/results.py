"""What a scenario reports: the counts it measured against what they should be, and notes."""

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Check:
    """One count a scenario measured, what it should be, and whether it was."""

    what: str
    measured: str
    expected: str
    ok: bool


@dataclass
class Outcome:
    """What a scenario did and found: its checks, and notes for the report."""

    done: str = ""
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, what: str, measured, expected: str, ok: bool) -> bool:
        self.checks.append(Check(what, str(measured), expected, bool(ok)))
        return bool(ok)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def spread(values: list[int], unit: str = "keys") -> str:
    """Describe how many of `values` are each number: "10 keys: 1 each", "9 keys: 1; 1: 2"."""
    if not values:
        return f"0 {unit}"
    counts = sorted(Counter(values).items())
    if len(counts) == 1:
        return f"{len(values)} {unit}: {counts[0][0]} each"
    return f"{len(values)} {unit}: " + "; ".join(f"{n} with {value}" for value, n in counts)
