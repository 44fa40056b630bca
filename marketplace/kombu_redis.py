"""The Redis transport of Celery's broker, with one fix: a channel reuses its Redis client.

kombu's Redis channel builds a new ``redis.Redis`` object for every command it sends outside
the consumer's poll (``Channel.conn_or_acquire``): every task message a web process publishes
paid for one, and redis-py's constructor fills a 170-entry response-callback table each time
(about a fifth of the Python CPU of a claim -> submit pair in ``bench/claim``). The client
object holds no connection of its own (each command takes one from the channel's pool and
gives it back, as before), so one per channel is equivalent, only built once.

What is *not* shared: the consumer's ``client`` (its connection sits in BRPOP; kombu keeps it
apart) — reusing that one for publishing is what broke the worker round trip before
(``tests/marketplace/test_infrastructure.py::test_celery_round_trip_through_a_real_worker``).

Selected by ``CELERY_BROKER_TRANSPORT`` (``marketplace/settings/base.py``) for ``redis://``
brokers; every other behaviour is kombu's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kombu.transport import redis


class Channel(redis.Channel):
    _command_client = None

    @contextmanager
    def conn_or_acquire(self, client=None) -> Iterator:
        if client:
            yield client
            return
        cached = self._command_client
        # A new pool (reconnected, or after a fork) gets a new client: never an old pool's.
        if cached is None or cached.connection_pool is not self.pool:
            cached = self._command_client = self._create_client()
        yield cached


class Transport(redis.Transport):
    Channel = Channel
