"""Fixtures for end-to-end tests: a real Celery worker on Redis, an SMTP sink, and cleanup.

The worker runs in threads of the test process (celery.contrib.testing), so it sees the
settings a test overrides (the fake Stripe's address, the sink's port) and writes to the test
database through its own connections: tests using it are transactional.
"""

import json
import logging
from contextlib import ExitStack

import pytest
import redis
from celery import signals
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from django.conf import settings
from django.db import connections
from django.urls import reverse

# The tasks must be registered before the worker starts, or it rejects their messages.
import credentials.tasks  # noqa: F401
import mail.tasks  # noqa: F401
from config.celery_app import app as celery_app
from tests.e2e.smtp_sink import SmtpSink
from tests.e2e.waiting import wait_until

REQUIRED_TASKS = (
    "credentials.tasks.verify_credential",
    "credentials.tasks.verifications_requeue_stale",
    "mail.tasks.send_email",
    "mail.tasks.emails_send_due",
    "credentials.tasks.followups_send_due",
)
WORKER_CONCURRENCY = 2
WORKER_SHUTDOWN_SECONDS = 15.0
# Environment variables that Celery's logging setup writes; restored after each worker.
_CELERY_LOG_ENVIRONMENT = (
    "CELERY_LOG_LEVEL",
    "CELERY_LOG_FILE",
    "_MP_FORK_LOGLEVEL_",
    "_MP_FORK_LOGFILE_",
    "_MP_FORK_LOGFORMAT_",
)
# kombu's Redis transport keeps a queue's priority levels in keys named queue + sep + level.
_PRIORITY_SEPARATOR = "\x06\x16"


def worker_queue() -> str:
    """The queue of this test process (config/settings/test.py names it after the pid)."""
    return settings.CELERY_TASK_DEFAULT_QUEUE


def queue_keys(queue: str) -> list[str]:
    """The Redis keys kombu uses for `queue`: its messages at each priority, its bindings.

    Celery names the queue's exchange after the queue, and kombu keys bindings by exchange.
    """
    levels = [f"{queue}{_PRIORITY_SEPARATOR}{level}" for level in range(1, 10)]
    bindings = [f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
    return [queue, *levels, *bindings]


def unacked_tags(client, queue: str) -> list[bytes]:
    """Delivery tags of messages from `queue` that a worker took but has not acknowledged.

    kombu keeps them in one hash shared by every queue on the database; each value is
    [message, exchange, routing key].
    """
    tags = []
    for tag, value in client.hscan_iter("unacked"):
        try:
            _message, exchange, routing_key = json.loads(value)
        except (ValueError, TypeError):
            continue
        if queue in (exchange, routing_key):
            tags.append(tag)
    return tags


def delete_queue_keys(client, queue: str) -> None:
    """Remove what this process's queue left in Redis, and nothing of anyone else's."""
    client.delete(*queue_keys(queue))
    tags = unacked_tags(client, queue)
    if tags:
        client.hdel("unacked", *tags)
        client.zrem("unacked_index", *tags)


@pytest.fixture
def redis_client():
    """A client on the broker's Redis database; the test queue is emptied before and after."""
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=5
    )
    queue = worker_queue()
    delete_queue_keys(client, queue)
    yield client
    delete_queue_keys(client, queue)
    client.close()


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on 127.0.0.1 that the SMTP backend sends to, as deployed."""
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "mail.smtp.EmailBackend"
        settings.EMAIL_HOST = sink.host
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = 5
        yield sink


class WorkerProbe:
    """What the embedded worker has done, and whether anything is left for it to do."""

    def __init__(self, client, queue: str):
        self.worker = None  # the WorkController, once started
        self._client = client
        self._queue = queue
        self.finished: list[tuple[str, tuple, str]] = []

    def record(self, name: str, args, state: str) -> None:
        self.finished.append((name, tuple(args or ()), state))

    def runs(self, task_name: str) -> list[tuple[str, tuple, str]]:
        """Return (name, args, state) of each finished run of `task_name`, in order."""
        return [run for run in list(self.finished) if run[0] == task_name]

    def is_idle(self) -> bool:
        return (
            not worker_state.active_requests
            and not worker_state.reserved_requests
            and self._client.llen(self._queue) == 0
            and not unacked_tags(self._client, self._queue)
        )

    def wait_until_idle(self) -> None:
        """Wait until the queue is empty and no task is running, reserved or unacknowledged.

        Five polls in a row: a message read from Redis is briefly in none of those places.
        """
        wait_until(self.is_idle, what="the worker to finish every queued task", stable_for=5)


def _keep_django_logging(**kwargs):
    """Receiver of Celery's setup_logging: its presence tells Celery to leave logging alone.

    Otherwise the embedded worker would lower the root logger to its own level and stop
    `celery.task` records from propagating, for the rest of the test session.
    """


def _logging_state() -> list[tuple[logging.Logger, int, list, bool, bool]]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [
        (logger, logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for logger in loggers
    ]


def _restore_logging(state) -> None:
    """Put loggers back as they were (levels, handlers, propagation).

    A starting worker calls django.setup() (Celery's Django fix-up), which applies LOGGING
    again: that would drop the handlers pytest and the tests attached, and reset levels.
    """
    for logger, level, handlers, propagate, disabled in state:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.fixture
def start_celery_worker(
    transactional_db, settings, fake_stripe, smtp_sink, redis_client, monkeypatch
):
    """Return a function that starts the worker (once) and returns its WorkerProbe.

    The worker consumes this process's test queue on Redis with a pool of threads. It is
    started after the fake Stripe and the sink and stopped before them; afterwards its
    database connections are closed and its queue's keys deleted (see redis_client).
    """
    assert celery_app.conf.task_default_queue == worker_queue(), (
        "The Celery app publishes to another queue than the test queue."
    )
    missing = [name for name in REQUIRED_TASKS if name not in celery_app.tasks]
    assert not missing, f"Tasks unknown to the worker: {missing}"
    # No remote-control mailbox: nothing uses it, and it would leave keys in Redis.
    monkeypatch.setitem(celery_app.conf, "worker_enable_remote_control", False)
    for name in _CELERY_LOG_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    stack = ExitStack()
    probe = WorkerProbe(redis_client, worker_queue())

    def on_task_postrun(sender=None, args=None, state=None, **kwargs):
        probe.record(sender.name, args, state)
        # This runs in the worker thread: close its connections, so that none is left open
        # on the test database when the test ends (PostgreSQL would refuse to drop it).
        connections.close_all()

    def start() -> WorkerProbe:
        if probe.worker is not None:
            return probe
        signals.setup_logging.connect(_keep_django_logging)
        stack.callback(signals.setup_logging.disconnect, _keep_django_logging)
        signals.task_postrun.connect(on_task_postrun, weak=False)
        stack.callback(signals.task_postrun.disconnect, on_task_postrun)
        stack.callback(logging.captureWarnings, False)
        logging_before = _logging_state()
        probe.worker = stack.enter_context(
            start_worker(
                celery_app,
                pool="threads",
                concurrency=WORKER_CONCURRENCY,
                perform_ping_check=False,
                loglevel="WARNING",
                shutdown_timeout=WORKER_SHUTDOWN_SECONDS,
                queues=[worker_queue()],
            )
        )
        _restore_logging(logging_before)
        return probe

    yield start
    stack.close()


@pytest.fixture
def celery_worker(start_celery_worker) -> WorkerProbe:
    """A running worker (see start_celery_worker)."""
    return start_celery_worker()


@pytest.fixture
def submit_keys(owner_client, merchant):
    """Return a function that submits a key pair through the portal's form, as the owner."""

    def submit(*, publishable_key: str, secret_key: str, note: str = ""):
        return owner_client.post(
            reverse("credentials:submit", kwargs={"slug": merchant.slug}),
            {
                "publishable_key": publishable_key,
                "secret_key": secret_key,
                "requested_integrations": ["online_payments", "subscriptions"],
                "note": note,
            },
        )

    return submit


@pytest.fixture
def redis_monitor():
    """Every command the Redis server runs during the test (see tests.e2e.leaks.RedisMonitor)."""
    from tests.e2e.leaks import RedisMonitor

    monitor = RedisMonitor(settings.CELERY_BROKER_URL).start()
    yield monitor
    monitor.stop()
