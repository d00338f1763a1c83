"""The verification pipeline: submissions through the view, a Celery worker, Stripe, mail.

Keys are submitted through the real submit view with Django's test client, which queues the
verification on commit on the Redis broker. Real Celery workers as README deploys them (two
per core, `celery worker --pool threads --concurrency 2` each for C = 8) ask the fake Stripe,
which answers each request after the injected latency L, and send the outcome mails, right
after committing the outcome, to an SMTP sink. The fake Stripe and the sink stand for the
world outside the machine and run in a third process (tests/benchmarks/outside.py).

Each latency gets two runs: a backlog (every submission queued while the warmed-up worker
is paused, then the worker resumed) measures how many verifications per second the worker
alone can do; a sustained run, submitting at the target throughput 0.8 x C/L, the time from
submission to the helpdesk's mail under that load.
Side by side, the baseline: the same submit view, verifying with Stripe before it answers,
as a synchronous admin form would.

Needs PostgreSQL and Redis (worker threads write concurrently); without them the section says
why it was skipped. Every wait is bounded, and what did not finish in time is reported.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.urls import include, path, resolve, reverse
from django.utils import timezone
from django.utils.text import slugify

from tests.benchmarks.harness import SMALL, Section, Target, Timings, python_speed_ms, scaled

TIMES = "\N{MULTIPLICATION SIGN}"

# BENCH_C and BENCH_L (latencies in seconds, comma-separated) change them for exploring; the
# report says which were used.
CONCURRENCY = int(os.environ.get("BENCH_C", "8"))
# The workers README recommends for production: two processes per core, C / processes threads
# each. BENCH_POOL=prefork and BENCH_PROCESSES=1 measure the alternatives.
POOL = os.environ.get("BENCH_POOL", "threads")
PROCESSES = int(os.environ.get("BENCH_PROCESSES", str(2 * (os.cpu_count() or 1))))
LATENCIES = tuple(float(v) for v in os.environ.get("BENCH_L", "0.2,0.5").split(","))
SUBMISSIONS = scaled(400, least=40)
BASELINE_SUBMISSIONS = scaled(50, least=20)
THROUGHPUT_TARGET = 0.8
# Worker CPU per decided verification, as a share of the fixed loop's time (harness), the
# loop timed once every LOOP_EVERY_SECONDS in this process while the worker works: the
# machine's speed drifts with other tenants' load, by a third within minutes.
CPU_TARGET = 0.25
LOOP_EVERY_SECONDS = 1.0
# The sustained runs submit at the target throughput: the latency they measure is the one
# submitters see when the worker does what the target asks of it.
SUSTAINED_LOAD = THROUGHPUT_TARGET
WARMUP_SUBMISSIONS = 16
# The longest a run may take to settle after its last submission, as a multiple of the ideal
# time SUBMISSIONS / (C / L), with a floor for short runs.
SETTLE_FACTOR = 4
SETTLE_FLOOR_SECONDS = 30.0
POLL_SECONDS = 0.05
STALL_SECONDS = 15.0
WORKER_SHUTDOWN_SECONDS = 30.0
OUTSIDE_STOP_SECONDS = 30.0
MAIL_MARGIN_SECONDS = 0.5
BASELINE_RATIO_TARGET = 0.1
# The issue sets the submit request's target against the baseline at this latency.
BASELINE_RATIO_LATENCY = 0.5


# The baseline's view -----------------------------------------------------------------------
def _credential_pk(response) -> int:
    return resolve(urlsplit(response.url).path).kwargs["pk"]


def _baseline_urlconf() -> types.ModuleType:
    """Return a URL conf with the app's URLs plus a submit view that verifies before answering."""
    from credentials.services.verification import credential_verify
    from credentials.views import CredentialSubmitView

    class SubmitAndVerifyView(CredentialSubmitView):
        def form_valid(self, form):
            response = super().form_valid(form)
            if response.status_code == 302:
                credential_verify(credential_id=_credential_pk(response))
            return response

    urlconf = types.ModuleType("bench_pipeline_urls")
    urlconf.urlpatterns = [
        path(
            "bench/m/<slug:slug>/keys/new-and-verify/",
            SubmitAndVerifyView.as_view(),
            name="submit_and_verify",
        ),
        path("", include("config.urls")),
    ]
    return urlconf


# Runs --------------------------------------------------------------------------------------
@dataclass
class Run:
    """One batch of submissions and what became of them."""

    label: str
    latency: float
    how_sent: str
    requests: Timings = field(default_factory=Timings)
    to_decided: Timings = field(default_factory=Timings)
    to_mail: Timings = field(default_factory=Timings)
    arrival_per_second: float = 0.0
    verified_per_second: float | None = None
    unfinished: str = ""
    failures: list[str] = field(default_factory=list)
    # CPU seconds per submission: Keyhouse's (this process, which submits as the web process
    # would, and the worker process) and the outside world's (fake Stripe and sink).
    cpu_keyhouse: float = 0.0
    cpu_worker: float = 0.0
    cpu_outside: float = 0.0
    # The share of the machine's cores in use during the run, whoever used them (PostgreSQL
    # and Redis included).
    machine_busy: float = 0.0
    # The fixed loop's time, run once a second in this process during the run (median), to
    # read the worker's CPU against the machine as it was while the worker used it.
    loop_ms: float | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unfinished

    @property
    def limit_per_second(self) -> float:
        return CONCURRENCY / self.latency

    @property
    def is_backlog(self) -> bool:
        return self.label.startswith("backlog")

    @property
    def is_sustained(self) -> bool:
        return self.label.startswith("sustained")

    @property
    def throughput_ratio(self) -> float | None:
        if self.verified_per_second is None:
            return None
        return self.verified_per_second / self.limit_per_second


def _submission():
    from tests.factories import fake_key

    return {
        "publishable_key": fake_key("pk_test_"),
        "secret_key": fake_key("sk_test_"),
        "requested_integrations": ["online_payments"],
        "note": "",
    }


def _merchants(label: str, count: int):
    """Return `count` new merchants, one per submission, and a client signed in as their owner.

    One merchant per key, as in real use: submissions for one merchant are serialised by a
    lock on the merchant's row, and 200 keys for one merchant would measure that lock.
    """
    from tests.factories import MembershipFactory, MerchantFactory, UserFactory, default_role

    prefix = slugify(f"bench pipeline {label}")
    owner = UserFactory(email=f"{prefix}@example.test")
    owner_role = default_role("owner")
    merchants = []
    for index in range(count):
        merchant = MerchantFactory(name=f"Pipeline {label} {index}", slug=f"{prefix}-{index}")
        MembershipFactory(user=owner, merchant=merchant, role=owner_role)
        merchants.append(merchant)
    client = Client()
    client.force_login(owner)
    return merchants, client


def _describe(error: BaseException) -> str:
    """Name an exception for the report: its class and the first line of its message."""
    message = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _submit(run: Run, client, urls: list[str], interval: float) -> dict[int, datetime]:
    """POST one submission to each of `urls`, one every `interval` seconds (0: back to back).

    Return when each submission's request started (wall clock, as `sent_at` is), by credential.
    """
    started_at: dict[int, datetime] = {}
    first = time.perf_counter()
    for index, url in enumerate(urls):
        if interval:
            time.sleep(max(0.0, first + index * interval - time.perf_counter()))
        data = _submission()
        wall = timezone.now()
        started = time.perf_counter()
        response = client.post(url, data)
        run.requests.add(time.perf_counter() - started)
        assert response.status_code == 302, response.status_code
        started_at[_credential_pk(response)] = wall
    run.arrival_per_second = len(urls) / max(time.perf_counter() - first, 1e-9)
    return started_at


def _settle(merchants, expected: int, deadline: float) -> tuple[int, int, int]:
    """Wait until every key of `merchants` is decided and all their mail sent.

    Give up at `deadline`, or earlier when nothing moved for STALL_SECONDS. Return the
    numbers of keys decided, helpdesk mails sent and mails still unsent.
    """
    from credentials.models import DECIDED_STATES, Credential
    from credentials.services.notifications import HELPDESK_SUBMISSION
    from mail.models import OutgoingEmail

    last, moved_at = None, time.monotonic()
    while True:
        decided = Credential.objects.filter(
            merchant__in=merchants, verification_state__in=DECIDED_STATES
        ).count()
        mails = OutgoingEmail.objects.filter(topic__in=_credential_topics(merchants))
        helpdesk = mails.filter(kind=HELPDESK_SUBMISSION, state=OutgoingEmail.State.SENT).count()
        unsent = mails.filter(state=OutgoingEmail.State.PENDING).count()
        now = time.monotonic()
        if (decided, helpdesk, unsent) != last:
            last, moved_at = (decided, helpdesk, unsent), now
        done = decided >= expected and helpdesk >= decided and not unsent
        if done or now > deadline or now - moved_at > STALL_SECONDS:
            return decided, helpdesk, unsent
        time.sleep(POLL_SECONDS)


class _Usage:
    """CPU used by Keyhouse's processes, the outside world's and the whole machine, from now;
    with `timing_loop`, the fixed loop timed once a second meanwhile (its CPU left out of
    this process's)."""

    def __init__(self, worker, outside, *, timing_loop: bool = True):
        self.worker, self.outside = worker, outside
        self.loops: list[float] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._time_loop, daemon=True)
        self.worker_cpu = worker.cpu_seconds()
        self.keyhouse = time.process_time() + self.worker_cpu
        self.outside_cpu, self.machine = outside.cpu_seconds(), _machine_jiffies()
        if timing_loop:
            self._sampler.start()

    def _time_loop(self) -> None:
        while not self._stop.wait(LOOP_EVERY_SECONDS):
            self.loops.append(python_speed_ms(runs=1))

    def stop(self) -> None:
        self._stop.set()
        if self._sampler.is_alive():
            self._sampler.join()

    def record(self, run: Run, count: int) -> None:
        self.stop()
        worker_cpu = self.worker.cpu_seconds()
        own = time.process_time() - sum(self.loops) / 1000
        run.cpu_keyhouse = (own + worker_cpu - self.keyhouse) / count
        run.loop_ms = statistics.median(self.loops) if self.loops else None
        run.cpu_worker = (worker_cpu - self.worker_cpu) / count
        run.cpu_outside = (self.outside.cpu_seconds() - self.outside_cpu) / count
        busy, total = (
            after - before for after, before in zip(_machine_jiffies(), self.machine, strict=True)
        )
        run.machine_busy = busy / total if total else 0.0


def _first_claim(merchants, deadline: float) -> None:
    """Wait until the worker has claimed a key of `merchants` (it has started), or `deadline`."""
    from credentials.models import Credential

    claimed = Credential.objects.filter(merchant__in=merchants, verification_attempts__gt=0)
    while not claimed.exists() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS / 5)


def _pipeline_run(
    worker,
    outside,
    label: str,
    *,
    latency: float,
    interval: float,
    how_sent: str,
    count: int = SUBMISSIONS,
    backlog: bool = False,
) -> Run:
    """Submit `count` keys, one every `interval` seconds, and wait for them to be verified.

    A backlog run pauses the (warm) worker process while every key is queued, then lets it
    empty the queue; its throughput counts from its first claim.
    """
    from credentials.models import Credential
    from credentials.services.notifications import HELPDESK_SUBMISSION, credential_id_of_topic
    from mail.models import OutgoingEmail

    run = Run(label=label, latency=latency, how_sent=how_sent)
    merchants, client = _merchants(label, count)
    urls = [reverse("credentials:submit", kwargs={"slug": m.slug}) for m in merchants]
    ideal = count / run.limit_per_second
    allowed = max(SETTLE_FLOOR_SECONDS, SETTLE_FACTOR * ideal)
    usage = _Usage(worker, outside, timing_loop=not backlog)
    if backlog:
        worker.pause()
    try:
        started_at = _submit(run, client, urls, interval)
    except Exception as error:  # noqa: BLE001  reported in the section instead
        run.failures.append(f"submit view: {_describe(error)}")
        run.unfinished = f"a submission failed after {len(run.requests.samples)}"
        return run
    finally:
        if backlog:
            worker.resume()
    if backlog:
        _first_claim(merchants, time.monotonic() + allowed)
        usage.stop()
        usage = _Usage(worker, outside)
    decided, helpdesk, unsent = _settle(merchants, count, time.monotonic() + allowed)
    usage.record(run, count)
    run.failures += worker.new_errors()
    if decided < count or helpdesk < count or unsent:
        run.unfinished = (
            f"not finished {allowed:.0f} s after the last submission: {decided} of "
            f"{count} keys decided, {helpdesk} helpdesk mails sent, {unsent} mails unsent"
        )

    checked = Credential.objects.filter(merchant__in=merchants, checked_at__isnull=False)
    for credential_id, checked_at in checked.values_list("pk", "checked_at"):
        run.to_decided.add((checked_at - started_at[credential_id]).total_seconds())
    if decided == count:
        last_decided = max(checked.values_list("checked_at", flat=True))
        if backlog:
            first = min(checked.values_list("verification_claimed_at", flat=True))
        else:
            first = min(started_at.values())
        run.verified_per_second = count / (last_decided - first).total_seconds()
    sent = OutgoingEmail.objects.filter(
        topic__in=_credential_topics(merchants),
        kind=HELPDESK_SUBMISSION,
        state=OutgoingEmail.State.SENT,
    ).values_list("topic", "sent_at")
    for topic, sent_at in sent:
        credential_id = credential_id_of_topic(topic)
        run.to_mail.add((sent_at - started_at[credential_id]).total_seconds())
    return run


def _baseline_run(latency: float) -> Run:
    run = Run(
        label=f"baseline, L = {_ms(latency)} ms",
        latency=latency,
        how_sent=f"{BASELINE_SUBMISSIONS} POSTs back to back, one client thread",
    )
    merchants, client = _merchants(f"baseline {_ms(latency)}", BASELINE_SUBMISSIONS)
    urls = [reverse("submit_and_verify", kwargs={"slug": m.slug}) for m in merchants]
    try:
        _submit(run, client, urls, interval=0.0)
    except Exception as error:  # noqa: BLE001  reported in the section instead of ending the run
        run.failures.append(_describe(error))
        run.unfinished = f"the request failed after {len(run.requests.samples)} samples"
    return run


# Processes for the runs --------------------------------------------------------------------
def skip_reason() -> str | None:
    """Return why the pipeline cannot be measured here, or None if it can."""
    if connection.vendor != "postgresql":
        return (
            "needs PostgreSQL (worker threads write concurrently): set "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/keyhouse"
        )
    url = os.environ.get("REDIS_URL")
    if not url:
        return "needs Redis as the broker: set REDIS_URL=redis://127.0.0.1:6379/0"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as error:
        return f"needs Redis as the broker: {url} does not answer ({type(error).__name__})"
    return None


def _purge_queue() -> int:
    """Drop every message left in the run's queue (the baseline's and earlier benchmarks')."""
    from config.celery_app import app

    with app.connection_for_write() as conn:
        return conn.default_channel.queue_purge(app.conf.task_default_queue) or 0


def _process_tree(pid: int) -> list[int]:
    """Return `pid` and its descendants (a prefork pool's child processes)."""
    tree, index = [pid], 0
    while index < len(tree):
        children = Path(f"/proc/{tree[index]}/task/{tree[index]}/children")
        with suppress(OSError):
            tree += [int(child) for child in children.read_text().split()]
        index += 1
    return tree


def _process_cpu_seconds(pid: int) -> float:
    """Return the CPU time process `pid` has used so far (its utime and stime); 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_jiffies() -> tuple[int, int]:
    """Return the machine's busy and total CPU time so far, in clock ticks, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


class ProcessWorker:
    """`celery worker -P threads -c C` in a process of its own, as deployed; or, with
    `processes` > 1, that many such workers sharing the C threads between them (C / processes
    each), as an operator would scale out on a machine with more than one core.

    Each runs the benchmark's settings (tests/benchmarks/worker_settings.py) and writes its
    log to a temporary file, read for errors after each run.
    """

    def __init__(self, outside: "Outside", processes: int = 1):
        if CONCURRENCY % processes:
            raise ValueError(f"{CONCURRENCY} threads do not divide among {processes} processes")
        self.outside = outside
        self.count = processes
        self.processes: list[subprocess.Popen] = []
        self.logs: list = []
        self.stop_problem = ""
        self._log_offsets: list[int] = []

    def __enter__(self):
        from config.celery_app import app

        queue = app.conf.task_default_queue
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.benchmarks.worker_settings",
            "BENCH_DATABASE_NAME": settings.DATABASES["default"]["NAME"],
            "BENCH_QUEUE": queue,
            "BENCH_STRIPE_API_BASE": self.outside.stripe_url,
            "BENCH_EMAIL_PORT": str(self.outside.smtp_port),
            "LOG_LEVEL": "WARNING",
        }
        for index in range(self.count):
            log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log")
            command = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker"]
            command += ["-P", POOL, "-c", str(CONCURRENCY // self.count), "-Q", queue]
            command += ["-n", f"bench-{os.getpid()}-{index}@%h", "--loglevel", "WARNING"]
            command += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
            self.processes.append(
                subprocess.Popen(
                    command,
                    cwd=settings.BASE_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # A group of its own: pausing it pauses the pool's child processes too.
                    start_new_session=True,
                )
            )
            self.logs.append(log)
            self._log_offsets.append(0)
        return self

    def __exit__(self, *exc):
        # SIGTERM is Celery's warm shutdown: running tasks finish, reserved ones go back.
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(WORKER_SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(WORKER_SHUTDOWN_SECONDS)
                self.stop_problem = f"did not stop within {WORKER_SHUTDOWN_SECONDS:.0f} s: killed"
        for log in self.logs:
            log.close()

    def cpu_seconds(self) -> float:
        """CPU used so far by the workers and their pools' child processes."""
        return sum(
            _process_cpu_seconds(pid)
            for process in self.processes
            for pid in _process_tree(process.pid)
        )

    def pause(self) -> None:
        """Stop the processes where they are (SIGSTOP): warm, with their connections open."""
        for process in self.processes:
            os.killpg(process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        for process in self.processes:
            os.killpg(process.pid, signal.SIGCONT)

    def new_errors(self) -> list[str]:
        """Return the ERROR lines the workers logged since the last call."""
        errors = []
        for index, (process, log) in enumerate(zip(self.processes, self.logs, strict=True)):
            with open(log.name, "rb") as text_file:
                text_file.seek(self._log_offsets[index])
                text = text_file.read()
                self._log_offsets[index] = text_file.tell()
            lines = text.decode(errors="replace").splitlines()
            errors += [f"worker process: {line[:200]}" for line in lines if " ERROR " in line]
            if process.poll() is not None:
                last = lines[-1][:200] if lines else "no output"
                errors.append(f"worker process exited with {process.returncode}: {last}")
        return errors


class Outside:
    """The fake Stripe, answering after `latency`, and the SMTP sink, in a process of their
    own (tests/benchmarks/outside.py); this process's settings point at them meanwhile."""

    def __init__(self, latency: float):
        self.latency = latency
        self.received = 0

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.outside", str(self.latency)],
            cwd=settings.BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise RuntimeError(f"the fake Stripe and sink did not start ({self.process.wait()})")
        ready = json.loads(line)
        self.stripe_url, self.smtp_port = ready["stripe_url"], ready["smtp_port"]
        self._settings = override_settings(
            STRIPE_API_BASE=self.stripe_url,
            EMAIL_BACKEND="mail.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=self.smtp_port,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_TIMEOUT=5,
            ROOT_URLCONF=_baseline_urlconf(),
        )
        self._settings.enable()
        return self

    def __exit__(self, *exc):
        self._settings.disable()
        self.process.stdin.close()
        try:
            line = self.process.stdout.readline()
            self.received = json.loads(line)["received"] if line else 0
            self.process.wait(OUTSIDE_STOP_SECONDS)
        except (subprocess.TimeoutExpired, ValueError):
            self.process.kill()
            self.process.wait()

    def cpu_seconds(self) -> float:
        return _process_cpu_seconds(self.process.pid)


# The report --------------------------------------------------------------------------------
def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _pct(timings: Timings, p: float) -> str:
    if not timings.samples:
        return "—"
    return f"{timings.p50_ms if p == 50 else timings.percentile(p) * 1000:.0f}"


def _run_row(run: Run) -> str:
    if run.verified_per_second is None:
        throughput = "— | —"
    else:
        throughput = f"{run.verified_per_second:.1f} | {run.throughput_ratio:.2f}"
    return (
        f"| {run.label} | {run.how_sent} | {run.arrival_per_second:.1f} | "
        f"{_pct(run.requests, 50)} | {_pct(run.requests, 95)} | "
        f"{_pct(run.to_decided, 50)} | {_pct(run.to_decided, 95)} | "
        f"{_pct(run.to_mail, 50)} | {_pct(run.to_mail, 95)} | {throughput} | "
        f"{run.cpu_keyhouse * 1000:.0f} ({run.cpu_worker * 1000:.0f}) | "
        f"{run.cpu_outside * 1000:.0f} | "
        f"{run.machine_busy:.0%} |"
    )


def _targets(runs: list[Run], baselines: dict[float, Run], loop_ms: float) -> list[Target]:
    """The issue's targets for the pipeline, judged on these runs (not at small scale)."""
    judged = not SMALL
    targets = []
    for run in runs:
        if run.is_backlog:
            ratio = run.throughput_ratio
            measured = f"{ratio:.2f} {TIMES} C/L" if ratio is not None else run.unfinished
            targets.append(
                Target(
                    f"backlog of {SUBMISSIONS} empties at ≥ {THROUGHPUT_TARGET} {TIMES} C/L "
                    f"({run.label})",
                    measured,
                    (ratio is not None and ratio >= THROUGHPUT_TARGET) if judged else None,
                )
            )
            loop = run.loop_ms or loop_ms
            budget = CPU_TARGET * loop
            cpu = run.cpu_worker * 1000
            targets.append(
                Target(
                    f"worker CPU per verification ≤ {CPU_TARGET} {TIMES} loop ({run.label})",
                    f"{cpu:.1f} ms = {cpu / loop:.2f} {TIMES} the loop's {loop:.1f} ms during "
                    f"the run ({cpu / loop_ms:.2f} {TIMES} its best of five after the runs, "
                    f"{loop_ms:.1f} ms)",
                    (run.ok and cpu <= budget) if judged else None,
                )
            )
        if run.is_sustained:
            budget = run.latency + MAIL_MARGIN_SECONDS
            if run.to_mail.samples and not run.unfinished:
                p95 = run.to_mail.percentile(95)
                measured, met = f"p95 {_ms(p95)} ms", p95 <= budget
            else:
                measured, met = run.unfinished or "no mail measured", False
            targets.append(
                Target(
                    f"submit → helpdesk mail p95 ≤ L + 0.5 s = {_ms(budget)} ms ({run.label})",
                    measured,
                    met if judged else None,
                )
            )
    baseline = baselines.get(BASELINE_RATIO_LATENCY)
    for run in runs:
        if run.latency != BASELINE_RATIO_LATENCY or not baseline or not baseline.requests.samples:
            continue
        if not run.requests.samples:
            continue
        ours, theirs = run.requests.percentile(95), baseline.requests.percentile(95)
        targets.append(
            Target(
                f"submit request p95 ≤ {BASELINE_RATIO_TARGET} {TIMES} synchronous baseline p95 "
                f"({run.label})",
                f"{_ms(ours)} / {_ms(theirs)} ms = {ours / theirs:.3f}",
                (ours / theirs <= BASELINE_RATIO_TARGET) if judged else None,
            )
        )
    return targets


def _problems(runs: list[Run], baselines: dict[float, Run]) -> list[str]:
    lines = []
    for run in [*baselines.values(), *runs]:
        if run.unfinished:
            lines.append(f"- {run.label}: {run.unfinished}.")
        for failure, count in Counter(run.failures).most_common(3):
            lines.append(f"- {run.label}: {count} {TIMES} {failure}")
    return lines


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def _interpretation(runs: list[Run], baselines: dict[float, Run]) -> str:
    """Say in a few sentences what the numbers mean, from the numbers themselves."""
    if not runs or any(not run.ok for run in runs):
        return (
            "Reading: the pipeline did not run to the end (see Problems), so these numbers "
            "do not measure it; fix the failure first."
        )
    text = []
    for run in runs:
        if run.is_sustained:
            p95 = run.to_mail.percentile(95)
            verdict = "within" if p95 <= run.latency + MAIL_MARGIN_SECONDS else "beyond"
            text.append(
                f"{_sentence_case(run.label)}: submitted at {run.arrival_per_second:.1f} per s "
                f"({run.arrival_per_second / run.limit_per_second:.2f} {TIMES} C/L), "
                f"verified at {run.verified_per_second:.1f} per s; submit → helpdesk mail "
                f"p95 {_ms(p95)} ms, {verdict} L + 0.5 s."
            )
        else:
            text.append(
                f"{_sentence_case(run.label)}: {run.verified_per_second:.1f} verifications per "
                f"s of the {run.limit_per_second:.0f} that C/L allows "
                f"({run.throughput_ratio:.2f} {TIMES} C/L), the machine "
                f"{run.machine_busy:.0%} busy."
            )
    for backlog in runs:
        if (
            backlog.is_backlog
            and backlog.throughput_ratio is not None
            and (backlog.throughput_ratio < THROUGHPUT_TARGET)
        ):
            text.append(
                f"At L = {_ms(backlog.latency)} ms the backlog emptied below the target with "
                f"the machine {backlog.machine_busy:.0%} busy and {backlog.cpu_worker * 1000:.0f} "
                "ms of worker CPU per key: "
                + (
                    "the two cores were the limit (PostgreSQL, Redis and the outside world "
                    "share them with the worker)."
                    if backlog.machine_busy > 0.85
                    else "not the cores; the waits (round trips to PostgreSQL, Redis and the "
                    "mail server, and the interpreter lock when the pool is threads) were."
                )
            )
    text.append(
        "The backlog runs measure the worker alone, which is what the throughput target is "
        "about; submit → mail times in a backlog are queueing (the last submissions wait for "
        "the ones before them), which is why L + 0.5 s is judged on the sustained runs."
    )
    base = baselines.get(BASELINE_RATIO_LATENCY)
    if base and base.requests.samples:
        ratios = ", ".join(
            f"{run.requests.percentile(95) / base.requests.percentile(95):.2f} ({run.label})"
            for run in runs
            if run.latency == base.latency and not run.is_backlog
        )
        text.append(
            "The submit request never waits for Stripe; its p95 over the baseline's at "
            f"L = {_ms(base.latency)} ms is {ratios}."
        )
    return "Reading: " + " ".join(text)


def _worker_description() -> str:
    unit = "processes" if POOL == "prefork" else "threads"
    return (
        f"C = {CONCURRENCY} worker {unit} in {PROCESSES} worker process(es) (`celery worker "
        f"--pool {POOL} --concurrency {CONCURRENCY // PROCESSES}` each: README's production "
        "setting, two workers per core, unless BENCH_POOL or BENCH_PROCESSES say otherwise"
    )


def _report(
    runs: list[Run], baselines: dict[float, Run], *, sink_received: int, load: tuple[float, float]
) -> str:
    """The section's body: how it was measured, the runs, the baseline, what they mean."""
    baseline_rows = [
        f"| {run.label} | {run.how_sent} | {_pct(run.requests, 50)} | {_pct(run.requests, 95)} |"
        for _, run in sorted(baselines.items())
    ]
    problems = _problems(runs, baselines)
    return "\n".join(
        [
            f"{_worker_description()}, prefetch multiplier 1, acks late); L = the latency the fake "
            "Stripe adds to every reply; C/L = the most verifications per second C threads can "
            f"do when each waits L for Stripe. Each run: {SUBMISSIONS} submissions (one per "
            "merchant) through the real submit view (Django test client in the benchmark's "
            "process, signed in as the owner), queued on commit on Redis; the worker verifies "
            "through the stripe SDK against the fake Stripe (HTTP on 127.0.0.1) and sends the "
            "outcome mails right after committing the outcome, to an SMTP sink on 127.0.0.1. "
            "The fake Stripe and the sink stand for the world outside the machine and run in a "
            "third process. Two runs per latency: a backlog (every submission queued while the "
            "warmed-up worker is paused with SIGSTOP, then resumed: how fast the worker alone "
            "empties a queue, counted from its first claim) and a "
            f"sustained run (submissions at {SUSTAINED_LOAD} {TIMES} C/L, the target "
            "throughput: what a submitter waits at that load). Submit → decided is the key's "
            "`checked_at` and submit → helpdesk mail the helpdesk mail's `sent_at`, each minus "
            "the start of its submit request; verifications per s is the submissions over the "
            "time from the first submit (in a backlog, the first claim) to the last key "
            "decided. CPU per submission: Keyhouse's (the submitting process and the worker; "
            "in brackets the worker alone) and the outside world's (fake Stripe and sink); "
            "machine busy: the share of both cores in use during the run, by any process "
            "(PostgreSQL and Redis included). "
            f"1-minute load average before and after: {load[0]:.1f}, {load[1]:.1f}.",
            "",
            "| run | how submissions were sent | arrivals per s | submit p50 ms | "
            "submit p95 ms | submit → decided p50 ms | p95 ms | submit → helpdesk mail "
            "p50 ms | p95 ms | verifications per s | ÷ C/L | CPU ms per submission, Keyhouse "
            "(worker) | CPU ms, outside | machine busy |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: |",
            *(_run_row(run) for run in runs),
            "",
            "Baseline: the same submit view, verifying with Stripe before it answers (what a "
            "synchronous admin form does); no worker.",
            "",
            "| baseline | how submissions were sent | request p50 ms | request p95 ms |",
            "| --- | --- | ---: | ---: |",
            *baseline_rows,
            "",
            f"The SMTP sink received {sink_received} messages (two per submission, warm-up "
            "included).",
            *(["", "Problems:", "", *problems] if problems else []),
            "",
            _interpretation(runs, baselines),
        ]
    )


def _planned_runs(latency: float):
    """Yield (label, interval, how submissions were sent, backlog) for the runs at `latency`."""
    limit = CONCURRENCY / latency
    yield (
        f"backlog, L = {_ms(latency)} ms",
        0.0,
        f"{SUBMISSIONS} POSTs queued while the worker is paused",
        True,
    )
    interval = 1 / (SUSTAINED_LOAD * limit)
    yield (
        f"sustained, L = {_ms(latency)} ms",
        interval,
        f"one POST every {interval * 1000:.0f} ms ({SUSTAINED_LOAD} {TIMES} C/L), "
        "one client thread",
        False,
    )


def _measure(latency: float) -> tuple[Run, list[Run], int]:
    """Start the outside world and a worker for `latency`, warm up, make the planned runs.

    Return the baseline, the runs (the warm-up first if it failed) and the messages the sink
    received. Stop at the first run that fails.
    """
    runs = []
    warmup = Run(f"warm-up, L = {_ms(latency)} ms", latency, f"{WARMUP_SUBMISSIONS} POSTs")
    with Outside(latency) as outside:
        baseline = _baseline_run(latency)
        _purge_queue()
        with ProcessWorker(outside, PROCESSES) as worker:
            warmup = _pipeline_run(
                worker,
                outside,
                warmup.label,
                latency=latency,
                interval=0.05,
                how_sent=warmup.how_sent,
                count=WARMUP_SUBMISSIONS,
            )
            for label, interval, how_sent, backlog in _planned_runs(latency) if warmup.ok else ():
                runs.append(
                    _pipeline_run(
                        worker,
                        outside,
                        label,
                        latency=latency,
                        interval=interval,
                        how_sent=how_sent,
                        backlog=backlog,
                    )
                )
                if runs[-1].failures:
                    break  # The same failure 200 times more would tell nothing new.
        if worker.stop_problem:
            warmup.failures.append(f"worker process: {worker.stop_problem}")
        _purge_queue()
    return baseline, runs if warmup.ok else [warmup, *runs], outside.received


def run() -> Section:
    title = "Verification pipeline"
    reason = skip_reason()
    if reason:
        return Section(title, f"skipped: {reason}.")

    load_before = os.getloadavg()[0]
    baselines: dict[float, Run] = {}
    runs: list[Run] = []
    received = 0
    for latency in LATENCIES:
        baselines[latency], latency_runs, sink_received = _measure(latency)
        runs += latency_runs
        received += sink_received
    load = (load_before, os.getloadavg()[0])
    loop_ms = python_speed_ms()
    body = _report(runs, baselines, sink_received=received, load=load)
    body += f"\n\nThe fixed loop (harness) took {loop_ms:.1f} ms on this machine during this run."
    return Section(title, body, _targets(runs, baselines, loop_ms))


def _credential_topics(merchants) -> list[str]:
    """Return the outbox topics of the merchants' keys (mail names its key, not a merchant)."""
    from credentials.models import Credential
    from credentials.services.notifications import credential_topic

    keys = Credential.objects.filter(merchant__in=merchants).values_list("pk", flat=True)
    return [credential_topic(pk) for pk in keys]
