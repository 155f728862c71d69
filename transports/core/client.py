"""``TraderClient``: the one interface the harness and the bots use to reach the exchange.

Every transport ships a client implementing it (``transports/<name>/client.py``);
the harness knows nothing else about any transport. A client acts for one
trader: every command it sends is sent as that trader (servers enforce it).

Errors: ``NotConnected`` when the server cannot be reached, ``Overloaded`` when
the gateway refused a submission whole (nothing applied: retry), and
``MalformedMessage`` for input the server could not decode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, ClassVar

from engine import BookDepth, CancelOrder, Command, Event, Instrument, MassCancel, OrderView, ReplaceOrder
from transports.codec import lean
from transports.core.fills import Fill
from transports.core.marketdata import MarketData
from transports.core.sessions import Heartbeat

Replies = list[list[Event]]


class TraderClient(ABC):
    transport: ClassVar[str]

    def __init__(self, trader: str) -> None:
        self.trader = trader
        self._heartbeat = Heartbeat(self._arm_cancel_on_disconnect)

    async def connect(self) -> None:  # noqa: B027 - optional hook
        """Open connections; idempotent. Raises ``NotConnected`` if the server is unreachable."""

    async def close(self) -> None:
        """Close connections; idempotent. An override calls ``_stop_heartbeat`` first."""
        self._stop_heartbeat()

    async def __aenter__(self) -> TraderClient:
        await self.connect()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @abstractmethod
    async def submit(self, commands: Sequence[Command]) -> Replies:
        """Send commands in order; return each command's events, in order."""

    async def submit_orders(self, batch: bytes) -> lean.Outcomes:
        """Lean order entry: ``batch`` is an ``OrderBatch`` (``lean.encode_orders``); each command's outcome.

        What the harness and the bots use: the server answers each command's
        outcome and its own fills, not every event. This default goes through
        ``submit``; a transport with a lean wire sends the bytes as they are.
        """
        commands = lean.decode_orders(lean.parse_orders(batch), self.trader, len(batch))
        replies = await self.submit(commands)
        return lean.decode_outcomes(lean.encode_outcomes(commands, replies))

    async def cancel(self, order_id: int, *, request_id: int = 0) -> list[Event]:
        """Cancel one order. With a ``request_id`` (positive, unique per trader) a retry after a lost answer, also
        across a server restart, is answered with the first outcome and never cancels twice (docs/exactly-once.md)."""
        return (await self.submit([CancelOrder(self.trader, order_id, request_id=request_id)]))[0]

    async def replace(self, order_id: int, symbol: str, new_price: int = 0, new_qty: int = 0, *, request_id: int = 0) -> list[Event]:
        """Change an order's price (ticks) and/or remaining quantity (lots); ``request_id`` as for ``cancel``."""
        return (await self.submit([ReplaceOrder(self.trader, order_id, new_price, new_qty, symbol, request_id=request_id)]))[0]

    async def mass_cancel(self, symbol: str = "", *, request_id: int = 0) -> list[Event]:
        """Cancel every open order (in ``symbol``, or everywhere); ``request_id`` as for ``cancel``."""
        return (await self.submit([MassCancel(self.trader, symbol, request_id=request_id)]))[0]

    async def cancel_on_disconnect(self, grace_ms: int) -> int:
        """Have this trader's open orders cancelled if this client goes silent for ``grace_ms``; 0 disarms.

        The client repeats the request (the heartbeat) every quarter of the
        grace until it is closed or disarmed; when no heartbeat reaches the
        server within the grace (the client closed, crashed or lost its
        connection), every open order of the trader is cancelled with
        ``CancelReason.CANCEL_ON_DISCONNECT``. Returns the grace armed.
        Bounds and what liveness means on each wire: docs/sessions.md.
        """
        return await self._heartbeat.set(grace_ms)

    def _stop_heartbeat(self) -> None:
        """Every client's ``close`` calls it first: a closed client sends no heartbeat."""
        self._heartbeat.stop()

    @abstractmethod
    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        """One ``CancelOnDisconnectRequest`` on this client's wire; the grace the server armed."""

    @abstractmethod
    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        """Level-2 depth; raises ``MalformedMessage`` (UNKNOWN_SYMBOL) for an unknown symbol."""

    @abstractmethod
    async def order(self, order_id: int) -> OrderView | None:
        """Status of one of this trader's orders (None if unknown)."""

    @abstractmethod
    async def instruments(self) -> list[Instrument]:
        """The listed instruments (tick and lot sizes are needed to price orders)."""

    @abstractmethod
    async def stats(self) -> dict[str, Any]:
        """The server's counters (``Gateway.stats_dict``)."""

    @abstractmethod
    def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        """A snapshot per symbol, then sequenced updates; ``Gap`` + a fresh snapshot after falling behind."""

    def fills(self) -> AsyncIterator[Fill]:
        """This trader's own fills from now on, as maker and as taker (``transports.core.fills``).

        gRPC (``rpc Fills``) and HTTP (``/ws/fills``) push them; on other wires a
        trader reads its fills in its replies (as the taker) and its orders' status.
        """
        raise NotImplementedError(f"{type(self).__name__} has no fills stream: read your orders' status (order())")
