"""What every benchmark shares: a throwaway test database, timing and the report."""

import os
import platform
import secrets
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"

# `BENCH_SCALE=small` runs every benchmark at 1/100 of its size, for a quick look; the
# targets are judged at full scale only (the report says which scale it was).
SMALL = os.environ.get("BENCH_SCALE", "full") == "small"
SCALE = 0.01 if SMALL else 1.0


def scaled(count: int, *, least: int = 1) -> int:
    """Return `count` at this run's scale, never below `least`."""
    return max(least, round(count * SCALE))


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, as a benchmark measured it. `met` is None when the run
    could not judge it (skipped, or at small scale), with the reason in `measured`."""

    name: str
    measured: str
    met: bool | None


@dataclass
class Section:
    title: str
    body: str
    targets: list[Target] = field(default_factory=list)


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
    if connection.vendor != "sqlite":
        # A name of its own: `autoclobber` would otherwise drop the database of a test run
        # going on at the same time on the same server (pytest-django uses test_<name>).
        test = connection.settings_dict.setdefault("TEST", {})
        test["NAME"] = f"test_{old_name}_bench_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


@contextmanager
def section_database(index: int):
    """Give one section a database of its own, copied from the freshly migrated test
    database (PostgreSQL's CREATE DATABASE … TEMPLATE: a second or two), and drop it after:
    no section sees the rows another made (a million keys, merchants with names of its own).
    On SQLite the sections share the one database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield
        return
    template = connection.settings_dict["NAME"]
    name = f"{template}_{index}"
    quoted = connection.ops.quote_name
    connection.close()
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {quoted(name)} TEMPLATE {quoted(template)}")
    connection.settings_dict["NAME"] = name
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = template
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)")


@contextmanager
def broker_queue():
    """Publish to a queue of this run's own, and delete it with whatever is left in it.

    Submissions queue verifications on commit, and nothing consumes them outside the pipeline
    benchmark: without this they would stay in a shared Redis after the run.
    """
    from config.celery_app import app

    if "queues" in app.amqp.__dict__:
        raise RuntimeError("Celery's queues are already set up; choose the queue before.")
    name = f"keyhouse-bench-{os.getpid()}-{secrets.token_hex(3)}"
    app.conf.task_default_queue = name
    try:
        yield name
    finally:
        from kombu.exceptions import OperationalError

        try:
            with app.connection_for_write() as conn:
                # Declared first, so that the transport knows the binding and deletes it too.
                queue = app.amqp.queues[name](conn.default_channel)
                queue.declare()
                queue.delete()
        except (OperationalError, OSError) as error:
            print(f"bench: could not delete the queue {name} ({type(error).__name__})")


def python_speed_ms(runs: int = 5) -> float:
    """Return the best of `runs` timings of a fixed pure-Python workload, in ms: the same
    code on two machines, so that their benchmark results can be compared."""
    best = float("inf")
    for _ in range(runs):
        started = time.thread_time()
        total = 0
        for number in range(1_000_000):
            total += number % 7
        best = min(best, time.thread_time() - started)
    return best * 1000


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
        f"{platform.system()} {platform.release()}; one core's Python speed: "
        f"{python_speed_ms():.1f} ms for a fixed loop (lower is faster; to compare machines)\n"
        f"- Database: {connection.vendor}; broker: "
        f"{os.environ.get('CELERY_BROKER_URL') or os.environ.get('REDIS_URL') or 'embedded'}\n"
        f"- Commit: {revision}; run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )


def targets_table(sections: list[Section]) -> list[str]:
    """The issue's targets, met or missed, before the details."""
    rows = ["| target | measured | met |", "| --- | --- | :---: |"]
    for section in sections:
        for target in section.targets:
            met = {True: "met", False: "**missed**", None: "not judged"}[target.met]
            rows.append(f"| {target.name} | {target.measured} | {met} |")
    return rows


def write_report(sections: list[Section]) -> Path:
    scale = (
        "small (BENCH_SCALE=small: 1/100 of every size; targets not judged)" if SMALL else "full"
    )
    text = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.benchmarks`); do not edit by hand.",
        "Set `DATABASE_URL` / `REDIS_URL` to measure on PostgreSQL and Redis, as CI runs.",
        "",
        machine_description(),
        f"- Scale: {scale}",
        "",
        "## Targets",
        "",
        *targets_table(sections),
        "",
    ]
    for section in sections:
        text += [f"## {section.title}", "", section.body.strip(), ""]
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(text))
    return REPORT
