"""The Celery ceiling: what the pipeline's worker could reach if a verification were nothing
but a wait of L and X milliseconds of Python work.

The same worker as the pipeline's (`celery worker -P threads -c C`, prefetch multiplier 1,
late acks, the Redis broker, this project's Celery settings), running a synthetic task that
sleeps L, like the wait for Stripe, then computes for X ms of its thread's CPU time, like
the database, template and mail work around it. The tasks are queued before the worker
starts, so it empties a backlog as in the pipeline's backlog run. X = 0 measures Celery's
own overhead; the other rows show what the interpreter's lock costs once C threads each
need the CPU between their waits. The pipeline section reports the worker's real CPU per
verification, to be read against this table.
"""

import functools
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from django.conf import settings

from tests.benchmarks.harness import Section

TASK = "tests.benchmarks.ceiling.wait_then_compute"
TASKS = 200
POOLS = ("threads", "prefork")
LATENCY = 0.2
CPU_MS = (0, 5, 10, 20, 30)
DEADLINE_SECONDS = 90.0
WORKER_SHUTDOWN_SECONDS = 30.0
TIMES = "\N{MULTIPLICATION SIGN}"


# The task, registered in the worker through tests/benchmarks/worker_settings.py ------------
def _register():
    from config.celery_app import app

    @app.task(name=TASK, ignore_result=True, acks_late=True)
    def wait_then_compute(record_to: str, wait: float, cpu: float) -> None:
        started = time.time()
        time.sleep(wait)
        deadline = time.thread_time() + cpu
        while time.thread_time() < deadline:
            pass
        _redis().rpush(record_to, f"{started} {time.time()}")

    return wait_then_compute


@functools.cache
def _redis():
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"])


wait_then_compute = _register()


# The runs ---------------------------------------------------------------------------------
@dataclass
class Measured:
    per_second: float
    # The worker's CPU (every process of its pool) per task, beyond the task's own X.
    overhead_ms: float


def _queue(record_to: str, count: int, cpu_ms: int, wait: float = LATENCY) -> None:
    from config.celery_app import app

    for _ in range(count):
        app.send_task(
            TASK, args=(record_to, wait, cpu_ms / 1000), queue=app.conf.task_default_queue
        )


def _wait_for(record_to: str, count: int, deadline: float) -> bool:
    while _redis().llen(record_to) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return _redis().llen(record_to) >= count


def _measure(pool: str, concurrency: int, cpu_ms: int) -> Measured | None:
    """Start a worker, warm it up, queue TASKS synthetic tasks and let it empty the queue;
    return tasks per s from the first start to the last finish and the worker's own CPU per
    task, or None if they did not finish in time."""
    from config.celery_app import app
    from tests.benchmarks.pipeline import _process_cpu_seconds, _process_tree

    queue = app.conf.task_default_queue
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.benchmarks.worker_settings",
        "BENCH_DATABASE_NAME": settings.DATABASES["default"]["NAME"],
        "BENCH_QUEUE": queue,
        # Not used by the synthetic task; the settings ask for them.
        "BENCH_STRIPE_API_BASE": "http://127.0.0.1:9",
        "BENCH_EMAIL_PORT": "9",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker"]
    command += ["-P", pool, "-c", str(concurrency), "-Q", queue]
    command += ["-n", f"bench-ceiling-{os.getpid()}@%h", "--loglevel", "WARNING"]
    command += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    warm, record_to = (f"keyhouse-bench-ceiling-{secrets.token_hex(4)}" for _ in range(2))
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )

        def cpu() -> float:
            return sum(_process_cpu_seconds(pid) for pid in _process_tree(worker.pid))

        try:
            # Warm: started, connected, every pool process through a first task.
            _queue(warm, concurrency, 0, wait=0.05)
            if not _wait_for(warm, concurrency, time.monotonic() + DEADLINE_SECONDS):
                return None
            before = cpu()
            _queue(record_to, TASKS, cpu_ms)
            done = _wait_for(record_to, TASKS, time.monotonic() + DEADLINE_SECONDS)
            used = cpu() - before
            rows = [tuple(map(float, row.split())) for row in _redis().lrange(record_to, 0, -1)]
        finally:
            worker.terminate()
            try:
                worker.wait(WORKER_SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            _redis().delete(record_to, warm)
    if not done:
        return None
    first = min(started for started, _ in rows)
    last = max(finished for _, finished in rows)
    return Measured(TASKS / (last - first), used * 1000 / TASKS - cpu_ms)


def run() -> Section:
    from tests.benchmarks.pipeline import CONCURRENCY, _purge_queue, skip_reason

    title = "Celery ceiling: a wait of L and X ms of CPU per task, threads or processes"
    reason = skip_reason()
    if reason:
        return Section(title, f"skipped: {reason}.")
    limit = CONCURRENCY / LATENCY
    rows = []
    ratios: dict[tuple[str, int], float] = {}
    for cpu_ms in CPU_MS:
        cells = []
        for pool in POOLS:
            _purge_queue()
            measured = _measure(pool, CONCURRENCY, cpu_ms)
            if measured is None:
                cells += [f"not finished in {DEADLINE_SECONDS:.0f} s", "", ""]
                continue
            ratios[pool, cpu_ms] = measured.per_second / limit
            cells += [
                f"{measured.per_second:.1f}",
                f"{measured.per_second / limit:.2f}",
                f"{measured.overhead_ms:.1f}",
            ]
        lock_step = CONCURRENCY / (LATENCY + CONCURRENCY * cpu_ms / 1000) / limit
        rows.append(f"| {cpu_ms} | {' | '.join(cells)} | {lock_step:.2f} |")
    _purge_queue()
    intro = (
        f"C = {CONCURRENCY} (`celery worker -P threads -c {CONCURRENCY}`: threads in one "
        f"process; `-P prefork -c {CONCURRENCY}`: processes), this project's Celery settings "
        f"and Redis broker, L = {LATENCY * 1000:.0f} ms: {TASKS} synthetic tasks, queued once "
        "the worker is warm, each sleeping L and then computing for X ms of CPU. C/L = "
        f"{limit:.0f} tasks per s. Celery's CPU per task is the worker's (all its processes) "
        f'beyond X. "All in step" is L / (L + C {TIMES} X), the ratio if the C threads wait '
        "together and then take turns at the interpreter lock."
    )
    table = [
        "| X: CPU ms per task | threads: tasks per s | ÷ C/L | Celery's CPU ms per task "
        "| prefork: tasks per s | ÷ C/L | Celery's CPU ms per task | all in step (threads) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
    ]
    return Section(title, "\n".join([intro, "", *table, "", _reading(ratios)]))


def _reading(ratios: dict[tuple[str, int], float]) -> str:
    if not ratios:
        return "Reading: no run finished."
    text = []
    for pool in POOLS:
        met = [cpu_ms for (p, cpu_ms), ratio in ratios.items() if p == pool and ratio >= 0.8]
        text.append(
            f"with {pool}, 0.8 {TIMES} C/L is reached with at most {max(met)} ms of CPU per task"
            if met
            else f"with {pool}, no row reaches 0.8 {TIMES} C/L"
        )
    return (
        "Reading: "
        + "; ".join(text)
        + ". Threads share one interpreter: whatever a task computes, the others wait for; "
        "processes compute side by side, on as many cores as the machine has. Compare the "
        "worker's CPU per verification in the pipeline section."
    )
