"""``DhtClient``: the ``TraderClient`` of a dex-node cluster (HTTP API, protobuf through ``proto_codec``).

URL: ``dht://host:port[,host:port...]`` (node API endpoints; default
``$DEX_DHT_URL`` or ``dht://127.0.0.1:7700``). A client talks to one node,
chosen by its trader's hash so that many traders spread over all nodes; any
node accepts orders (the owner sequences them). It moves to the next node
only when a connection could not be made (nothing was sent, so nothing can
be applied twice). ``NotConnected`` after a request was sent means "outcome
unknown": resubmitting with the same client order ids is safe (duplicates
are rejected by the engine).

Authentication: given a ``credential`` (a key of ``dex-keys``), the client
signs every request that acts for its trader (``signed.PRIVATE_PATHS``) at
the moment it is sent, and its trader is the key's; without one it names
its trader in ``X-Trader`` (a node with ``--auth off``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from engine import AddInstrument, BookDepth, Command, Instrument, MalformedMessage, NotConnected, OrderView
from transports.codec import lean
from transports.codec.proto_codec import (
    decode_book,
    decode_error,
    decode_market_data,
    decode_order_status,
    decode_stats,
    encode_commands,
    pb,
)
from transports.core.client import Replies, TraderClient
from transports.core.http_wire import Broken, HttpEndpoint, StreamRefused, Unreachable
from transports.core.instruments_cache import InstrumentsCache
from transports.core.keys import Credential
from transports.core.marketdata import MarketData
from transports.dht.signed import PRIVATE_PATHS, signed_headers

DEFAULT_URL = "dht://127.0.0.1:7700"
URL_ENV = "DEX_DHT_URL"
PROTO = "application/x-protobuf"


def endpoints(url: str) -> list[tuple[str, int]]:
    """``dht://a:1,b:2`` -> ``[("a", 1), ("b", 2)]``."""
    rest = url.removeprefix("dht://").removeprefix("http://").strip("/")
    out = []
    for item in rest.split(","):
        host, sep, port = item.strip().rpartition(":")
        if item.strip():
            if not sep or not port.isdigit():
                raise ValueError(f"expected host:port in {url!r}, got {item!r}")
            out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError(f"no node endpoint in {url!r}")
    return out


class DhtClient(TraderClient):
    transport = "dht"

    def __init__(self, trader: str, url: str | None = None, *, timeout: float = 30.0, credential: Credential | None = None) -> None:
        if credential is not None:
            trader = credential.trader
        super().__init__(trader)
        self.credential = credential
        self.url = url or os.environ.get(URL_ENV, DEFAULT_URL)
        self.endpoints = [HttpEndpoint(host, port) for host, port in endpoints(self.url)]
        start = int.from_bytes(hashlib.sha256(trader.encode()).digest()[:4], "big") % len(self.endpoints)
        self._order = self.endpoints[start:] + self.endpoints[:start]
        self.timeout = timeout
        self._headers = {"X-Trader": self.trader, "Content-Type": PROTO}
        self._catalog = InstrumentsCache(self._instrument_list)
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        await self._catalog.refresh()

    async def close(self) -> None:
        self._stop_heartbeat()
        for endpoint in self.endpoints:
            endpoint.close()

    async def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None, content: bytes = b"") -> tuple[int, bytes]:
        last: Exception | None = None
        headers = self._headers
        if self.credential is not None and path in PRIVATE_PATHS:
            # Signed once: a node tried after ``Unreachable`` never received it, so the same signature is not a replay.
            headers = {**headers, **signed_headers(self.credential, method, path, urlencode(params) if params else "", content)}
        for i, endpoint in enumerate(self._order):
            try:
                # asyncio.timeout, not wait_for: wait_for runs the request as a task of its own, and when this
                # task is cancelled just as that one fails to connect, its Unreachable is never retrieved (logged at exit).
                async with asyncio.timeout(self.timeout):
                    reply = await endpoint.request(method, path, params=params, headers=headers, body=content)
            except Unreachable as exc:  # nothing was sent: the next node is safe to try
                last = exc
                continue
            except (Broken, TimeoutError) as exc:
                raise NotConnected(f"{endpoint!r}: {exc!r}; outcome unknown, resubmit (duplicates are rejected)") from None
            if i:
                self._order = self._order[i:] + self._order[:i]  # stay with the node that answered
            return reply
        raise NotConnected(f"no dex-node reachable at {self.url}: {last}")

    async def _get(self, path: str, **params: Any) -> bytes:
        status, body = await self._request("GET", path, params=params)
        if status != 200:
            raise decode_error(body)
        return body

    # -------------------------------------------------------------- orders
    async def submit(self, commands: Sequence[Command]) -> Replies:
        if not commands:
            return []
        await self._catalog.know(getattr(c, "symbol", "") for c in commands)
        listing = {c.instrument.symbol: c.instrument for c in commands if isinstance(c, AddInstrument)}
        lookup = {**self._catalog.by_symbol, **listing}.get
        batch_id = next(self._ids)
        body = encode_commands(commands, lookup, batch_id).SerializeToString()
        _status, reply = await self._request("POST", "/v1/batch", content=body)
        return await self._catalog.decode(reply, lookup)

    async def submit_orders(self, batch: bytes) -> lean.Outcomes:
        _status, reply = await self._request("POST", "/v1/lean", content=batch)
        return lean.decode_outcomes(reply)

    # ------------------------------------------------------------- queries

    async def _instrument_list(self) -> bytes:
        return await self._get("/v1/instruments")

    async def instruments(self) -> list[Instrument]:
        return await self._catalog.refresh()

    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        data = await self._get("/v1/book", symbol=symbol, depth=depth)
        await self._catalog.know([symbol])
        return decode_book(data, self._catalog.by_symbol.get)

    async def order(self, order_id: int) -> OrderView | None:
        data = await self._get("/v1/order", id=int(order_id))
        from transports.codec.proto_codec import pb

        reply = pb.OrderStatusReply.FromString(data)
        if reply.HasField("order"):
            await self._catalog.know([reply.order.symbol])
        return decode_order_status(reply, self._catalog.by_symbol.get)

    async def stats(self) -> dict[str, Any]:
        return decode_stats(await self._get("/v1/stats"))

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        body = pb.CancelOnDisconnectRequest(grace_ms=grace_ms).SerializeToString()
        status, reply = await self._request("POST", "/v1/cancel-on-disconnect", content=body)
        if status != 200:
            raise decode_error(reply)
        return pb.CancelOnDisconnectReply.FromString(reply).grace_ms

    async def cluster(self) -> dict[str, Any]:
        """The node's view of its replica group (owner, epoch, state hash)."""
        _, body = await self._request("GET", "/v1/cluster")
        data: dict[str, Any] = orjson.loads(body)
        return data

    # --------------------------------------------------------- market data
    async def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            raise MalformedMessage("name the symbols to subscribe to")
        await self._catalog.know(wanted)
        endpoint = self._order[0]
        buffer = b""
        try:
            async for chunk in endpoint.stream("/v1/md", params={"symbols": ",".join(wanted)}, headers=self._headers):
                buffer += chunk
                while len(buffer) >= 4:
                    (length,) = struct.unpack(">I", buffer[:4])
                    if len(buffer) < 4 + length:
                        break
                    message, buffer = buffer[4 : 4 + length], buffer[4 + length :]
                    yield decode_market_data(message, self._catalog.by_symbol.get)
        except StreamRefused as exc:
            raise decode_error(exc.body) from None
        except (Broken, Unreachable) as exc:
            raise NotConnected(f"market-data stream from {endpoint!r} closed: {exc}") from None
