"""turbo-dex as a ccxt exchange (asynchronous, asyncio): ``traders.turbodex_ccxt.async_support.turbodex``.

The same requests as ``sync.turbodex``, awaited (ccxt's aiohttp session):
close it with ``await exchange.close()`` (or ``async with``).
"""

from __future__ import annotations

from typing import Any

import ccxt.async_support

from traders.turbodex_ccxt.common import TurboDexBase


class turbodex(TurboDexBase, ccxt.async_support.Exchange):  # type: ignore[misc]  # noqa: N801 (ccxt names exchange classes in lower case)
    """``turbodex({"url": "http://127.0.0.1:8080", "apiKey": KEY_ID, "secret": PRIVATE_KEY})``: signed (docs/ccxt.md)."""

    async def fetch_markets(self, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        response = await self.request("instruments", "public", "GET", params or {})
        return [self.parse_market(i) for i in response["instruments"]]

    async def fetch_order_book(self, symbol: str, limit: int | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.load_markets()
        market = self.market(symbol)
        request = {"symbol": market["id"], **({"limit": limit} if limit else {}), **(params or {})}
        book = await self.request("depth/{symbol}", "public", "GET", request)
        result = self.parse_order_book(book, market["symbol"], None, "bids", "asks", 0, 1)
        result["nonce"] = book.get("md_seq")
        return result  # type: ignore[no-any-return]

    async def fetch_ticker(self, symbol: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.load_markets()
        market = self.market(symbol)
        return self.parse_ticker(await self.request("ticker/{symbol}", "public", "GET", {"symbol": market["id"], **(params or {})}), market)

    async def fetch_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None, params: dict[str, Any] | None = None
    ) -> list[Any]:
        await self.load_markets()
        market = self.market(symbol)
        request = {"symbol": market["id"], "limit": min(limit or 100, 1000), **(params or {})}
        response = await self.request("trades/{symbol}", "public", "GET", request)
        return self.parse_trades(response["trades"], market, since, limit)  # type: ignore[no-any-return]

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None, params: dict[str, Any] | None = None
    ) -> list[list[Any]]:
        await self.load_markets()
        market = self.market(symbol)
        request: dict[str, Any] = {"symbol": market["id"], "interval": self.safe_string(self.timeframes, timeframe, timeframe)}
        if since is not None:
            request["start"] = since
        if limit is not None:
            request["limit"] = limit
        extra = dict(params or {})
        until = extra.pop("until", None)
        if until is not None:
            request["end"] = until
        response = await self.request("candles/{symbol}", "public", "GET", {**request, **extra})
        return self.parse_ohlcvs(response["candles"], market, timeframe, since, limit)  # type: ignore[no-any-return]

    async def create_order(
        self, symbol: str, type: str, side: str, amount: Any, price: Any = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        await self.load_markets()
        market = self.market(symbol)
        reply = await self.request("orders", "private", "POST", self.order_request(market, type, side, amount, price, params or {}))
        return self.parse_command_reply(reply, market)

    async def cancel_order(self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.load_markets()
        reply = await self.request("orders/{order_id}", "private", "DELETE", {"order_id": id, **(params or {})})
        cancelled = next(e for e in reply["events"] if e.get("type") == "cancelled")
        market = self.safe_market(cancelled.get("symbol"))
        return self.safe_order(  # type: ignore[no-any-return]
            {"info": reply, "id": str(cancelled["order_id"]), "clientOrderId": cancelled.get("client_order_id") or None,
             "symbol": market["symbol"], "status": "canceled", "remaining": "0"},
            market,
        )  # fmt: skip

    async def cancel_all_orders(self, symbol: str | None = None, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        await self.load_markets()
        request = {"symbol": self.market(symbol)["id"]} if symbol else {}
        reply = await self.request("orders", "private", "DELETE", {**request, **(params or {})})
        return [
            self.safe_order({"info": e, "id": str(e["order_id"]), "status": "canceled"})
            for e in reply["events"]
            if e.get("type") == "cancelled"
        ]

    async def fetch_order(self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.load_markets()
        extra = dict(params or {})
        client_order_id = extra.pop("clientOrderId", None)
        if client_order_id is not None:
            view = await self.request("orders/client/{client_order_id}", "private", "GET", {"client_order_id": client_order_id, **extra})
        else:
            view = await self.request("orders/{order_id}", "private", "GET", {"order_id": id, **extra})
        return self.parse_order(view)

    async def fetch_open_orders(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        await self.load_markets()
        market = self.market(symbol) if symbol else None
        request = {"symbol": market["id"]} if market else {}
        response = await self.request("orders", "private", "GET", {**request, **(params or {})})
        return self.parse_orders(response["orders"], market, since, limit)  # type: ignore[no-any-return]

    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None, params: dict[str, Any] | None = None
    ) -> list[Any]:
        """The trader's fills; ``params["fromId"]``: only trades with a larger trade id (the server's ``since``)."""
        await self.load_markets()
        market = self.market(symbol) if symbol else None
        extra = dict(params or {})
        request: dict[str, Any] = {"limit": min(limit or 1000, 1000)}
        if market:
            request["symbol"] = market["id"]
        from_id = extra.pop("fromId", None)
        if from_id is not None:
            request["since"] = from_id
        response = await self.request("fills", "private", "GET", {**request, **extra})
        return self.parse_trades(response["fills"], market, since, limit)  # type: ignore[no-any-return]
