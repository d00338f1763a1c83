"""The worker's database connections: kept between tasks as between requests, replaced when
too old or dead.

On SQLite's in-memory test database Django never closes the connection, so these run on
PostgreSQL (and skip with the reason elsewhere).
"""

import psycopg
import pytest
from celery.signals import task_postrun, task_prerun
from django.db import connection

from config.celery_app import app
from credentials.tasks import verify_credential
from teams.models import User

# serialized_rollback: as every transactional test here, so the data migrations' rows (the
# helpdesk groups) are put back the same way after the flush.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


class _Request:
    is_eager = False


class _WorkerTask:
    """What the signals receive for a task a worker runs (not an eager call)."""

    request = _Request()


def run_task_signals():
    task_prerun.send(sender=_WorkerTask)
    task_postrun.send(sender=_WorkerTask)


@pytest.fixture
def conn_max_age():
    """Return a function that sets CONN_MAX_AGE and opens a new connection under it."""
    saved = connection.settings_dict["CONN_MAX_AGE"]

    def reconnect(seconds):
        connection.settings_dict["CONN_MAX_AGE"] = seconds
        connection.close()
        connection.ensure_connection()
        return connection.connection

    yield reconnect
    connection.settings_dict["CONN_MAX_AGE"] = saved


def test_settings_stop_celery_closing_the_connection_around_every_task():
    assert app.conf.get("CELERY_DB_REUSE_MAX")


def test_a_task_keeps_its_threads_connection_while_it_is_younger_than_conn_max_age(
    conn_max_age,
):
    before = conn_max_age(60)

    run_task_signals()

    assert connection.connection is before


def test_a_task_replaces_a_connection_older_than_conn_max_age(conn_max_age):
    conn_max_age(0)

    run_task_signals()

    assert connection.connection is None
    assert User.objects.count() == 0  # and the next query opens a new one


def test_a_task_after_the_server_dropped_the_connection_gets_a_new_one(conn_max_age):
    conn_max_age(60)
    backend_pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    run_task_signals()

    assert User.objects.count() == 0
    assert connection.connection.info.backend_pid != backend_pid


def test_an_eager_task_leaves_the_connection_alone(conn_max_age):
    before = conn_max_age(0)

    verify_credential.apply(args=[0])

    assert connection.connection is before
