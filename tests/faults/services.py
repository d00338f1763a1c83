"""The run's own PostgreSQL cluster and Redis server: private, on free ports of 127.0.0.1.

Both are started from the machine's binaries (initdb and pg_ctl from /usr/lib/postgresql,
redis-server) in a temporary directory, so a scenario may stop, kill or restart them without
touching the shared services other work on the machine uses. PostgreSQL refuses to run as
root, so under root the cluster belongs to the `postgres` user.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

POSTGRES_BINARIES = "/usr/lib/postgresql/*/bin"
START_SECONDS = 30.0
# Settings for a throwaway cluster: durability is not what the scenarios test (a restart
# flushes everything anyway), speed on 2 cores is.
POSTGRES_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
    "-c synchronous_commit=off -c max_connections=200"
)


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_answers(port: int) -> bool:
    """Return True if something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class PrivatePostgres:
    """A PostgreSQL cluster of the run's own: `start()`, `restart()`, `stop()`.

    Trust authentication on 127.0.0.1 only, superuser `postgres`, its socket in its own
    directory (never the shared server's /var/run/postgresql).
    """

    def __init__(self, root: Path):
        found = sorted(glob.glob(POSTGRES_BINARIES), key=_version_key)
        if not found:
            raise RuntimeError(f"No PostgreSQL binaries in {POSTGRES_BINARIES}.")
        self.bin = Path(found[-1])
        self.home = root / "postgres"
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"
        self.port = free_port()
        self._user = "postgres" if os.geteuid() == 0 else None

    @property
    def version(self) -> str:
        return self.bin.parent.name

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = START_SECONDS) -> None:
        prefix = ["runuser", "-u", self._user, "--"] if self._user else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode:
            raise RuntimeError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-500:]}")

    def _pg_ctl(self, action: str, *options: str) -> None:
        self._run(str(self.bin / "pg_ctl"), action, "-D", str(self.data), "-w", *options)

    def start(self) -> "PrivatePostgres":
        """Create the cluster on first use, then start it and wait until it accepts queries."""
        if not self.data.exists():
            self.home.mkdir(parents=True)
            if self._user:
                # The run's directory must be traversable by the cluster's owner.
                self.home.parent.chmod(0o711)
                entry = pwd.getpwnam(self._user)
                os.chown(self.home, entry.pw_uid, entry.pw_gid)
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            )
        self._pg_ctl(
            "start",
            "-l",
            str(self.log),
            "-t",
            str(int(START_SECONDS)),
            "-o",
            f"-p {self.port} -k {self.home} {POSTGRES_OPTIONS}",
        )
        return self

    def restart(self) -> None:
        """Restart the cluster as an operator would (`pg_ctl restart -m fast`): every open
        connection is cut, and the server is back moments later."""
        self._pg_ctl("restart", "-m", "fast", "-l", str(self.log))

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")

    def execute(self, statement: sql.Composable, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)

    def create_database(self, name: str, *, template: str | None = None) -> None:
        """Create database `name`, a copy of `template` when given (a second, not a migrate)."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self.execute(statement)


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class PrivateRedis:
    """A redis-server of the run's own, without persistence: stopped, it comes back empty,
    as a broker that lost its memory does."""

    def __init__(self, root: Path):
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed.")
        self.binary = binary
        self.home = root / "redis"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "PrivateRedis":
        log = open(self.home / "redis.log", "ab")  # noqa: SIM115  kept by the process
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while not port_answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.home / 'redis.log'}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM; SIGKILL if it lingers) and wait until the port is free."""
        if not self.running:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def flush(self) -> None:
        """Empty every database: a scenario starts with no queued task of another's."""
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=2)
        try:
            client.flushall()
        finally:
            client.close()
