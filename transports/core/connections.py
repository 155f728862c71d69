"""What the connections of one server may hold, together: their number (per peer address and in all) and the
request bytes they buffer (docs/limits.md).

A server asks ``admit(peer)`` when a connection opens and ``release(peer)``
when it closes; ``reserve(n)`` before it holds ``n`` bytes of a request body
it has not read whole (a declared ``Content-Length``, or a chunk) and
``unreserve(n)`` once the request is answered. A refusal is a
``LimitExceeded`` whose reason is ``OVERLOADED`` (nothing applied: retry
later) and whose ``limit`` names the cap; every refusal and every timeout
(``exceeded``) is counted once, by the transport and the limit, in
``GatewayStats`` (``stats`` and the ``dex_limits_exceeded`` metric).

Single-threaded: called from one event loop.
"""

from __future__ import annotations

from collections import Counter

from engine import RejectReason
from transports.core.gateway import GatewayStats
from transports.core.limits import ConnectionLimits, LimitExceeded


class ConnectionGuard:
    """Connection counts and buffered bytes of one server, against its ``ConnectionLimits``."""

    def __init__(self, limits: ConnectionLimits, stats: GatewayStats, transport: str) -> None:
        self.limits = limits
        self._stats = stats
        self._transport = transport
        self._per_peer: Counter[str] = Counter()
        self.connections = 0
        self.buffered = 0  # bytes reserved by requests not yet answered

    def admit(self, peer: str) -> LimitExceeded | None:
        """Count a new connection from ``peer``, or the refusal (counted) when a cap is reached."""
        if self.connections >= self.limits.max_connections:
            return self._refuse(f"the server holds {self.limits.max_connections} connections: retry later", "max_connections")
        if self._per_peer[peer] >= self.limits.max_connections_per_peer:
            limit = self.limits.max_connections_per_peer
            return self._refuse(f"{peer} holds {limit} connections: close some, or retry later", "max_connections_per_peer")
        self._per_peer[peer] += 1
        self.connections += 1
        return None

    def release(self, peer: str) -> None:
        """A connection ``admit`` counted has closed."""
        self.connections -= 1
        left = self._per_peer[peer] - 1
        if left > 0:
            self._per_peer[peer] = left
        else:
            del self._per_peer[peer]

    def reserve(self, size: int) -> LimitExceeded | None:
        """Hold ``size`` more request bytes, or the refusal (counted) when every connection together would hold more
        than ``max_buffered_bytes``."""
        if self.buffered + size > self.limits.max_buffered_bytes:
            return self._refuse(f"the server holds {self.buffered} bytes of unread requests: retry later", "max_buffered_bytes")
        self.buffered += size
        return None

    def unreserve(self, size: int) -> None:
        self.buffered -= size

    def exceeded(self, limit: str) -> None:
        """Count a request refused, or a connection closed, over ``limit`` (a timeout, a size)."""
        self._stats.refused(self._transport, RejectReason.LIMIT_EXCEEDED.name, limit)

    def _refuse(self, message: str, limit: str) -> LimitExceeded:
        error = LimitExceeded(message, limit, RejectReason.OVERLOADED)
        self._stats.refused(self._transport, error.reason.name, limit)
        return error
