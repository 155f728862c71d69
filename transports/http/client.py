"""``HttpClient``: the ``TraderClient`` for turbo-dex over HTTP/1.1 keep-alive (``connection.py``) and a WebSocket.

The server is ``url``, else ``$DEX_SERVER``, else http://127.0.0.1:8080.
With a ``credential`` (an API key, ``dex-keys create``) every request is
signed (``transports.http.signed``: the DEX-* headers over the method, the
path and query exactly as sent, and the body), the fills WebSocket on its
upgrade; without one the client names its trader in ``X-Trader``, which
only a server with ``--auth off`` accepts.
``connect()`` fetches the instruments once (tick and lot sizes are needed to
write and read decimal strings); a command or event naming a symbol the
client has not seen makes it fetch them again.

Errors (``engine`` hierarchy; never a socket or websockets exception):

* ``NotConnected``: the server cannot be reached, or the connection broke.
  After a broken ``submit`` the commands may or may not have been applied.
* ``Overloaded``: 503, the gateway refused the submission whole; retry.
* ``MalformedMessage``: the server could not decode the input (400, 404 for
  an unknown symbol, 413); ``reason`` tells which rule.
* ``ExchangeError`` with ``UNAUTHENTICATED`` (401: no key, a wrong, revoked
  or stale one, a replay; the message starts with the cause),
  ``UNAUTHORIZED`` (403, or 401 without X-Trader) or ``RATE_LIMITED`` (429).

Engine rejects are not errors: they come back as ``OrderRejected`` events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import websockets
from websockets.asyncio.client import connect as ws_connect

from engine import (
    AddInstrument,
    BookDepth,
    Command,
    ExchangeError,
    Instrument,
    InstrumentAdded,
    MalformedMessage,
    NotConnected,
    OrderView,
    Overloaded,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
)
from transports.codec import lean
from transports.codec.json_codec import decode_event, dumps, encode_command, loads
from transports.codec.json_views import decode_depth, decode_fill, decode_instruments, decode_order_view
from transports.core.client import Replies, TraderClient
from transports.core.fills import Fill
from transports.core.http_wire import HttpEndpoint
from transports.core.keys import Credential
from transports.core.marketdata import MarketData
from transports.http.market_data import decode_market_data
from transports.http.settings import client_url
from transports.http.signed import CLIENT_LOGGERS, redact_signatures, signed_headers

_JSON_HEADERS = {"content-type": "application/json"}
_PROTOBUF_HEADERS = {"content-type": "application/x-protobuf"}


_REFUSALS = (RejectReason.UNAUTHORIZED, RejectReason.UNAUTHENTICATED, RejectReason.RATE_LIMITED, RejectReason.INTERNAL_ERROR)


def error_from_reply(status: int, content: bytes) -> ExchangeError:
    """The exception for a non-2xx reply (the inverse of ``json_codec.error_reply``)."""
    try:
        body = loads(content)
    except MalformedMessage:
        body = None
    if isinstance(body, dict) and body.get("type") == "error":
        reason = RejectReason.__members__.get(str(body.get("reason")), RejectReason.INTERNAL_ERROR)
        message = str(body.get("message", ""))
    elif status == 503:
        reason, message = RejectReason.OVERLOADED, "service unavailable"
    elif 400 <= status < 500:
        reason, message = RejectReason.MALFORMED_MESSAGE, f"HTTP {status}"
    else:
        reason, message = RejectReason.INTERNAL_ERROR, f"HTTP {status}"
    if reason is RejectReason.OVERLOADED:
        return Overloaded(message)
    if reason is RejectReason.UNAVAILABLE:
        return NotConnected(message)
    if reason in _REFUSALS:
        return ExchangeError(message, reason)
    return MalformedMessage(message, reason)


class HttpClient(TraderClient):
    transport: ClassVar[str] = "http"

    def __init__(self, trader: str, url: str | None = None, *, timeout: float = 30.0, credential: Credential | None = None) -> None:
        super().__init__(credential.trader if credential is not None else trader)
        self.url = client_url(url)
        self._credential = credential
        self._prefix = urlsplit(self.url).path.rstrip("/")  # signed as part of the path: the request line holds it
        if credential is not None:
            redact_signatures(CLIENT_LOGGERS)  # websockets logs an upgrade's headers at debug level
        self.ws_url = "ws" + self.url.removeprefix("http") if self.url.startswith("http") else self.url
        self.timeout = timeout
        self._http: HttpEndpoint | None = None
        self._instruments: dict[str, Instrument] = {}

    # ----------------------------------------------------------- lifecycle
    async def connect(self) -> None:
        if self._http is not None:
            return
        try:
            self._http = HttpEndpoint.from_url(self.url, headers={"x-trader": self.trader}, timeout=self.timeout, connect_timeout=5.0)
        except ValueError as exc:
            raise NotConnected(f"not connected to turbo-dex at {self.url} ({exc})") from exc
        try:
            await self._fetch_instruments()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._stop_heartbeat()
        if self._http is not None:
            http, self._http = self._http, None
            http.close()

    # ------------------------------------------------------------- wire
    async def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] = _JSON_HEADERS,
    ) -> tuple[int, bytes]:
        if self._http is None:
            await self.connect()
        assert self._http is not None
        query = urlencode(params) if params else ""
        target = f"{path}?{query}" if query else path
        if self._credential is not None:
            signature = signed_headers(self._credential, method, self._prefix + path, query, content or b"")
            headers = {**headers, **signature} if content is not None else signature
        try:
            if content is None:
                return await self._http.request(method, target, headers=headers if self._credential is not None else None)
            return await self._http.request(method, target, headers=headers, body=content)
        except (OSError, TimeoutError) as exc:  # connect, read, write, timeout, protocol (ConnectionError is an OSError)
            raise NotConnected(f"not connected to turbo-dex at {self.url} ({type(exc).__name__}: {exc})") from exc

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        status, content = await self._request("GET", path, params=params)
        if status != 200:
            raise error_from_reply(status, content)
        return loads(content)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        status, content = await self._request("POST", path, content=dumps(body))
        if status != 200:
            raise error_from_reply(status, content)
        return loads(content)

    async def _fetch_instruments(self) -> list[Instrument]:
        data = await self._get("/instruments")
        instruments = decode_instruments(data.get("instruments") if isinstance(data, dict) else None)
        self._instruments = {i.symbol: i for i in instruments}
        return instruments

    async def _know(self, symbols: Iterable[str]) -> None:
        """Fetch the instruments again if any of ``symbols`` is new to this client."""
        if any(s and s not in self._instruments for s in symbols):
            await self._fetch_instruments()

    # ---------------------------------------------------------- commands
    async def submit(self, commands: Sequence[Command]) -> Replies:
        if not commands:
            return []
        if self._http is None:
            await self.connect()
        await self._know({c.symbol for c in commands if isinstance(c, PlaceOrder | ReplaceOrder)})
        known = self._instruments
        listing = {c.instrument.symbol: c.instrument for c in commands if isinstance(c, AddInstrument)}
        lookup = {**known, **listing}.get if listing else known.get
        body = dumps([encode_command(c, lookup) for c in commands])
        status, content = await self._request("POST", "/orders/batch", content=body)
        if status != 200:
            raise error_from_reply(status, content)
        data = loads(content)
        try:
            replies: Replies = [[decode_event(e, lookup) for e in reply["events"]] for reply in data["replies"]]
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"not a batch reply: {exc!r}") from None
        for events in replies:
            for event in events:
                if type(event) is InstrumentAdded:
                    assert isinstance(event, InstrumentAdded)
                    self._instruments[event.instrument.symbol] = event.instrument
        return replies

    async def submit_orders(self, batch: bytes) -> lean.Outcomes:
        status, content = await self._request("POST", "/orders/lean", content=batch, headers=_PROTOBUF_HEADERS)
        if status != 200:
            raise error_from_reply(status, content)
        return lean.decode_outcomes(content)

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        data = await self._post("/cancel-on-disconnect", {"grace_ms": grace_ms})
        return int(data["grace_ms"])

    # ----------------------------------------------------------- queries
    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        data = await self._get(f"/book/{quote(symbol, safe='')}", {"depth": depth})
        await self._know([symbol])
        instrument = self._instruments.get(symbol)
        if instrument is None:
            raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)
        return decode_depth(data, instrument)

    async def order(self, order_id: int) -> OrderView | None:
        status, content = await self._request("GET", f"/orders/{int(order_id)}")
        if status == 404:
            return None
        if status != 200:
            raise error_from_reply(status, content)
        data = loads(content)
        symbol = str(data.get("symbol", "")) if isinstance(data, dict) else ""
        await self._know([symbol])
        instrument = self._instruments.get(symbol)
        if instrument is None:
            raise MalformedMessage(f"order {order_id} names an unknown symbol {symbol!r}")
        return decode_order_view(data, instrument)

    async def open_orders(self, symbol: str = "") -> list[OrderView]:
        """This trader's open orders (all symbols, or one), oldest first."""
        data = await self._get("/orders", {"symbol": symbol} if symbol else None)
        orders = data["orders"]
        await self._know(str(o["symbol"]) for o in orders)
        return [decode_order_view(o, self._instruments[str(o["symbol"])]) for o in orders]

    async def instruments(self) -> list[Instrument]:
        return await self._fetch_instruments()

    async def stats(self) -> dict[str, Any]:
        data = await self._get("/stats")
        if not isinstance(data, dict):
            raise MalformedMessage("stats must be a JSON object")
        return data

    # ------------------------------------------------------- market data
    async def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        if self._http is None:
            await self.connect()
        await self._know(symbols)
        lookup = self._instruments.get
        url = f"{self.ws_url}/ws/marketdata?symbols={quote(','.join(symbols), safe=',')}&batch=1"  # arrays: what waited, at once
        try:
            ws = await ws_connect(url, open_timeout=5.0, max_size=16 * 1024 * 1024)
        except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
            raise NotConnected(f"not connected to turbo-dex at {self.url} ({type(exc).__name__}: {exc})") from exc
        try:
            async for message in ws:
                data = loads(message)
                if isinstance(data, list):
                    for item in data:
                        yield decode_market_data(item, lookup)
                    continue
                if isinstance(data, dict) and data.get("type") == "error":
                    raise error_from_reply(400, message.encode() if isinstance(message, str) else message)
                raise MalformedMessage("a batched market-data message must be a JSON array")
        except websockets.exceptions.ConnectionClosedError as exc:
            raise NotConnected(f"market-data connection to turbo-dex at {self.url} lost ({exc})") from exc
        finally:
            await ws.close()

    async def fills(self) -> AsyncIterator[Fill]:
        """This trader's own fills from now on, as maker and as taker (the WebSocket ``/ws/fills``)."""
        if self._http is None:
            await self.connect()
        try:
            # The header's bytes are the name's UTF-8 (websockets writes header text as Latin-1, byte for byte).
            header = {"x-trader": self.trader.encode().decode("latin-1")}
            if self._credential is not None:  # the upgrade is signed: GET, the path, no query, no body
                header.update(signed_headers(self._credential, "GET", self._prefix + "/ws/fills", "", b""))
            ws = await ws_connect(f"{self.ws_url}/ws/fills", additional_headers=header, open_timeout=5.0)
        except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
            raise NotConnected(f"not connected to turbo-dex at {self.url} ({type(exc).__name__}: {exc})") from exc
        try:
            async for message in ws:
                data = loads(message)
                if isinstance(data, dict) and data.get("type") == "error":
                    raise error_from_reply(400, message.encode() if isinstance(message, str) else message)
                if not isinstance(data, dict):
                    raise MalformedMessage("a fill must be a JSON object")
                await self._know([str(data.get("symbol"))])
                instrument = self._instruments.get(str(data.get("symbol")))
                if instrument is None:
                    raise MalformedMessage(f"a fill of an unknown symbol: {data.get('symbol')!r}")
                yield decode_fill(data, instrument)
        except websockets.exceptions.ConnectionClosedError as exc:
            raise NotConnected(f"fills connection to turbo-dex at {self.url} lost ({exc})") from exc
        finally:
            await ws.close()
