"""One NATS connection with the error counting every NATS user of ours needs.

Invariant: a slow-consumer event (a subscription over its pending limits,
so NATS dropped messages for it) is never silent: it is counted in
``slow_consumers`` and logged (the 1st, 2nd, 4th, 8th ... time, so a storm
cannot flood the log). Other asynchronous errors are counted and logged too. A broker that refuses
our user (no live key) is ``AuthFailure`` (``UNAUTHENTICATED``), not
``NotConnected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.errors import AuthorizationError, SlowConsumerError

from engine import NotConnected
from transports.core.signing import AuthFailure

log = logging.getLogger("dex-nats")


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is the broker refusing our user (nats-py reports it as ``AuthorizationError`` or as its text)."""
    return isinstance(exc, AuthorizationError) or "authorization violation" in str(exc).lower()


class ConnectionErrors:
    def __init__(self) -> None:
        self.slow_consumers = 0
        self.errors = 0
        self.refused = False  # the broker refused our user (no such user: a revoked key, a key never issued, no key)
        self.permission_errors = 0  # subjects the broker did not let us publish or subscribe to
        self.on_refused: Callable[[], None] | None = None  # called on each refusal (a keyed client fails its requests)

    async def on_error(self, exc: Exception) -> None:
        if is_refusal(exc):
            self.refused = True
            if self.on_refused is not None:
                self.on_refused()
        elif "permissions violation" in str(exc).lower():
            self.permission_errors += 1
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
    """Connect (``NotConnected`` if no server answers within ``timeout``); reconnects forever after that.

    A broker that refuses our user ends the attempt at once with ``AuthFailure``
    (nats-py would otherwise retry until the timeout).
    """
    nc = Client()
    refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    chained = errors.on_refused

    def on_refused() -> None:
        if not refused.done():
            refused.set_result(None)
        if chained is not None:
            chained()

    errors.on_refused = on_refused
    # Bounded: with reconnects allowed, nats-py would otherwise retry an absent server forever.
    attempt = asyncio.ensure_future(_connect(nc, url, name, errors, timeout, options))
    try:
        await asyncio.wait({attempt, refused}, timeout=timeout + 1.0, return_when=asyncio.FIRST_COMPLETED)
    finally:
        errors.on_refused = chained
    failure = None if attempt.done() and not attempt.cancelled() and attempt.exception() is None else _failure(attempt)
    if failure is None:
        return nc
    attempt.cancel()
    with contextlib.suppress(BaseException):
        await attempt
    with contextlib.suppress(Exception):
        await nc.close()
    if errors.refused or is_refusal(failure):
        raise refused_by_broker(url) from None
    raise NotConnected(f"no NATS server answers at {url} ({type(failure).__name__}: {failure})") from None


def _failure(attempt: asyncio.Future[None]) -> BaseException:
    if attempt.done() and not attempt.cancelled():
        found = attempt.exception()
        if found is not None:
            return found
    return TimeoutError("")


def refused_by_broker(url: str) -> AuthFailure:
    """The broker at ``url`` has no user for this client's key (none given, never issued, or revoked)."""
    return AuthFailure("unknown_key", f"the NATS server at {url} refused this client: no live key (docs/security.md)")


async def _connect(nc: Client, url: str, name: str, errors: ConnectionErrors, timeout: float, options: dict[str, Any]) -> None:
    servers = [u.strip() for u in url.split(",") if u.strip()]  # a cluster: "nats://a:4222,nats://b:4222"
    await nc.connect(
        servers,
        name=name,
        connect_timeout=max(1, round(timeout)),
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,  # type: ignore[arg-type]  # nats-py sleeps for it: a float is what it takes
        error_cb=errors.on_error,
        **options,
    )
