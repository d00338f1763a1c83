"""Celery's Redis transport, with one Redis client per channel for its own bookkeeping.

kombu's Redis transport emulates acknowledgement: it notes each message it hands to a worker
(and removes the note when the task is acknowledged), and for each of those calls it builds a
new redis-py client around the channel's connection pool. A client holds no connection of its
own and is safe to share between threads, but building one costs more of the worker's CPU
than the commands it then sends: three clients per task were about 4 % of a verification's
CPU (docs/benchmarks.md, "Cost of one verification"). This channel builds that client once
and builds another only when kombu replaces the pool (after a lost connection).

The settings select it for a `redis://` or `rediss://` broker (`transport_for`).
"""

from kombu.transport import redis


def transport_for(broker_url: str) -> str | None:
    """Return CELERY_BROKER_TRANSPORT for `broker_url`: this module's for Redis, else None
    (kombu's own transport for the URL's scheme)."""
    return "core.broker:Transport" if broker_url.startswith(("redis://", "rediss://")) else None


class Channel(redis.Channel):
    _shared_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            # The channel's own polling client: kombu builds it once already.
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel
