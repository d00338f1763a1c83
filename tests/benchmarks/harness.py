"""What every benchmark shares: a throwaway test database, timing and the report."""

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


@dataclass
class Section:
    title: str
    body: str


@dataclass
class Timings:
    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[index]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95_ms(self) -> float:
        return self.percentile(95) * 1000


def timed(timings: Timings, action: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = action()
    timings.add(time.perf_counter() - started)
    return result


@contextmanager
def test_database():
    """Create a throwaway test database (as pytest-django would) and drop it afterwards."""
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


def machine_description() -> str:
    from django.db import connection

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        revision = "unknown"
    return (
        f"- Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}\n"
        f"- Database: {connection.vendor}; broker: "
        f"{os.environ.get('CELERY_BROKER_URL') or os.environ.get('REDIS_URL') or 'embedded'}\n"
        f"- Commit: {revision}; run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )


def write_report(sections: list[Section]) -> Path:
    text = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.benchmarks`); do not edit by hand.",
        "Set `DATABASE_URL` / `REDIS_URL` to measure on PostgreSQL and Redis, as CI runs.",
        "",
        machine_description(),
    ]
    for section in sections:
        text += [f"## {section.title}", "", section.body.strip(), ""]
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(text))
    return REPORT
