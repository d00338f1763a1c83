"""The Redis transport the worker runs on: kombu's, with its acknowledgement bookkeeping kept
as kombu keeps it, through one shared client instead of one per call."""

import pytest
from celery import current_app

from core.broker import Transport

pytestmark = pytest.mark.redis


@pytest.fixture
def connection():
    with current_app.connection_for_write() as connection:
        yield connection


@pytest.fixture
def queue(connection):
    simple = connection.SimpleQueue(f"{current_app.conf.task_default_queue}-broker-test")
    yield simple
    simple.queue(connection.default_channel).delete()
    simple.close()


def unacked(connection) -> dict:
    channel = connection.default_channel
    client = channel._create_client()
    return client.hgetall(channel.unacked_key)


def test_the_worker_and_the_web_use_this_transport_on_a_redis_broker(connection):
    assert isinstance(connection.transport, Transport)


def test_a_task_being_worked_on_is_noted_until_it_is_acknowledged(connection, queue):
    queue.put({"task": "a"})

    message = queue.get(timeout=5)
    noted = unacked(connection)
    message.ack()

    assert message.delivery_tag.encode() in noted
    assert message.delivery_tag.encode() not in unacked(connection)


def test_a_task_never_acknowledged_goes_back_to_the_queue(connection, queue):
    queue.put({"task": "b"})
    first = queue.get(timeout=5)

    connection.default_channel.qos.restore_unacked()
    again = queue.get(timeout=5)
    again.ack()

    assert again.payload == first.payload == {"task": "b"}


def test_one_client_serves_the_bookkeeping_until_the_pool_is_replaced(connection):
    channel = connection.default_channel

    first, second = channel._create_client(), channel._create_client()
    channel._disconnect_pools()
    after = channel._create_client()

    assert first is second
    assert after is not first
    assert after.connection_pool is channel.pool
    assert after.ping()


def test_the_polling_client_stays_kombus_own(connection):
    channel = connection.default_channel

    assert channel._create_client(asynchronous=True) is not channel._create_client()
