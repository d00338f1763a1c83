"""Keyhouse's own processes in a fault-injection run, each a real subprocess as deployed:
`celery worker` (prefork), `celery beat`, the web (`gunicorn config.wsgi`), and one-off
commands expected to refuse to start.

Each runs in a session of its own, so that stopping or killing it reaches its children too
(the worker's pool processes, gunicorn's workers), and writes its output to a log file of
the run: read for a summary of errors after a scenario, never for its counts.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "tests.faults.settings"
STOP_SECONDS = 20.0
# The timestamp that starts a log line, left out of the report.
_LOG_TIME = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T][\d:,.]+\]?:? ?")
START_SECONDS = 60.0
# What a process keeps of the environment of the command that started the run. Nothing else
# is inherited: a DATABASE_URL or REDIS_URL in a developer's shell or in CI would otherwise
# point a process at the shared services.
KEPT_FROM_ENVIRONMENT = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "USER",
    "TERM",
    "VIRTUAL_ENV",
)


def clean_environment(settings: dict[str, str]) -> dict[str, str]:
    """Return an environment of `settings` and the few inherited variables a process needs."""
    kept = {name: os.environ[name] for name in KEPT_FROM_ENVIRONMENT if name in os.environ}
    return {
        **kept,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        # No .env: the run's environment is the whole configuration.
        "KEYHOUSE_ENV_FILE": os.devnull,
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


@dataclass
class Process:
    """One started process: its name, its Popen and its log; stopped through its group."""

    name: str
    popen: subprocess.Popen
    log: Path
    stopped_by_run: bool = field(default=False)
    # Its exit and its errors are what a scenario tests (a refusal to start), not a problem.
    exit_expected: bool = field(default=False)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Ask the process to stop (SIGTERM: Celery's warm shutdown, gunicorn's graceful
        one); kill what is left after `timeout` seconds."""
        self.stopped_by_run = True
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Children that outlived their parent (a pool process mid-task) go too.
        self._signal_group(signal.SIGKILL)
        self.popen.wait()

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as when a machine is lost."""
        self.stopped_by_run = True
        self._signal_group(signal.SIGKILL)
        self.popen.wait()

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def error_lines(self) -> list[str]:
        """Return the lines the process logged at ERROR or CRITICAL, and traceback ends."""
        lines = self.output().splitlines()
        return [
            _LOG_TIME.sub("", line.strip())
            for line in lines
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]


def spawn(name: str, command: list[str], *, environment: dict[str, str], logs: Path) -> Process:
    """Start `command` in a session of its own, its output in `logs`/`name`.log."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as output:
        popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name=name, popen=popen, log=log)


def celery_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "config.celery_app", *arguments]


def worker_command(name: str, *, concurrency: int) -> list[str]:
    """`celery worker` as deployed (prefork), named so that two workers do not clash."""
    return celery_command(
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--hostname={name}@%h",
        "--loglevel=INFO",
        # Start-up chatter between workers: seconds per start, nothing the scenarios need.
        "--without-mingle",
        "--without-gossip",
    )


def beat_command(schedule: Path) -> list[str]:
    return celery_command("beat", f"--schedule={schedule}", "--loglevel=INFO")


def web_command(port: int, *, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        "--timeout=60",
        "--graceful-timeout=5",
    ]


def runserver_command(port: int) -> list[str]:
    return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]


def healthz(url: str, *, timeout: float = 5.0) -> tuple[int | None, dict]:
    """Return the status and JSON of `GET /healthz`; (None, {"error": why}) when nothing
    answers."""
    try:
        response = requests.get(f"{url}/healthz", timeout=timeout)
    except requests.RequestException as error:
        return None, {"error": type(error).__name__}
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"error": "not JSON"}


def wait_until_serving(process: Process, url: str, *, timeout: float = START_SECONDS) -> bool:
    """Wait until the web at `url` answers /healthz (any status); False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive:
            return False
        status, _ = healthz(url, timeout=2)
        if status is not None:
            return True
        time.sleep(0.2)
    return False


def wait_for_exit(process: Process, *, timeout: float) -> int | None:
    """Return the process's exit status, or None (and stop it) if it still runs after
    `timeout` seconds: it started when it should have refused to."""
    try:
        return process.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        process.stop()
        return None
