"""The ``exchange.v1.Exchange`` service: decode, submit to the gateway, encode. Nothing else.

``ExchangeService(gateway, settings).handlers()`` gives the method handlers
to register on a ``grpc.aio`` server (``server.py`` does it, with health
checking and reflection). Invariants:

* Identity: with ``--auth keys`` the call's ``Principal``, which
  ``auth.AuthInterceptor`` verified from the signed metadata before the
  servicer runs (``auth.PRINCIPAL``); the request handler acts for it (its
  trader, its role, its key's limits). With ``--auth off`` the ``x-trader``
  metadata names the acting trader, trusted (loopback only). Every order call
  (``Trade``, ``PlaceOrder``, ``CancelOrder``, ``ReplaceOrder``,
  ``SubmitBatch``, ``GetOrder``, ``Fills``, ``CancelOnDisconnect``) needs one,
  and the codec binds every command to it, whatever ``trader`` the message
  says. Missing: UNAUTHENTICATED.
* A unary call that does not decode, that the gateway refuses, or that is not
  allowed ends with the status of ``transports.codec.status`` and the
  serialized ``Error`` in the ``exchange-error-bin`` trailer (``errors.py``).
  Engine rejects are ``OrderRejected`` events in an OK reply, as the schema
  says. On the ``Trade`` stream every refusal is a ``ReplyBatch`` carrying the
  ``Error``, and the stream goes on (``trade_stream.py``).
* Requests are parsed by a deserializer that never raises: bytes that are not
  the request message become ``MalformedMessage`` (INVALID_ARGUMENT, or an
  ``Error`` reply on the stream) instead of an opaque INTERNAL from gRPC.
* ``add_instrument`` is refused (PERMISSION_DENIED, UNAUTHORIZED) unless the
  key has the admin role (``--auth off``: unless the server allows admin
  commands).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import DecodeError, Message

from engine import ExchangeError, MalformedMessage, NotConnected, Overloaded, RejectReason
from transports.codec.market_bytes import protobuf_batch_bytes, protobuf_bytes
from transports.codec.proto_codec import (
    decode_command,
    decode_error,
    encode_book,
    encode_fill,
    encode_instruments,
    encode_order_status,
    encode_reply,
    encode_stats,
    pb,
)
from transports.core.auth import Principal
from transports.core.fills import FillSubscription
from transports.core.gateway import Gateway
from transports.core.limits import MAX_DEPTH, Limits
from transports.core.marketdata import Subscription
from transports.core.requests import Acting, RequestHandler, check_trader
from transports.grpc.auth import PRINCIPAL
from transports.grpc.errors import Context, Unidentified, abort
from transports.grpc.lookup import InstrumentIndex
from transports.grpc.settings import TRADER_METADATA, TRADER_METADATA_BIN, GrpcServerSettings
from transports.grpc.trade_stream import TRANSPORT, Handle, TradeStream

M = TypeVar("M", bound=Message)

DEFAULT_BOOK_DEPTH = 10


def lenient(kind: type[M]) -> Callable[[bytes], M | MalformedMessage]:
    """A request deserializer that returns ``MalformedMessage`` instead of raising."""
    parse = kind.FromString
    name = kind.DESCRIPTOR.name

    def deserialize(data: bytes) -> M | MalformedMessage:
        try:
            return parse(data)
        except DecodeError:
            return MalformedMessage(f"not a valid {name} message")

    return deserialize


def trader_of(context: Context) -> str:
    """The acting trader named by the call's metadata: ``x-trader``, or ``x-trader-bin`` (UTF-8 bytes) for any name."""
    for key, value in context.invocation_metadata() or ():
        if key in (TRADER_METADATA, TRADER_METADATA_BIN) and value.strip():
            return check_trader(value)
    raise Unidentified("the x-trader metadata is required: it names the acting trader")


def principal_of(context: Context) -> Principal:
    """The principal ``auth.AuthInterceptor`` verified for this call (it set it in this call's task)."""
    principal = PRINCIPAL.get()
    if principal is None:  # a private method the interceptor does not know: a bug, refused rather than trusted
        raise Unidentified("this call carries no verified key")
    return principal


class ExchangeService:
    def __init__(self, gateway: Gateway, settings: GrpcServerSettings | None = None) -> None:
        self.gateway = gateway
        self.settings = settings if settings is not None else GrpcServerSettings()
        self.index = InstrumentIndex(gateway)
        self.requests = RequestHandler(gateway, TRANSPORT, Limits(), self.settings.allow_admin, auth=self.settings.auth)
        # Who a call acts for: the verified principal with keys, the x-trader metadata without.
        self.acting: Callable[[Context], Acting] = principal_of if self.settings.auth is not None else trader_of
        self._streams: set[TradeStream] = set()
        self._subscriptions: set[Subscription | FillSubscription] = set()
        self.shutting_down = False

    def handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """Method name -> handler, for ``server.add_registered_method_handlers(SERVICE_NAME, ...)``."""
        unary, out = grpc.unary_unary_rpc_method_handler, _serialize
        return {
            # Batches and subscriptions take raw bytes: the request handler checks their size and counts their
            # elements before it parses them (a single command is one message: gRPC's receive limit bounds it).
            "Trade": grpc.stream_stream_rpc_method_handler(self.trade, None, out),
            "Orders": grpc.stream_stream_rpc_method_handler(self.orders, None, None),
            "PlaceOrder": unary(self.place_order, lenient(pb.PlaceOrder), out),
            "CancelOrder": unary(self.cancel_order, lenient(pb.CancelOrder), out),
            "ReplaceOrder": unary(self.replace_order, lenient(pb.ReplaceOrder), out),
            "SubmitBatch": unary(self.submit_batch, None, out),
            "MarketData": grpc.unary_stream_rpc_method_handler(self.market_data, None, out),
            "MarketDataBatched": grpc.unary_stream_rpc_method_handler(self.market_data_batched, None, out),
            "Fills": grpc.unary_stream_rpc_method_handler(self.fills, lenient(pb.FillsRequest), out),
            "GetBook": unary(self.get_book, lenient(pb.BookRequest), out),
            "GetOrder": unary(self.get_order, lenient(pb.OrderStatusRequest), out),
            "GetInstruments": unary(self.get_instruments, lenient(pb.InstrumentsRequest), out),
            "GetStats": unary(self.get_stats, lenient(pb.StatsRequest), out),
            "CancelOnDisconnect": unary(self.cancel_on_disconnect, lenient(pb.CancelOnDisconnectRequest), out),
        }

    def shutdown(self) -> None:
        """Stop reading Trade streams (what was read is answered) and end market-data streams (UNAVAILABLE)."""
        self.shutting_down = True
        for stream in list(self._streams):
            stream.shutdown()
        for sub in list(self._subscriptions):
            sub.close()

    # ---------------------------------------------------------- commands
    async def trade(self, request_iterator: object, context: Context) -> None:
        """``CommandBatch`` in, ``ReplyBatch`` (every event) out."""
        requests = self.requests
        await self._stream(context, lambda trader: lambda data: requests.commands(data, trader))

    async def orders(self, request_iterator: object, context: Context) -> None:
        """Lean order entry: ``OrderBatch`` bytes in, ``OutcomeBatch`` bytes out."""
        requests = self.requests
        await self._stream(context, lambda trader: lambda data: requests.orders(data, trader))

    async def _stream(self, context: Context, handler_for: Callable[[Acting], Handle]) -> None:
        try:
            acting = self.acting(context)
            trader, _ = self.requests.acting(acting)
        except ExchangeError as exc:
            await abort(context, exc)
        stream = TradeStream(handler_for(acting), context, trader, max_inflight=self.settings.max_inflight)
        self._streams.add(stream)
        stream.shutting_down = self.shutting_down  # a stream that starts while the server stops ends at once
        try:
            await stream.run()
        finally:
            self._streams.discard(stream)

    async def place_order(self, request: pb.PlaceOrder | MalformedMessage, context: Context) -> pb.Reply:
        return await self._one(request, context)

    async def cancel_order(self, request: pb.CancelOrder | MalformedMessage, context: Context) -> pb.Reply:
        return await self._one(request, context)

    async def replace_order(self, request: pb.ReplaceOrder | MalformedMessage, context: Context) -> pb.Reply:
        return await self._one(request, context)

    async def _one(self, request: pb.PlaceOrder | pb.CancelOrder | pb.ReplaceOrder | MalformedMessage, context: Context) -> pb.Reply:
        gateway, requests = self.gateway, self.requests
        admitted = None
        try:
            acting = self.acting(context)
            admitted = requests.admit(acting)  # the key's rate and requests in flight (keys only)
            trader, _ = requests.acting(acting)
            if isinstance(request, MalformedMessage):
                raise request
            command = self.index.apply(lambda lookup: decode_command(request, lookup, trader))
            events = (await gateway.submit([command], TRANSPORT))[0]
        except ExchangeError as exc:
            await abort(context, exc)
        finally:
            requests.release(admitted)
        return self.index.apply(lambda lookup: encode_reply(events, lookup))

    async def submit_batch(self, request: bytes, context: Context) -> pb.ReplyBatch:
        try:
            acting = self.acting(context)
        except ExchangeError as exc:
            await abort(context, exc)
        reply = await self.requests.commands(request, acting)
        if reply.HasField("error"):
            await abort(context, decode_error(reply.error))
        return reply

    # ------------------------------------------------------- market data
    async def market_data(self, request: bytes, context: Context) -> None:
        """One ``MarketDataMessage`` per stream message (rpc MarketData, as foreign clients know it)."""
        lookup = self.gateway.instrument
        write = context.write

        async def send(sub: Subscription) -> None:
            async for item in sub:  # ends only when shutdown() closes it
                await write(protobuf_bytes(item, lookup))

        await self._market_stream(request, context, send)

    async def market_data_batched(self, request: bytes, context: Context) -> None:
        """Every update waiting for the subscriber in one ``MarketDataBatch`` (rpc MarketDataBatched).

        A write per update costs the server about as much as the update itself: with 100 subscribers at 500
        updates/s each, one write each fell behind. Batching what is waiting keeps a subscriber that keeps up
        at one update per message, and lets one that lags catch up in a few writes.
        """
        lookup = self.gateway.instrument
        write = context.write

        async def send(sub: Subscription) -> None:
            async for items in sub.batches():  # ends only when shutdown() closes it
                await write(protobuf_batch_bytes(items, lookup))

        await self._market_stream(request, context, send)

    async def _market_stream(self, request: bytes, context: Context, send: Callable[[Subscription], Awaitable[None]]) -> None:
        gateway = self.gateway
        try:
            if self.shutting_down:
                raise NotConnected("the server is shutting down")
            symbols = self.requests.market_data_symbols(request)
            try:
                sub = gateway.subscribe(symbols)
            except KeyError as exc:
                raise MalformedMessage(f"unknown symbol {exc.args[0]!r}", RejectReason.UNKNOWN_SYMBOL) from None
        except ExchangeError as exc:
            self.requests.refused(exc)
            await abort(context, exc)
        self._subscriptions.add(sub)
        try:
            await send(sub)
        finally:
            self._subscriptions.discard(sub)
            gateway.unsubscribe(sub)
        # Only shutdown closes a subscription: tell the client the server went away.
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")

    async def fills(self, request: pb.FillsRequest | MalformedMessage, context: Context) -> None:
        """The calling trader's own fills, as maker and as taker (``transports.core.fills``), until it leaves."""
        gateway = self.gateway
        try:
            if self.shutting_down:
                raise NotConnected("the server is shutting down")
            trader, _ = self.requests.acting(self.acting(context))
            if isinstance(request, MalformedMessage):
                raise request
        except ExchangeError as exc:
            self.requests.refused(exc)
            await abort(context, exc)
        sub = gateway.subscribe_fills(trader)
        self._subscriptions.add(sub)
        lookup = gateway.instrument
        try:
            async for fill in sub:
                await context.write(encode_fill(fill, lookup))
        finally:
            self._subscriptions.discard(sub)
            gateway.unsubscribe_fills(sub)
        if sub.overflowed:
            await abort(context, Overloaded("this fills stream fell behind: re-read your orders' status and subscribe again"))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")

    # ----------------------------------------------------------- queries
    async def get_book(self, request: pb.BookRequest | MalformedMessage, context: Context) -> pb.BookDepth:
        gateway = self.gateway
        try:
            if isinstance(request, MalformedMessage):
                raise request
            levels = min(request.depth or DEFAULT_BOOK_DEPTH, self.settings.max_book_depth, MAX_DEPTH)
            depth = gateway.depth(request.symbol, levels) if request.symbol else None
            if depth is None:
                raise MalformedMessage(f"unknown symbol {request.symbol!r}", RejectReason.UNKNOWN_SYMBOL)
        except ExchangeError as exc:
            await abort(context, exc)
        return encode_book(depth, gateway.instrument)

    async def get_order(self, request: pb.OrderStatusRequest | MalformedMessage, context: Context) -> pb.OrderStatusReply:
        gateway = self.gateway
        try:
            trader, _ = self.requests.acting(self.acting(context))
            if isinstance(request, MalformedMessage):
                raise request
        except ExchangeError as exc:
            await abort(context, exc)
        return encode_order_status(gateway.order_status(trader, request.order_id), gateway.instrument)

    async def cancel_on_disconnect(
        self, request: pb.CancelOnDisconnectRequest | MalformedMessage, context: Context
    ) -> pb.CancelOnDisconnectReply:
        try:
            acting = self.acting(context)
            if isinstance(request, MalformedMessage):
                raise request
            return self.requests.cancel_on_disconnect(request, acting)
        except ExchangeError as exc:
            await abort(context, exc)

    async def get_instruments(self, request: pb.InstrumentsRequest | MalformedMessage, context: Context) -> pb.InstrumentList:
        return encode_instruments(self.gateway.instruments)

    async def get_stats(self, request: pb.StatsRequest | MalformedMessage, context: Context) -> pb.Stats:
        return encode_stats(self.gateway.stats_dict())


def _serialize(message: Message | bytes) -> bytes:
    """A reply's bytes: a message serialized, or bytes already encoded (market data, encoded once for every subscriber)."""
    return message if isinstance(message, bytes) else message.SerializeToString()
