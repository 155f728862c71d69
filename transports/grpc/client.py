"""``GrpcClient``: the ``TraderClient`` for dex-grpc, over one HTTP/2 connection.

The server is ``url`` (``grpc://host:port``), else ``$DEX_GRPC_SERVER``, else
grpc://127.0.0.1:50051. ``connect()`` fetches the instruments once (tick and
lot sizes are needed to write and read decimal strings), with a deadline:
an unreachable server is ``NotConnected`` within ``connect_timeout``, never a
hang.

``submit`` goes over one long-lived bidirectional ``Trade`` stream, opened on
first use. Submits are pipelined: each one writes its ``CommandBatch`` with
the next ``batch_id`` and waits for the ``ReplyBatch`` carrying that id, so
many may be in flight at once (the server answers them in order). Queries
are unary calls; market data is the server stream ``MarketDataBatched``
(each message all that was waiting). Every call carries the ``x-trader``
metadata.

Authentication (docs/security.md, "gRPC"): a ``grpcs://`` URL connects with
TLS, trusting the CA named by ``ca`` (else the URL's ``?ca=PATH``, else the
credential's ``extra["grpc_ca"]``, else the system's roots). With a
``credential`` every private call is signed in its metadata
(``transports.grpc.auth.signed_metadata``): each unary call, and each
``Trade``/``Orders``/``Fills`` stream once when it opens. The trader is the
credential's. Public calls (instruments, book, stats, market data) are not
signed.

Errors (``engine`` hierarchy; never a grpc exception):

* ``NotConnected``: the server cannot be reached, or the stream broke. After
  a broken ``submit`` its commands may or may not have been applied; the next
  submit opens a new stream.
  A stream the server refused at once for its trader (a name outside the
  rule of ``check_trader``) raises that refusal (``MALFORMED_MESSAGE``) instead.
* ``Overloaded``: the gateway refused the batch whole; nothing applied; retry.
* ``MalformedMessage``: the server could not decode the input; ``reason``
  tells which rule (``UNKNOWN_SYMBOL``, ``INVALID_PRICE``, ...).
* ``ExchangeError`` with ``UNAUTHORIZED``: an operator command not allowed;
  ``UNAUTHENTICATED``: the key was refused (its cause in the message);
  ``RATE_LIMITED``: over the key's limits, nothing applied.

Engine rejects are not errors: they come back as ``OrderRejected`` events.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar

import grpc
import grpc.aio

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
    RejectReason,
)
from transports.codec import lean
from transports.codec.proto_codec import (
    decode_book,
    decode_error,
    decode_fill,
    decode_instruments,
    decode_market_data,
    decode_order_status,
    decode_replies,
    decode_stats,
    encode_commands,
    pb,
)
from transports.core.client import Replies, TraderClient
from transports.core.fills import Fill
from transports.core.keys import Credential
from transports.core.marketdata import MarketData
from transports.grpc.auth import EXTRA_CA, Metadata, channel_credentials, signed_metadata
from transports.grpc.errors import error_from_rpc
from transports.grpc.settings import SERVICE_NAME, client_options, client_url, parse_grpc_url, trader_metadata

_PATH = f"/{SERVICE_NAME}/"

TradeCall = grpc.aio.StreamStreamCall[Any, Any]  # Trade: CommandBatch -> ReplyBatch; Orders: OrderBatch bytes -> OutcomeBatch


class GrpcClient(TraderClient):
    transport: ClassVar[str] = "grpc"

    def __init__(
        self,
        trader: str,
        url: str | None = None,
        *,
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
        credential: Credential | None = None,
        ca: str | None = None,
    ) -> None:
        super().__init__(credential.trader if credential is not None else trader)
        self.url = client_url(url)
        self.connect_timeout = connect_timeout
        self.timeout = timeout  # deadline of each unary call, and how late a Trade reply may be
        self.credential = credential
        self.ca = ca if ca is not None else (credential.extra.get(EXTRA_CA) if credential is not None else None)
        self._metadata: Metadata = (trader_metadata(self.trader),)
        self._channel: grpc.aio.Channel | None = None
        self._instruments: dict[str, Instrument] = {}
        self._stream: _TradeStream | None = None
        self._lean: _TradeStream | None = None

    # ----------------------------------------------------------- lifecycle
    async def connect(self) -> None:
        if self._channel is not None:
            return
        try:
            address = parse_grpc_url(self.url)
        except ValueError as exc:
            raise NotConnected(f"not connected to the gRPC server at {self.url}: {exc}") from None
        if address.tls:
            try:
                tls = channel_credentials(address.ca or self.ca)
            except OSError as exc:
                raise NotConnected(f"not connected to the gRPC server at {self.url}: cannot read its CA ({exc})") from None
            channel = grpc.aio.secure_channel(address.target, tls, options=client_options())
        else:
            channel = grpc.aio.insecure_channel(address.target, options=client_options())
        self._channel = channel
        unary = channel.unary_unary
        self._get_book = unary(_PATH + "GetBook", pb.BookRequest.SerializeToString, pb.BookDepth.FromString)
        self._get_order = unary(_PATH + "GetOrder", pb.OrderStatusRequest.SerializeToString, pb.OrderStatusReply.FromString)
        self._get_instruments = unary(_PATH + "GetInstruments", pb.InstrumentsRequest.SerializeToString, pb.InstrumentList.FromString)
        self._get_stats = unary(_PATH + "GetStats", pb.StatsRequest.SerializeToString, pb.Stats.FromString)
        self._cancel_on_disconnect = unary(
            _PATH + "CancelOnDisconnect", pb.CancelOnDisconnectRequest.SerializeToString, pb.CancelOnDisconnectReply.FromString
        )
        self._market_data = channel.unary_stream(
            _PATH + "MarketDataBatched", pb.MarketDataRequest.SerializeToString, pb.MarketDataBatch.FromString
        )
        self._fills = channel.unary_stream(_PATH + "Fills", pb.FillsRequest.SerializeToString, pb.Fill.FromString)
        self._trade = channel.stream_stream(_PATH + "Trade", pb.CommandBatch.SerializeToString, pb.ReplyBatch.FromString)
        self._orders: grpc.aio.StreamStreamMultiCallable[bytes, pb.OutcomeBatch] = channel.stream_stream(
            _PATH + "Orders", None, pb.OutcomeBatch.FromString
        )
        try:
            await self._fetch_instruments(self.connect_timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._stop_heartbeat()
        for stream in (self._stream, self._lean):
            if stream is not None:
                stream.close(NotConnected(f"the client of the gRPC server at {self.url} was closed"))
        self._stream = self._lean = None
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def _ready(self) -> None:
        if self._channel is None:
            await self.connect()

    def _signed(self, method: str) -> Metadata:
        """The metadata of one private call of ``method`` (its name): signed when this client holds a key."""
        if self.credential is None:
            return self._metadata
        return (*self._metadata, *signed_metadata(self.credential, _PATH + method))

    # ------------------------------------------------------------- unary
    async def _fetch_instruments(self, timeout: float | None = None) -> list[Instrument]:
        try:
            reply = await self._get_instruments(pb.InstrumentsRequest(), timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.url) from None
        instruments = decode_instruments(reply)
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
        await self._ready()
        stream = self._stream
        if stream is None or stream.broken is not None:
            stream = self._stream = _TradeStream(self._trade(metadata=self._signed("Trade")), self.url, self.timeout)
        batch_id = stream.next_id()
        lookup = self._instruments.get
        listing: dict[str, Instrument] = {}
        try:
            batch = encode_commands(commands, lookup, batch_id)
        except MalformedMessage as exc:
            if exc.reason is not RejectReason.UNKNOWN_SYMBOL:
                raise
            # A symbol this client has not seen: listed since connect(), or by this very batch.
            await self._fetch_instruments()
            listing = {c.instrument.symbol: c.instrument for c in commands if isinstance(c, AddInstrument)}
            lookup = {**self._instruments, **listing}.get
            batch = encode_commands(commands, lookup, batch_id)
        replies = decode_replies(await stream.send(batch_id, batch), lookup)
        if listing:
            for events in replies:
                for event in events:
                    if isinstance(event, InstrumentAdded):
                        self._instruments[event.instrument.symbol] = event.instrument
        return replies

    async def submit_orders(self, batch: bytes) -> lean.Outcomes:
        await self._ready()
        stream = self._lean
        if stream is None or stream.broken is not None:
            stream = self._lean = _TradeStream(self._orders(metadata=self._signed("Orders")), self.url, self.timeout)
        batch_id = stream.next_id()
        reply: pb.OutcomeBatch = await stream.send(batch_id, lean.with_batch_id(batch, batch_id))
        if reply.HasField("error"):
            raise decode_error(reply.error)
        return lean.Outcomes(reply)

    # ----------------------------------------------------------- queries
    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        await self._ready()
        try:
            reply = await self._get_book(pb.BookRequest(symbol=symbol, depth=depth), timeout=self.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.url) from None
        await self._know([symbol])
        return decode_book(reply, self._instruments.get)

    async def order(self, order_id: int) -> OrderView | None:
        await self._ready()
        request = pb.OrderStatusRequest(trader=self.trader, order_id=int(order_id))
        try:
            reply = await self._get_order(request, timeout=self.timeout, metadata=self._signed("GetOrder"))
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.url) from None
        if reply.HasField("order"):
            await self._know([reply.order.symbol])
        return decode_order_status(reply, self._instruments.get)

    async def instruments(self) -> list[Instrument]:
        await self._ready()
        return await self._fetch_instruments()

    async def stats(self) -> dict[str, Any]:
        await self._ready()
        try:
            reply = await self._get_stats(pb.StatsRequest(), timeout=self.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.url) from None
        return decode_stats(reply)

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        await self._ready()
        request = pb.CancelOnDisconnectRequest(grace_ms=grace_ms)
        try:
            reply = await self._cancel_on_disconnect(request, timeout=self.timeout, metadata=self._signed("CancelOnDisconnect"))
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.url) from None
        return int(reply.grace_ms)

    # ------------------------------------------------------- market data
    async def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        await self._ready()
        await self._know(symbols)
        lookup = self._instruments.get
        call = self._market_data(pb.MarketDataRequest(symbols=list(symbols)), metadata=self._metadata)
        try:
            async for batch in call:
                for message in batch.items:
                    yield decode_market_data(message, lookup)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.url) from None
        finally:
            call.cancel()

    async def fills(self) -> AsyncIterator[Fill]:
        """This trader's own fills from now on, as maker and as taker (``rpc Fills``; transports.core.fills)."""
        await self._ready()
        call = self._fills(pb.FillsRequest(), metadata=self._signed("Fills"))
        try:
            async for message in call:
                await self._know([message.symbol])
                yield decode_fill(message, self._instruments.get)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.url) from None
        finally:
            call.cancel()


# A stream ended with one of these never started: the server refused the call's identity (no or a bad trader).
_REFUSED_CALL = (RejectReason.MALFORMED_MESSAGE, RejectReason.UNAUTHORIZED, RejectReason.UNAUTHENTICATED, RejectReason.RATE_LIMITED)


class _TradeStream:
    """One ``Trade`` or ``Orders`` call: one writer task sends batches in submit order; replies find their waiter by ``batch_id``.

    A reply without a ``batch_id`` (the error for a batch that did not parse, so its id could not be read) goes to
    the oldest unanswered batch: the server answers in arrival order.

    Writes go through a task of their own because gRPC allows one write in
    flight per call and cancels the whole call when a write is cancelled: a
    caller that gives up waiting must not break the stream for the others.
    Replies come in order, so one that is ``reply_timeout`` late holds up all
    the others: the stream is then given up (``NotConnected``) and the next
    submit opens a new one.
    """

    def __init__(self, call: TradeCall, url: str, reply_timeout: float) -> None:
        self.call = call
        self.url = url
        self.reply_timeout = reply_timeout
        self.broken: ExchangeError | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._outbox: deque[Any] = deque()
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._write(), name=f"grpc-trade-batches {url}")
        self._reader = loop.create_task(self._read(), name=f"grpc-trade-replies {url}")

    def next_id(self) -> int:
        return next(self._ids)

    async def send(self, batch_id: int, batch: Any) -> Any:
        if self.broken is not None:
            raise self.broken
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting[batch_id] = future
        self._outbox.append(batch)
        self._wake.set()
        timer = loop.call_later(self.reply_timeout, self._late, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _late(self, future: asyncio.Future[Any]) -> None:
        if not future.done():
            self._fail(
                NotConnected(f"no reply from the gRPC server at {self.url} within {self.reply_timeout:g}s; the Trade stream is given up")
            )

    async def _write(self) -> None:
        outbox = self._outbox
        wake = self._wake
        write = self.call.write
        try:
            while True:
                if not outbox:
                    wake.clear()
                    await wake.wait()
                    continue
                await write(outbox.popleft())
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
            self._fail(self._broken_by(exc))

    async def _read(self) -> None:
        waiting = self._waiting
        try:
            async for reply in self.call:
                if reply.batch_id:
                    future = waiting.pop(reply.batch_id, None)
                else:  # a batch the server could not read carries no id: replies come in order, so it is the oldest
                    future = waiting.pop(next(iter(waiting))) if waiting else None
                if future is not None and not future.done():
                    future.set_result(reply)
            self._fail(NotConnected(f"the gRPC server at {self.url} ended the Trade stream"))
        except grpc.aio.AioRpcError as exc:
            self._fail(self._broken_by(exc))

    def _broken_by(self, exc: BaseException) -> ExchangeError:
        if isinstance(exc, grpc.aio.AioRpcError):
            error = error_from_rpc(exc, self.url)
            if isinstance(error, NotConnected) or error.reason in _REFUSED_CALL:
                return error  # the server refused the call itself (its trader): nothing of it was applied
            return NotConnected(f"the Trade stream to the gRPC server at {self.url} broke: {error}")
        return NotConnected(f"the Trade stream to the gRPC server at {self.url} broke ({type(exc).__name__}: {exc})")

    def _fail(self, error: ExchangeError) -> None:
        if self.broken is None:
            self.broken = error
        self._outbox.clear()
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(self.broken)
        self.call.cancel()
        self._writer.cancel()

    def close(self, error: NotConnected) -> None:
        self._fail(error)
        self._reader.cancel()
