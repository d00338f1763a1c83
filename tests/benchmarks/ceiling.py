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

from django.conf import settings

from tests.benchmarks.harness import Section

TASK = "tests.benchmarks.ceiling.wait_then_compute"
TASKS = 200
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
def _measure(concurrency: int, cpu_ms: int) -> float | None:
    """Queue TASKS synthetic tasks, let a fresh worker empty the queue; return tasks per s
    from the first start to the last finish, or None if they did not finish in time."""
    from config.celery_app import app

    record_to = f"keyhouse-bench-ceiling-{secrets.token_hex(4)}"
    queue = app.conf.task_default_queue
    for _ in range(TASKS):
        app.send_task(TASK, args=(record_to, LATENCY, cpu_ms / 1000), queue=queue)
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
    command += ["-P", "threads", "-c", str(concurrency), "-Q", queue]
    command += ["-n", f"bench-ceiling-{os.getpid()}@%h", "--loglevel", "WARNING"]
    command += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while _redis().llen(record_to) < TASKS and time.monotonic() < deadline:
                time.sleep(0.1)
            rows = [tuple(map(float, row.split())) for row in _redis().lrange(record_to, 0, -1)]
        finally:
            worker.terminate()
            try:
                worker.wait(WORKER_SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            _redis().delete(record_to)
    if len(rows) < TASKS:
        return None
    first = min(started for started, _ in rows)
    last = max(finished for _, finished in rows)
    return TASKS / (last - first)


def run() -> Section:
    from tests.benchmarks.pipeline import CONCURRENCY, _purge_queue, skip_reason

    title = "Celery ceiling: a wait of L and X ms of CPU per task"
    reason = skip_reason()
    if reason:
        return Section(title, f"skipped: {reason}.")
    limit = CONCURRENCY / LATENCY
    rows = []
    ratios = {}
    for cpu_ms in CPU_MS:
        _purge_queue()
        per_second = _measure(CONCURRENCY, cpu_ms)
        if per_second is None:
            rows.append(f"| {cpu_ms} | not finished in {DEADLINE_SECONDS:.0f} s | | |")
            continue
        ratios[cpu_ms] = per_second / limit
        lock_step = CONCURRENCY / (LATENCY + CONCURRENCY * cpu_ms / 1000) / limit
        rows.append(f"| {cpu_ms} | {per_second:.1f} | {per_second / limit:.2f} | {lock_step:.2f} |")
    _purge_queue()
    intro = (
        f"C = {CONCURRENCY} threads (`celery worker -P threads -c {CONCURRENCY}`, this "
        f"project's Celery settings and Redis broker), L = {LATENCY * 1000:.0f} ms: {TASKS} "
        "synthetic tasks, queued before the worker starts, each sleeping L and then computing "
        "for X ms of its thread's CPU time. C/L = "
        f'{limit:.0f} tasks per s. "All in step" is L / (L + C {TIMES} X), the ratio if the '
        "C threads wait together and then take turns at the interpreter lock."
    )
    table = [
        "| X: CPU ms per task | tasks per s | ÷ C/L | all in step |",
        "| ---: | ---: | ---: | ---: |",
        *rows,
    ]
    reading = _reading(ratios)
    return Section(title, "\n".join([intro, "", *table, "", reading]))


def _reading(ratios: dict[int, float]) -> str:
    if not ratios:
        return "Reading: no run finished."
    met = [cpu_ms for cpu_ms, ratio in sorted(ratios.items()) if ratio >= 0.8]
    most = max(met) if met else None
    parts = [f"X = {cpu_ms} ms: {ratio:.2f}" for cpu_ms, ratio in sorted(ratios.items())]
    text = "Reading: " + "; ".join(parts) + ". "
    if most is None:
        text += f"No row reaches 0.8 {TIMES} C/L, "
    else:
        text += f"0.8 {TIMES} C/L is reached with at most {most} ms of CPU per task, "
    text += (
        "one interpreter running every thread: whatever a task computes, the others wait "
        "for. Compare the worker's CPU per verification in the pipeline section."
    )
    return text
