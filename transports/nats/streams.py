"""The JetStream streams and the lease bucket of the durable order path.

* ``DEX_ORDERS`` (subjects ``dex.orders.>``): the input. File storage, a
  duplicate window (default 2 min) so a resend with the same ``Nats-Msg-Id``
  (trader + client order id) is acknowledged again without a second copy.
  Its acknowledgement is the point of acceptance of an order.
* ``DEX_RESULTS`` (subjects ``dex.results.>``): exactly one result per input,
  in input order, so result sequence N is the result of input sequence N. The
  leader appends with ``Nats-Expected-Last-Sequence: N-1``: an append out of
  turn (a stale leader, a second writer) is refused by the server.
* KV bucket ``dex_leader``: the election lease, its TTL the bucket's max age.

``replicas`` is 1 on a single server and 3 on a 3-server cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from transports.nats.settings import LEASE_BUCKET, ORDERS_STREAM, RESULTS_STREAM, Subjects

DUPLICATE_WINDOW_S = 120.0
T = TypeVar("T")


async def ensure_streams(js: JetStreamContext, subjects: Subjects, replicas: int = 1, timeout: float = 30.0) -> None:
    """Create both streams if missing (idempotent; several nodes may race to do it).

    Retried for up to ``timeout`` seconds: a cluster that is still electing its
    meta leader answers JetStream requests with timeouts for a while, and a
    bucket another node is creating can be "existing" and "not found" at once."""
    await retry(lambda: _ensure_streams(js, subjects, replicas), timeout)


async def retry(step: Callable[[], Awaitable[T]], timeout: float) -> T:
    """``step()`` until it succeeds, for at most ``timeout`` seconds (JetStream API calls during a cluster's start or failover)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await step()
        except Exception:  # a timeout, no responders, a bucket another node is creating right now: bounded retries
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _ensure_streams(js: JetStreamContext, subjects: Subjects, replicas: int) -> None:
    for name, subject in ((ORDERS_STREAM, subjects.orders_all), (RESULTS_STREAM, subjects.results_all)):
        config = StreamConfig(
            name=name,
            subjects=[subject],
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=DUPLICATE_WINDOW_S,
            allow_direct=True,
        )
        try:
            await js.stream_info(name)
        except NotFoundError:
            with contextlib.suppress(BadRequestError):  # another node created it in between
                await js.add_stream(config)


async def lease_bucket(js: JetStreamContext, ttl: float, replicas: int = 1, timeout: float = 30.0) -> KeyValue:
    """The lease bucket (created with max age ``ttl`` if missing); retried as ``ensure_streams``."""
    return await retry(lambda: _lease_bucket(js, ttl, replicas), timeout)


async def _lease_bucket(js: JetStreamContext, ttl: float, replicas: int) -> KeyValue:
    try:
        return await js.key_value(LEASE_BUCKET)
    except NotFoundError:
        pass
    try:
        return await js.create_key_value(
            KeyValueConfig(bucket=LEASE_BUCKET, ttl=ttl, history=1, replicas=replicas, storage=StorageType.FILE)
        )
    except BadRequestError:  # created by another node in between
        return await js.key_value(LEASE_BUCKET)
