"""``InProcClient``: a ``TraderClient`` that calls a ``Gateway`` in the same process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from engine import BookDepth, Command, Instrument, MalformedMessage, OrderView, RejectReason
from transports.codec import lean
from transports.core.client import Replies, TraderClient
from transports.core.gateway import Gateway
from transports.core.marketdata import MarketData
from transports.core.requests import RequestHandler, check_trader
from transports.core.trader_identity import bind_trader


class InProcClient(TraderClient):
    transport: ClassVar[str] = "inproc"

    def __init__(self, gateway: Gateway, trader: str) -> None:
        super().__init__(trader)
        self.gateway = gateway
        self._requests = RequestHandler(gateway, self.transport)

    async def connect(self) -> None:
        self.trader = check_trader(self.trader)  # the names rule of every wire: refused here as there

    async def submit(self, commands: Sequence[Command]) -> Replies:
        return await self.gateway.submit([bind_trader(c, self.trader) for c in commands], self.transport)

    async def submit_orders(self, batch: bytes) -> lean.Outcomes:
        return lean.decode_outcomes(await self._requests.orders(batch, self.trader))

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        return self._requests.arm_session(self.trader, grace_ms)

    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        result = self.gateway.depth(symbol, depth)
        if result is None:
            raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)
        return result

    async def order(self, order_id: int) -> OrderView | None:
        return self.gateway.order_status(self.trader, order_id)

    async def instruments(self) -> list[Instrument]:
        return self.gateway.instruments

    async def stats(self) -> dict[str, Any]:
        return self.gateway.stats_dict()

    async def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        try:
            sub = self.gateway.subscribe(symbols)
        except KeyError as exc:
            raise MalformedMessage(f"unknown symbol {exc.args[0]!r}", RejectReason.UNKNOWN_SYMBOL) from None
        try:
            async for item in sub:
                yield item
        finally:
            self.gateway.unsubscribe(sub)
