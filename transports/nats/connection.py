"""One NATS connection with the error counting every NATS user of ours needs.

Invariant: a slow-consumer event (a subscription over its pending limits,
so NATS dropped messages for it) is never silent: it is counted in
``slow_consumers`` and logged (the 1st, 2nd, 4th, 8th ... time, so a storm
cannot flood the log). Other asynchronous errors are counted and logged too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import SlowConsumerError

from engine import NotConnected

log = logging.getLogger("dex-nats")


class ConnectionErrors:
    def __init__(self) -> None:
        self.slow_consumers = 0
        self.errors = 0

    async def on_error(self, exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            self.slow_consumers += 1
            n = self.slow_consumers
            if n & (n - 1) == 0:
                log.warning("slow consumer on %s: NATS dropped messages (%d events so far)", exc.subject, n)
            return
        self.errors += 1
        n = self.errors
        if n & (n - 1) == 0:
            log.warning("NATS connection error: %s (%d so far)", exc, n)


async def connect(url: str, name: str, errors: ConnectionErrors, *, timeout: float = 2.0, **options: Any) -> Client:
    """Connect (``NotConnected`` if no server answers within ``timeout``); reconnects forever after that."""
    try:
        # Bounded: with reconnects allowed, nats-py would otherwise retry an absent server forever.
        return await asyncio.wait_for(_connect(url, name, errors, timeout, options), timeout + 1.0)
    except Exception as exc:  # nats-py raises several types (NoServersError, OSError, TimeoutError)
        raise NotConnected(f"no NATS server answers at {url} ({type(exc).__name__}: {exc})") from None


async def _connect(url: str, name: str, errors: ConnectionErrors, timeout: float, options: dict[str, Any]) -> Client:
    servers = [u.strip() for u in url.split(",") if u.strip()]  # a cluster: "nats://a:4222,nats://b:4222"
    return await nats.connect(
        servers,
        name=name,
        connect_timeout=max(1, round(timeout)),
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        error_cb=errors.on_error,
        **options,
    )
