"""``FixClient``: the ``TraderClient`` for ``dex-fix``, one FIX 4.4 session over one TCP connection.

The server is ``url``, else ``$DEX_FIX_SERVER``, else fix://127.0.0.1:9878.
``connect()`` logs on as SenderCompID = this client's trader (Password 554
from ``password``, else ``$DEX_FIX_PASSWORD``, if set), with
ResetSeqNumFlag=Y unless told to keep the stored numbers (``reset=False``:
the client then starts from ``next_out``/``next_in``), and reads the
instruments with a SecurityListRequest (x): tick and lot sizes turn the
engine's integers into the decimal strings FIX carries.

Invariants:

* The server answers a connection's requests in order and marks every
  message of an answer with DEX_REPLY (20002, ``Y`` on the last), so
  requests may be pipelined: each waits for its own answer in a FIFO.
  Unsolicited messages (a maker's fill, market data) carry no mark.
* Answers become engine events again (``OrderAccepted``, ``TradeExecuted``
  with this trader as taker, ``OrderCancelled``, ``OrderReplaced``,
  ``OrderRejected`` with the stable reason of DEX_REASON), without engine
  sequence numbers (0) or counterparties: FIX does not carry them.
* Never hang: an answer not in within ``timeout`` fails with
  ``NotConnected`` (the command may or may not have been applied).
* The session layer is answered in the reader: Heartbeat for a TestRequest,
  one SequenceReset-GapFill for a ResendRequest.

What FIX has no message for travels in our own MsgTypes (``protocol``): the
server's statistics (U1/U2), cancel on disconnect (U3/U4) and listing an
instrument (U5/U6); a retry-safe ``request_id`` rides on the cancel, replace
or mass cancel as DEX_REQUEST_ID.

Authentication: given a ``credential`` (a key of ``dex-keys``), the Logon is
signed (``session``'s docstring: Username 553, RawData 95/96 over SendingTime,
MsgSeqNum and the CompIDs, DEX_RECV_WINDOW) and the SenderCompID is the key's
trader; no password is sent. A Logout naming UNAUTHENTICATED or UNAUTHORIZED
(a refused Logon, a key revoked during the session) fails what is pending
with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

import orjson
import simplefix

from engine import (
    AddInstrument,
    BookDelta,
    BookDepth,
    CancelOrder,
    CancelReason,
    Command,
    Event,
    ExchangeError,
    Instrument,
    InstrumentAdded,
    L2Level,
    MalformedMessage,
    MassCancel,
    NotConnected,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderType,
    OrderView,
    Overloaded,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    Side,
    TimeInForce,
    TradeExecuted,
)
from transports.codec.decimals import DecimalConverter, converter
from transports.codec.market_messages import BookSnapshot, Gap, MarketData, MarketUpdate, PublicTrade
from transports.core.client import Replies, TraderClient
from transports.core.keys import Credential
from transports.core.signing import DEFAULT_WINDOW_MS, now_ms, sign
from transports.fix import protocol as p
from transports.fix.settings import MAX_MESSAGE_BYTES, READ_BYTES, SERVER_COMP_ID, client_url, parse_url

PASSWORD_ENV = "DEX_FIX_PASSWORD"
_STATUS = {
    p.OrdStatus.NEW: OrderStatus.NEW,
    p.OrdStatus.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    p.OrdStatus.FILLED: OrderStatus.FILLED,
    p.OrdStatus.CANCELED: OrderStatus.CANCELLED,
}
_CANCEL_NAMES = {r.name: r for r in CancelReason}


class FixClient(TraderClient):
    transport: ClassVar[str] = "fix"

    def __init__(
        self,
        trader: str,
        url: str | None = None,
        *,
        password: str | None = None,
        timeout: float = 30.0,
        heartbeat_s: int = 30,
        reset: bool = True,
        comp_id: str = SERVER_COMP_ID,
        credential: Credential | None = None,
    ) -> None:
        if credential is not None:
            trader = credential.trader
        super().__init__(trader)
        self.credential = credential
        self.url = client_url(url)
        self.password = password if password is not None else os.environ.get(PASSWORD_ENV)
        self.timeout = timeout
        self.heartbeat_s = heartbeat_s
        self.reset = reset
        self.comp_id = comp_id
        self.next_out = 1
        self.next_in = 1
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._answers: deque[asyncio.Future[list[simplefix.FixMessage]]] = deque()
        self._partial: list[simplefix.FixMessage] = []
        self._logon: asyncio.Future[simplefix.FixMessage] | None = None
        self._streams: dict[str, asyncio.Queue[simplefix.FixMessage | None]] = {}
        self._ids = itertools.count(1)
        # ClOrdIDs this client makes up (for a command without one) differ from any other client's of the trader,
        # in this process or after a restart: the engine refuses a client order id used before.
        self._id_prefix = f"{trader[:20]}-{os.urandom(4).hex()}"
        self._instruments: dict[str, Instrument] = {}
        self.logout_text = ""
        self.logout_reason: RejectReason | None = None

    # ----------------------------------------------------------- lifecycle
    async def connect(self) -> None:
        if self._writer is not None:
            return
        address = parse_url(self.url)
        try:
            self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(address.host, address.port), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise NotConnected(f"not connected to the FIX server at {self.url} ({exc})") from None
        if self.reset:
            self.next_out = self.next_in = 1
        self._logon = asyncio.get_running_loop().create_future()
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())
        pairs: list[tuple[int, object]] = [(p.ENCRYPT_METHOD, 0), (p.HEART_BT_INT, self.heartbeat_s)]
        if self.reset:
            pairs.append((p.RESET_SEQ_NUM_FLAG, "Y"))
        sent = ""
        if self.credential is not None:
            sent = self._signed_logon(pairs)
        elif self.password is not None:
            pairs.append((p.PASSWORD, self.password))
        self._send(p.LOGON, pairs, sent)
        try:
            await asyncio.wait_for(asyncio.shield(self._logon), self.timeout)
        except (TimeoutError, ExchangeError) as exc:
            await self.close()
            if self.logout_reason is not None:  # the server said why (a name outside the rule, a wrong password)
                raise ExchangeError(f"FIX logon refused: {self.logout_text}", self.logout_reason) from None
            raise NotConnected(f"FIX logon to {self.url} refused: {self.logout_text or exc}") from None
        await self._load_instruments()

    def _signed_logon(self, pairs: list[tuple[int, object]]) -> str:
        """Add the key's proof to the Logon's ``pairs``; the SendingTime it signed (the Logon must carry that one)."""
        assert self.credential is not None
        stamp = now_ms()
        moment = dt.datetime.fromtimestamp(stamp // 1000, dt.UTC).replace(microsecond=stamp % 1000 * 1000)
        signature = sign(self.credential, p.logon_payload(stamp, DEFAULT_WINDOW_MS, self.next_out, self.trader, self.comp_id))
        pairs += [
            (p.USERNAME, self.credential.key_id),
            (p.DEX_RECV_WINDOW, DEFAULT_WINDOW_MS),
            (p.RAW_DATA_LENGTH, len(signature)),
            (p.RAW_DATA, signature),
        ]
        return p.sending_time(moment)

    async def close(self) -> None:
        """Wait (up to ``timeout``) for the answers still due, then Logout and close: a request in flight is answered,
        not abandoned (the server applies it either way)."""
        self._stop_heartbeat()
        pending = [future for future in self._answers if not future.done()]
        if pending and self._writer is not None:
            await asyncio.wait(pending, timeout=self.timeout)
        writer, self._writer = self._writer, None
        if writer is None:
            return
        with contextlib.suppress(Exception):
            writer.write(self._encode(p.LOGOUT, []))
            await asyncio.wait_for(writer.drain(), 1.0)
        if self._read_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._read_task), 1.0)
            self._read_task.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        self._fail_all(NotConnected("the FIX session is closed"))

    def writer_abort(self) -> None:
        """Drop the connection at once, with no Logout (what a crash or a cut cable looks like to the server)."""
        self._stop_heartbeat()
        if self._writer is not None:
            self._writer.transport.abort()

    def _fail_all(self, error: ExchangeError) -> None:
        while self._answers:
            future = self._answers.popleft()
            if not future.done():
                future.set_exception(error)
        if self._logon is not None and not self._logon.done():
            self._logon.set_exception(error)
        for queue in self._streams.values():
            queue.put_nowait(None)

    # ------------------------------------------------------------- wire
    def _encode(
        self, msg_type: bytes, pairs: Sequence[tuple[int, object]], seq: int | None = None, poss_dup: bool = False, sent: str = ""
    ) -> bytes:
        message = p.new_message(msg_type)
        for tag, value in pairs:
            message.append_pair(tag, value)
        number = self.next_out if seq is None else seq
        if seq is None:
            self.next_out += 1
        return p.encode(message, self.trader, self.comp_id, number, poss_dup, sent)

    def _send(self, msg_type: bytes, pairs: Sequence[tuple[int, object]], sent: str = "") -> None:
        if self._writer is None or self._writer.transport.is_closing():
            raise NotConnected(f"not connected to the FIX server at {self.url}")
        self._writer.write(self._encode(msg_type, pairs, sent=sent))

    async def _request(self, msg_type: bytes, pairs: Sequence[tuple[int, object]]) -> list[simplefix.FixMessage]:
        await self.connect()
        future: asyncio.Future[list[simplefix.FixMessage]] = asyncio.get_running_loop().create_future()
        self._send(msg_type, pairs)
        self._answers.append(future)
        return await self._wait(future)

    async def _wait(self, future: asyncio.Future[list[simplefix.FixMessage]]) -> list[simplefix.FixMessage]:
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            raise NotConnected(f"no answer from the FIX server at {self.url} within {self.timeout} s") from None

    async def _read_loop(self) -> None:
        frames = p.FrameReader(MAX_MESSAGE_BYTES * 64)
        reader = self._reader
        assert reader is not None
        try:
            while True:
                data = await reader.read(READ_BYTES)
                if not data:
                    break
                frames.feed(data)
                for frame in frames.frames():
                    if frame.message is not None and not frame.problem:
                        self._on_message(frame.message)
        except (ConnectionError, p.FrameError):
            pass
        finally:
            if self.logout_reason in (RejectReason.UNAUTHENTICATED, RejectReason.UNAUTHORIZED):  # refused for who it is
                self._fail_all(ExchangeError(f"the FIX server ended the session: {self.logout_text}", self.logout_reason))
            else:
                self._fail_all(NotConnected(f"the FIX server at {self.url} closed the session {self.logout_text}".strip()))

    def _on_message(self, message: simplefix.FixMessage) -> None:
        msg_type = message.get(p.MSG_TYPE)
        seq = int(message.get(p.MSG_SEQ_NUM) or b"0")
        if msg_type == p.SEQUENCE_RESET:
            self.next_in = max(self.next_in, int(message.get(p.NEW_SEQ_NO) or b"0"))
            return
        self.next_in = max(self.next_in, seq + 1)
        if msg_type == p.LOGON and self._logon is not None and not self._logon.done():
            self._logon.set_result(message)
        elif msg_type == p.TEST_REQUEST:
            self._send(p.HEARTBEAT, [(p.TEST_REQ_ID, message.get(p.TEST_REQ_ID) or b"")])
        elif msg_type == p.RESEND_REQUEST:
            begin = int(message.get(p.BEGIN_SEQ_NO) or b"1")
            if self._writer is not None:
                self._writer.write(self._encode(p.SEQUENCE_RESET, [(p.GAP_FILL_FLAG, "Y"), (p.NEW_SEQ_NO, self.next_out)], begin, True))
        elif msg_type == p.LOGOUT:
            self.logout_text = (message.get(p.TEXT) or b"").decode(errors="replace")
            if message.get(p.DEX_REASON) is not None:
                self.logout_reason = p.reject_reason(message.get(p.DEX_REASON))
        elif message.get(p.DEX_REPLY) is not None:
            self._partial.append(message)
            if message.get(p.DEX_REPLY) == b"Y":
                answer, self._partial = self._partial, []
                if self._answers:
                    future = self._answers.popleft()
                    if not future.done():
                        future.set_result(answer)
        elif msg_type in (p.MARKET_DATA_SNAPSHOT, p.MARKET_DATA_INCREMENTAL):
            queue = self._streams.get((message.get(p.MD_REQ_ID) or b"").decode(errors="replace"))
            if queue is not None:
                queue.put_nowait(message)

    # ------------------------------------------------------------ trading
    def _conv(self, symbol: str) -> DecimalConverter:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
        return converter(instrument)

    async def submit(self, commands: Sequence[Command]) -> Replies:
        await self.connect()
        futures = []
        try:
            for index, command in enumerate(commands):
                msg_type, pairs = await self._encode_command(command)
                if index == 0 and len(commands) > 1:
                    pairs.append((p.DEX_BATCH, len(commands)))  # applied whole or refused whole, like every wire's batch
                future: asyncio.Future[list[simplefix.FixMessage]] = asyncio.get_running_loop().create_future()
                self._send(msg_type, pairs)
                self._answers.append(future)
                futures.append((command, future))
            replies = [self._events(command, await self._wait(future)) for command, future in futures]
        except BaseException:
            for _, unread in futures:  # no one reads these answers now: the error raised here says what happened
                unread.add_done_callback(_retrieved)
            raise
        _raise_if_refused_whole(replies)
        return replies

    async def _encode_command(self, command: Command) -> tuple[bytes, list[tuple[int, object]]]:
        # A retry-safe request (its request id) keeps its ClOrdID, so its repeated answer is the same answer.
        request_id = getattr(command, "request_id", 0)
        cl_ord_id = f"{self.trader[:20]}-r{request_id}" if request_id else f"{self._id_prefix}-{next(self._ids)}"
        if isinstance(command, PlaceOrder):
            conv = self._conv(command.symbol)
            pairs: list[tuple[int, object]] = [
                (p.CL_ORD_ID, command.client_order_id or cl_ord_id),
                (p.SYMBOL, command.symbol),
                (p.SIDE, p.SIDE_CODES[command.side]),
                (p.ORDER_QTY, conv.format_qty(command.qty)),
                (p.ORD_TYPE, p.ORD_TYPE_CODES[command.order_type]),
                (p.TIME_IN_FORCE, p.TIF_CODES[command.tif]),
                (p.TRANSACT_TIME, p.sending_time()),
            ]
            if command.price or command.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                pairs.append((p.PRICE, conv.format_price(command.price)))
            if command.stop_price or command.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT):
                pairs.append((p.STOP_PX, conv.format_price(command.stop_price)))
            if command.post_only:
                pairs.append((p.EXEC_INST, p.POST_ONLY_EXEC_INST))
            return p.NEW_ORDER_SINGLE, pairs
        if isinstance(command, CancelOrder):
            pairs = [(p.CL_ORD_ID, cl_ord_id), *_target(command.order_id, command.client_order_id)]
            return p.ORDER_CANCEL_REQUEST, pairs + _request_id(command.request_id)
        if isinstance(command, ReplaceOrder):
            return p.ORDER_CANCEL_REPLACE_REQUEST, await self._replace_pairs(command, cl_ord_id) + _request_id(command.request_id)
        if isinstance(command, MassCancel):
            scope = (
                [(p.MASS_CANCEL_REQUEST_TYPE, "1"), (p.SYMBOL, command.symbol)] if command.symbol else [(p.MASS_CANCEL_REQUEST_TYPE, "7")]
            )
            pairs = [(p.CL_ORD_ID, cl_ord_id), *scope, (p.TRANSACT_TIME, p.sending_time()), *_request_id(command.request_id)]
            return p.ORDER_MASS_CANCEL_REQUEST, pairs
        if isinstance(command, AddInstrument):
            listing = orjson.dumps(command.instrument.to_dict())
            return p.DEX_ADD_INSTRUMENT, [(p.RAW_DATA_LENGTH, len(listing)), (p.RAW_DATA, listing)]
        raise MalformedMessage(f"{type(command).__name__} is not sent over FIX")

    async def _replace_pairs(self, command: ReplaceOrder, cl_ord_id: str) -> list[tuple[int, object]]:
        """FIX's OrderQty counts what is filled: read the order first (the engine's new_qty is what stays open)."""
        view = await self._status(command.order_id, command.client_order_id)
        symbol = command.symbol or (view.symbol if view else "")
        if view is None or symbol not in self._instruments:  # no such open order: the server says so (UNKNOWN_ORDER)
            target = _target(command.order_id, command.client_order_id)
            return [(p.CL_ORD_ID, cl_ord_id), *target, (p.SIDE, "1"), (p.ORDER_QTY, "0"), (p.ORD_TYPE, "2")]
        conv = self._conv(symbol)
        filled = view.filled
        open_qty = command.new_qty or view.remaining
        pairs: list[tuple[int, object]] = [
            (p.CL_ORD_ID, cl_ord_id),
            *_target(command.order_id, command.client_order_id),
            (p.SYMBOL, symbol),
            (p.SIDE, p.SIDE_CODES[view.side]),
            (p.ORDER_QTY, conv.format_qty(filled + open_qty)),
            (p.ORD_TYPE, "2"),
            (p.TRANSACT_TIME, p.sending_time()),
        ]
        if command.new_price:
            pairs.append((p.PRICE, conv.format_price(command.new_price)))
        elif view.price:
            pairs.append((p.PRICE, conv.format_price(view.price)))
        return pairs

    def _events(self, command: Command, answer: list[simplefix.FixMessage]) -> list[Event]:
        events: list[Event] = []
        for message in answer:
            event = self._event(command, message)
            if event is not None:
                events.append(event)
        return events

    def _event(self, command: Command, message: simplefix.FixMessage) -> Event | None:
        msg_type = message.get(p.MSG_TYPE)
        get = _reader(message)
        if msg_type in (p.ORDER_CANCEL_REJECT, p.REJECT) or (msg_type == p.EXECUTION_REPORT and get(p.EXEC_TYPE) == p.ExecType.REJECTED):
            target = get(p.ORDER_ID)
            return OrderRejected(
                0, self.trader, get(p.CL_ORD_ID) if msg_type == p.EXECUTION_REPORT else getattr(command, "client_order_id", ""),
                getattr(command, "symbol", ""), p.reject_reason(message.get(p.DEX_REASON)), get(p.TEXT),
                int(target) if target.isdigit() else 0,
            )  # fmt: skip
        if msg_type == p.DEX_INSTRUMENT_ADDED:
            instrument = Instrument.from_dict(orjson.loads(message.get(p.RAW_DATA) or b"{}"))
            self._instruments[instrument.symbol] = instrument
            return InstrumentAdded(0, instrument)
        if msg_type != p.EXECUTION_REPORT:
            return None
        symbol = get(p.SYMBOL)
        conv = self._conv(symbol)
        exec_type = get(p.EXEC_TYPE)
        order_id = int(get(p.ORDER_ID) or "0")
        side = p.SIDES[get(p.SIDE).encode()]
        price = conv.parse_price(get(p.PRICE)) if get(p.PRICE) else 0
        order_qty = conv.parse_qty(get(p.ORDER_QTY))
        leaves = conv.parse_qty(get(p.LEAVES_QTY))
        cum = conv.parse_qty(get(p.CUM_QTY))
        if exec_type == p.ExecType.NEW:
            order_type = p.ORD_TYPES[get(p.ORD_TYPE).encode()]
            tif = p.TIFS.get(get(p.TIME_IN_FORCE).encode(), TimeInForce.GTC)
            stop = command.stop_price if isinstance(command, PlaceOrder) else 0
            return OrderAccepted(0, order_id, self.trader, get(p.CL_ORD_ID), symbol, side, order_type, tif, price, order_qty, stop)
        if exec_type == p.ExecType.TRADE:
            return TradeExecuted(
                0, int(get(p.TRD_MATCH_ID) or 0), symbol, conv.parse_price(get(p.LAST_PX)), conv.parse_qty(get(p.LAST_QTY)), side,
                0, "", "", 0, order_id, self.trader, get(p.CL_ORD_ID), leaves,
            )  # fmt: skip
        if exec_type == p.ExecType.CANCELED:
            reason = _CANCEL_NAMES.get(get(p.TEXT), CancelReason.USER)
            cid = get(p.ORIG_CL_ORD_ID) or get(p.CL_ORD_ID)
            return OrderCancelled(0, order_id, self.trader, cid, symbol, reason, order_qty - cum - leaves, leaves)
        if exec_type == p.ExecType.REPLACED:
            kept = get(p.DEX_PRIORITY_KEPT) == "Y"
            return OrderReplaced(0, order_id, self.trader, get(p.CL_ORD_ID), symbol, side, price, leaves, kept)
        return None

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        (answer,) = await self._request(p.DEX_CANCEL_ON_DISCONNECT, [(p.DEX_GRACE_MS, grace_ms)])
        if answer.get(p.MSG_TYPE) != p.DEX_CANCEL_ON_DISCONNECT_ACK:
            raise _refusal(answer)
        return int(answer.get(p.DEX_GRACE_MS) or b"0")

    # ------------------------------------------------------------ queries
    async def _load_instruments(self) -> None:
        (answer,) = await self._request(p.SECURITY_LIST_REQUEST, [(p.SECURITY_REQ_ID, "1"), (p.SECURITY_LIST_REQUEST_TYPE, "4")])
        found: dict[str, Instrument] = {}
        entries = _entries(answer)
        for entry in entries:
            symbol = entry[p.SYMBOL]
            found[symbol] = Instrument.create(
                symbol, entry.get(p.MIN_PRICE_INCREMENT, "1"), entry.get(p.ROUND_LOT, "1"),
                min_qty=entry.get(p.MIN_TRADE_VOL), max_qty=entry.get(p.MAX_TRADE_VOL),
                price_band_bps=int(entry.get(p.DEX_PRICE_BAND_BPS, "0")), reference_price=entry.get(p.DEX_REFERENCE_PRICE),
            )  # fmt: skip
        self._instruments = found

    async def instruments(self) -> list[Instrument]:
        await self.connect()
        return list(self._instruments.values())

    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        await self.connect()
        request_id = f"book-{next(self._ids)}"
        pairs = [(p.MD_REQ_ID, request_id), (p.SUBSCRIPTION_REQUEST_TYPE, "0"), (p.MARKET_DEPTH, depth), (p.NO_RELATED_SYM, 1)]
        (answer,) = await self._request(p.MARKET_DATA_REQUEST, [*pairs, (p.SYMBOL, symbol)])
        if answer.get(p.MSG_TYPE) != p.MARKET_DATA_SNAPSHOT:
            raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
        return self._snapshot(answer).depth

    def _snapshot(self, message: simplefix.FixMessage) -> BookSnapshot:
        symbol = (message.get(p.SYMBOL) or b"").decode()
        conv = self._conv(symbol)
        bids: list[L2Level] = []
        asks: list[L2Level] = []
        for nth in range(1, int(message.get(p.NO_MD_ENTRIES) or b"0") + 1):
            level = L2Level(
                conv.parse_price((message.get(p.MD_ENTRY_PX, nth) or b"").decode()),
                conv.parse_qty((message.get(p.MD_ENTRY_SIZE, nth) or b"").decode()),
                int(message.get(p.NUMBER_OF_ORDERS, nth) or b"0"),
            )
            (bids if message.get(p.MD_ENTRY_TYPE, nth) == b"0" else asks).append(level)
        md_seq = int(message.get(p.RPT_SEQ) or b"0")
        return BookSnapshot(symbol, md_seq, BookDepth(symbol, 0, bids, asks))

    async def order(self, order_id: int) -> OrderView | None:
        return await self._status(order_id, "")

    async def _status(self, order_id: int, client_order_id: str) -> OrderView | None:
        """An OrderStatusRequest (H) by OrderID, else by ClOrdID; None when the server knows no such order of ours."""
        if not order_id and not client_order_id:
            return None
        pairs: list[tuple[int, object]] = [(p.ORDER_ID, order_id)] if order_id else []
        (answer,) = await self._request(p.ORDER_STATUS_REQUEST, [*pairs, (p.CL_ORD_ID, client_order_id or "NONE"), (p.SIDE, "1")])
        get = _reader(answer)
        if get(p.EXEC_TYPE) != p.ExecType.ORDER_STATUS:
            return None
        symbol = get(p.SYMBOL)
        conv = self._conv(symbol)
        return OrderView(
            int(get(p.ORDER_ID)), self.trader, get(p.CL_ORD_ID), symbol, p.SIDES[get(p.SIDE).encode()],
            p.ORD_TYPES[get(p.ORD_TYPE).encode()], p.TIFS.get(get(p.TIME_IN_FORCE).encode(), TimeInForce.GTC),
            conv.parse_price(get(p.PRICE)) if get(p.PRICE) else 0, 0, conv.parse_qty(get(p.LEAVES_QTY)),
            conv.parse_qty(get(p.CUM_QTY)), _STATUS.get(get(p.ORD_STATUS), OrderStatus.NEW),
        )  # fmt: skip

    async def stats(self) -> dict[str, Any]:
        (answer,) = await self._request(p.DEX_STATS_REQUEST, [])
        if answer.get(p.MSG_TYPE) != p.DEX_STATS:
            raise _refusal(answer)
        stats: dict[str, Any] = orjson.loads(answer.get(p.RAW_DATA) or b"{}")
        return stats

    async def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        await self.connect()
        request_id = f"md-{next(self._ids)}"
        queue: asyncio.Queue[simplefix.FixMessage | None] = asyncio.Queue()
        self._streams[request_id] = queue
        pairs: list[tuple[int, object]] = [(p.MD_REQ_ID, request_id), (p.SUBSCRIPTION_REQUEST_TYPE, "1"), (p.MARKET_DEPTH, 0)]
        pairs += [(p.NO_RELATED_SYM, len(symbols)), *((p.SYMBOL, s) for s in symbols)]
        last: dict[str, int] = {}
        try:
            for snapshot_message in await self._request(p.MARKET_DATA_REQUEST, pairs):
                if snapshot_message.get(p.MSG_TYPE) != p.MARKET_DATA_SNAPSHOT:
                    raise MalformedMessage(_reader(snapshot_message)(p.TEXT), RejectReason.UNKNOWN_SYMBOL)
                snapshot = self._snapshot(snapshot_message)
                last[snapshot.symbol] = snapshot.md_seq
                yield snapshot
            while (message := await queue.get()) is not None:
                if message.get(p.MSG_TYPE) == p.MARKET_DATA_SNAPSHOT:  # after the server saw this session fall behind
                    snapshot = self._snapshot(message)
                    yield Gap(snapshot.symbol, last.get(snapshot.symbol, 0), snapshot.md_seq - last.get(snapshot.symbol, 0))
                    last[snapshot.symbol] = snapshot.md_seq
                    yield snapshot
                    continue
                update = self._update(message)
                last[update.symbol] = update.md_seq
                yield update
        finally:
            self._streams.pop(request_id, None)
            with contextlib.suppress(ExchangeError):
                self._send(p.MARKET_DATA_REQUEST, [(p.MD_REQ_ID, request_id), (p.SUBSCRIPTION_REQUEST_TYPE, "2")])

    def _update(self, message: simplefix.FixMessage) -> MarketUpdate:
        get = _reader(message)
        symbol = get(p.SYMBOL)
        conv = self._conv(symbol)
        md_seq = int(get(p.RPT_SEQ) or 0)
        price = conv.parse_price(get(p.MD_ENTRY_PX))
        qty = conv.parse_qty(get(p.MD_ENTRY_SIZE))
        entry = get(p.MD_ENTRY_TYPE)
        applied = int(get(p.DEX_APPLIED_NS) or 0)
        if entry == "2":
            aggressor = p.SIDES.get(get(p.AGGRESSOR_SIDE).encode(), Side.BUY)
            trade = PublicTrade(0, int(get(p.TRD_MATCH_ID) or 0), symbol, price, qty, aggressor)
            return MarketUpdate(symbol, md_seq, trade, applied)
        side = Side.BUY if entry == "0" else Side.SELL
        return MarketUpdate(symbol, md_seq, BookDelta(0, symbol, side, price, qty, int(get(p.NUMBER_OF_ORDERS) or 0)), applied)


def _entries(message: simplefix.FixMessage) -> list[dict[int, str]]:
    """The repeating group of a SecurityList, one dict per Symbol (55) with the fields that follow it."""
    entries: list[dict[int, str]] = []
    for tag, value in message.pairs:
        number = int(tag)
        if number == p.SYMBOL:
            entries.append({})
        if entries:
            entries[-1].setdefault(number, value.decode(errors="replace"))
    return entries


def _retrieved(future: asyncio.Future[list[simplefix.FixMessage]]) -> None:
    """Mark an unread answer's error as seen (asyncio would log it as never retrieved)."""
    if not future.cancelled():
        future.exception()


def _raise_if_refused_whole(replies: Replies) -> None:
    """A batch the gateway refused whole (nothing applied) raises, as on every wire: every answer is that refusal."""
    first = replies[0][0] if replies and replies[0] else None
    if not isinstance(first, OrderRejected) or first.reason not in (RejectReason.OVERLOADED, RejectReason.LIMIT_EXCEEDED):
        return
    if all(len(r) == 1 and isinstance(r[0], OrderRejected) and r[0].reason is first.reason for r in replies):
        raise Overloaded(first.message) if first.reason is RejectReason.OVERLOADED else ExchangeError(first.message, first.reason)


def _request_id(request_id: int) -> list[tuple[int, object]]:
    return [(p.DEX_REQUEST_ID, request_id)] if request_id else []


def _refusal(answer: simplefix.FixMessage) -> ExchangeError:
    """The error a Reject (or any answer that is not the one asked for) carries."""
    reason = p.reject_reason(answer.get(p.DEX_REASON))
    text = (answer.get(p.TEXT) or b"unexpected answer").decode(errors="replace")
    return MalformedMessage(text, reason) if reason is RejectReason.MALFORMED_MESSAGE else ExchangeError(text, reason)


def _target(order_id: int, client_order_id: str) -> list[tuple[int, object]]:
    pairs: list[tuple[int, object]] = [(p.ORIG_CL_ORD_ID, client_order_id or str(order_id))]
    if order_id:
        pairs.append((p.ORDER_ID, order_id))
    return pairs


def _reader(message: simplefix.FixMessage) -> Callable[[int], str]:
    def get(tag: int) -> str:
        value = message.get(tag)
        return value.decode(errors="replace") if value is not None else ""

    return get
