"""One FIX 4.4 session over one TCP connection: the session layer, then order entry and market data.

Session rules (FIX 4.4 session protocol, as QuickFIX keeps them apart from
the application):

* The first message is a Logon (A) with BeginString FIX.4.4, a SenderCompID
  that is a valid trader name, our TargetCompID, EncryptMethod 0, a HeartBtInt
  within bounds and the password when one is required; anything else is
  answered with a Logout (5) naming the reason, and the connection closes.
  One session per SenderCompID at a time.
* With an ``Authenticator`` (``settings.auth``) the Logon proves a key
  instead of a password: Username (553) is the key id, RawDataLength (95) /
  RawData (96) the signature (base64 Ed25519, or hex HMAC-SHA256) over
  ``signing.payload(SendingTime as Unix ms, window, "A",
  "<MsgSeqNum>|<SenderCompID>|<TargetCompID>", "", b"")`` (``protocol.
  logon_payload``), DEX_RECV_WINDOW (20010) the window in ms (default
  5,000). The SenderCompID must be the key's trader. A refusal is a Logout
  whose DEX_REASON is UNAUTHENTICATED (or UNAUTHORIZED for a SenderCompID
  that is not the key's) and whose Text names the cause; it is counted and
  the connection closes. A key revoked during a session ends it on the next
  message received after the keyring's reload (at most 0.2 s), with the same
  kind of Logout; what that read had not yet applied is not applied.
* Sequence numbers persist (``store.SequenceStore``); ResetSeqNumFlag (141=Y)
  on the Logon starts both sides at 1. An inbound MsgSeqNum above the one
  expected queues the message (bounded) and sends one ResendRequest (2) for
  the gap; a number below it without PossDupFlag is a Logout, as FIX says.
  SequenceReset (4) in gap-fill or reset mode moves the expected number.
* A ResendRequest from the counterparty is answered with one
  SequenceReset-GapFill over the range (PossDupFlag=Y): application messages
  are not replayed (a client reads an order's state with a new request).
* Heartbeat (0) when we have sent nothing for HeartBtInt; TestRequest (1)
  when the counterparty has been silent for HeartBtInt plus a fifth; Logout
  and close when it is still silent one more interval later.
* A frame that cannot be used (bad checksum, fields that do not parse, a
  MsgType we do not serve, a missing or malformed required field) is
  answered with a Reject (3) carrying RefSeqNum (45), RefTagID (371),
  SessionRejectReason (373) and Text (58); its sequence number is consumed,
  and the session goes on. Bytes that cannot be framed at all, or a frame
  over the size bound, end the session with a Logout naming the reason.
  Nothing a peer sends raises out of the session.

Application messages: order entry is translated by ``orders.OrderEntry`` and
submitted to the gateway in batches (the consecutive order messages of one
read), so FIX orders trade with orders from every other wire. Every message
answering a request carries DEX_REPLY (20002): ``N``, and ``Y`` on the last.
Fills of this trader's resting orders come from the gateway's fills hub as
unsolicited ExecutionReports; market data from its market-data hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson
import simplefix

from engine import AddInstrument, Command, Event, ExchangeError, Instrument, MalformedMessage, OrderRejected, RejectReason
from transports.codec.market_messages import BookSnapshot, Gap, MarketUpdate
from transports.core.auth import Authenticator, Principal
from transports.core.fills import FillSubscription
from transports.core.limits import LimitExceeded
from transports.core.marketdata import Subscription
from transports.core.requests import Acting, RequestHandler, check_trader
from transports.core.signing import AuthFailure
from transports.fix import marketdata as md
from transports.fix import protocol as p
from transports.fix.orders import MissingField, OrderEntry, Request, undecoded
from transports.fix.settings import MAX_HEARTBEAT_S, MIN_HEARTBEAT_S, READ_BYTES, FixServerSettings
from transports.fix.store import SequenceNumbers, SequenceStore

log = logging.getLogger("dex-fix")

TRANSPORT = "fix"
_ORDER_TYPES = frozenset({p.NEW_ORDER_SINGLE, p.ORDER_CANCEL_REQUEST, p.ORDER_CANCEL_REPLACE_REQUEST, p.ORDER_MASS_CANCEL_REQUEST})
_TICK_S = 0.5  # how often the heartbeat clock is looked at
FRAMES_PER_TURN = 16  # messages read (or answers written) between two turns of the event loop
BYTES_PER_TURN = 16 * 1024  # ... or bytes of messages read (simplefix splits large ones slowly)


class SessionEnded(Exception):
    """The session is over (a Logout was sent, or the peer is gone): close the connection."""


@dataclass(eq=False)
class SessionRegistry:
    """What the sessions of one server share."""

    settings: FixServerSettings
    requests: RequestHandler
    orders: OrderEntry
    store: SequenceStore
    active: dict[str, FixSession] = field(default_factory=dict)


class FixSession:
    def __init__(self, registry: SessionRegistry, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.registry = registry
        self.settings = registry.settings
        self.reader = reader
        self.writer = writer
        self.frames = p.FrameReader(self.settings.max_message_bytes)
        self.trader: str | None = None
        self.principal: Principal | None = None  # the key that signed the Logon (settings.auth), else None
        self.numbers = SequenceNumbers()
        self.heartbeat_s = 30.0
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.last_received = loop.time()
        self.last_sent = loop.time()
        self._test_request_sent: float | None = None
        self._gap_queue: dict[int, simplefix.FixMessage] = {}
        self._resend_asked = False
        self._save_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscriptions: dict[str, Subscription] = {}
        self._fills: FillSubscription | None = None
        self._batch: list[tuple[int, Request | ExchangeError, bytes]] = []
        self._undecoded: dict[int, Request] = {}  # what a refusal repeats of an order message that made no command
        self._batch_left = 0  # order messages still to come of a declared batch (DEX_BATCH)
        self._batch_refusal: ExchangeError | None = None  # the declared batch is refused whole with this
        self.closed = False

    @property
    def acting(self) -> Acting:
        """Who this session acts for: the Logon's key, or (--auth off) its SenderCompID."""
        return self.principal if self.principal is not None else self.trader

    # ----------------------------------------------------------- lifecycle
    async def run(self) -> None:
        """Serve the connection until it ends; never raises."""
        try:
            await self._serve()
        except (SessionEnded, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug must end this session only, never the server
            log.exception("internal error in a FIX session of %r", self.trader)
            with contextlib.suppress(Exception):
                self._logout("internal error; see the server log")
        finally:
            await self._close()

    async def _serve(self) -> None:
        deadline = self._loop.time() + self.settings.logon_timeout_s
        while True:
            timeout = deadline - self._loop.time() if self.trader is None else 2 * self.heartbeat_s + 5
            try:
                data = await asyncio.wait_for(self.reader.read(READ_BYTES), max(timeout, 0.01))
            except TimeoutError:
                if self.trader is None:
                    self._refuse("no Logon within the logon timeout")
                self._logout("nothing received within two heartbeat intervals")
            if not data:
                return
            self.last_received = self._loop.time()
            self._test_request_sent = None
            self.frames.feed(data)
            try:
                handled = 0  # bytes since this session last gave the loop a turn
                for count, frame in enumerate(self.frames.frames(), 1):
                    await self._on_frame(frame)
                    handled += frame.size
                    if count % FRAMES_PER_TURN == 0 or handled >= BYTES_PER_TURN:
                        handled = 0
                        await asyncio.sleep(0)  # a read of many messages leaves other sessions their turn
            except p.FrameTooLarge as exc:
                self.registry.requests.refused(LimitExceeded(exc.message, "max_message_bytes"))
                self._logout(exc.message)
            except p.FrameError as exc:
                self.registry.requests.refused(exc)
                self._logout(f"garbled stream: {exc.message}")
            if not self._batch_left:  # a declared batch still arriving waits for its last message
                await self._flush_batch()
            await self._drain()

    async def _close(self) -> None:
        self.closed = True
        if self.trader is not None and self.registry.active.get(self.trader) is self:
            del self.registry.active[self.trader]
        for task in list(self._tasks):
            task.cancel()
        for sub in self._subscriptions.values():
            self.registry.requests.gateway.unsubscribe(sub)
        self._subscriptions.clear()
        if self._fills is not None:
            self.registry.requests.gateway.unsubscribe_fills(self._fills)
        self._save()
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task: asyncio.Task[None] = self._loop.create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------- sending
    def send(self, message: simplefix.FixMessage, reply: str = "") -> None:
        """Frame ``message`` with the next outbound number and write it (``reply``: DEX_REPLY's value, if any)."""
        if self.closed:
            return
        if reply:
            message.append_pair(p.DEX_REPLY, reply)
        sender = self.trader or "UNKNOWN"
        data = p.encode(message, self.settings.comp_id, sender, self.numbers.next_out)
        self.numbers.next_out += 1
        self._write(data)

    def _write(self, data: bytes) -> None:
        transport = self.writer.transport
        if transport.is_closing():
            raise SessionEnded
        if transport.get_write_buffer_size() > self.settings.max_outbound_bytes:
            log.warning("FIX session %r is not reading: disconnected", self.trader)
            transport.abort()
            raise SessionEnded
        self.writer.write(data)
        self.last_sent = self._loop.time()
        self._schedule_save()

    async def _drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    def _schedule_save(self) -> None:
        if not self._save_scheduled and self.trader is not None:
            self._save_scheduled = True
            self._loop.call_soon(self._save)

    def _save(self) -> None:
        self._save_scheduled = False
        if self.trader is not None and self.registry.active.get(self.trader) in (self, None):
            try:
                self.registry.store.save(self.trader, self.numbers)
            except OSError as exc:
                log.error("cannot store the sequence numbers of %r: %s", self.trader, exc)

    def _logout(self, why: str, reason: RejectReason | None = None) -> NoReturn:
        """Send a Logout naming ``why`` (and ``reason`` in DEX_REASON, if given), and end the session."""
        out = p.new_message(p.LOGOUT)
        out.append_pair(p.TEXT, why[:200])
        if reason is not None:
            out.append_pair(p.DEX_REASON, int(reason))
        with contextlib.suppress(SessionEnded):
            self.send(out)
        raise SessionEnded

    def _refuse(self, why: str, message: simplefix.FixMessage | None = None, reason: RejectReason = RejectReason.UNAUTHORIZED) -> NoReturn:
        """A Logon refused: a Logout outside any session (sequence 1, nothing stored; addressed to the SenderCompID of
        ``message`` when it has one) naming ``reason`` in DEX_REASON, then close."""
        self.registry.requests.refused(ExchangeError(why, reason))
        out = p.new_message(p.LOGOUT)
        out.append_pair(p.TEXT, why[:200])
        out.append_pair(p.DEX_REASON, int(reason))
        target = (message.get(p.SENDER_COMP_ID) if message is not None else None) or b"UNKNOWN"
        with contextlib.suppress(SessionEnded):
            self._write(p.encode(out, self.settings.comp_id, target.decode(errors="replace")[:64], 1))
        raise SessionEnded

    def _reject(self, seq: int, why: str, reason: int, tag: int = 0, msg_type: bytes = b"", reply: str = "Y") -> None:
        """A session-level Reject (3) of message ``seq``."""
        self.registry.requests.refused(MalformedMessage(why))
        out = p.new_message(p.REJECT)
        out.append_pair(p.REF_SEQ_NUM, seq)
        if tag:
            out.append_pair(p.REF_TAG_ID, tag)
        if msg_type:
            out.append_pair(p.REF_MSG_TYPE, msg_type)
        out.append_pair(p.SESSION_REJECT_REASON, reason)
        out.append_pair(p.TEXT, why[:200])
        out.append_pair(p.DEX_REASON, int(RejectReason.MALFORMED_MESSAGE))
        self.send(out, reply if self.trader is not None else "")

    # ----------------------------------------------------------- receiving
    async def _on_frame(self, frame: p.Frame) -> None:
        message = frame.message
        if message is None or frame.problem:
            seq = _seq_of(message)
            if self.trader is None:
                self._refuse(f"the first message must be a valid Logon ({frame.problem})")
            if seq == self.numbers.next_in:
                self.numbers.next_in += 1  # the garbled message is rejected, not asked for again
            await self._flush_batch()
            self._reject(seq, frame.problem, p.SessionReject.OTHER if message is None else p.SessionReject.VALUE_INCORRECT, p.CHECKSUM)
            return
        msg_type = message.get(p.MSG_TYPE) or b""
        if self.trader is None:
            self._on_logon(message, msg_type)
            return
        if self.principal is not None:
            self._check_key_live(self.principal)
        await self._on_message(message, msg_type)

    def _check_key_live(self, principal: Principal) -> None:
        """End the session (a Logout with UNAUTHENTICATED) when its key was revoked since the Logon."""
        auth = self.settings.auth
        if auth is not None and auth.keyring.lookup(principal.key_id) is None:
            failure = AuthFailure("unknown_key", "the key of this session was revoked")
            self.registry.requests.refused(failure)
            log.info("FIX session %s logged out: its key %s was revoked", self.trader, principal.key_id)
            self._logout(failure.message, RejectReason.UNAUTHENTICATED)

    async def _on_message(self, message: simplefix.FixMessage, msg_type: bytes) -> None:
        seq = _seq_of(message)
        if seq == 0:
            self._logout("MsgSeqNum (34) is missing")
        assert self.trader is not None
        if message.get(p.SENDER_COMP_ID) != self.trader.encode() or message.get(p.TARGET_COMP_ID) != self.settings.comp_id.encode():
            self._reject(seq, "SenderCompID/TargetCompID differ from the Logon's", p.SessionReject.COMP_ID_PROBLEM, p.SENDER_COMP_ID)
            self._logout("SenderCompID/TargetCompID differ from the Logon's")
        if msg_type == p.SEQUENCE_RESET and message.get(p.GAP_FILL_FLAG) != b"Y":
            self._on_sequence_reset(message, seq)
            return
        if seq > self.numbers.next_in:
            self._queue(message, seq)
            return
        if seq < self.numbers.next_in:
            if message.get(p.POSS_DUP_FLAG) == b"Y":
                return  # a resend of what we already have
            self._logout(f"MsgSeqNum too low, expecting {self.numbers.next_in} but received {seq}")
        await self._dispatch(message, msg_type, seq)
        await self._drain_gap_queue()

    async def _drain_gap_queue(self) -> None:
        """Messages queued above a gap, once it is closed. Those a gap fill jumped over were received all the same
        (a peer may gap-fill its own messages it could not resend): they are handled, in order, never dropped."""
        while self._gap_queue:
            first = min(self._gap_queue)
            if first < self.numbers.next_in:
                late = self._gap_queue.pop(first)
                await self._dispatch(late, late.get(p.MSG_TYPE) or b"", first, consume=False)
            elif first == self.numbers.next_in:
                queued = self._gap_queue.pop(first)
                await self._dispatch(queued, queued.get(p.MSG_TYPE) or b"", first)
            else:
                break
        if not self._gap_queue:
            self._resend_asked = False

    def _queue(self, message: simplefix.FixMessage, seq: int) -> None:
        if len(self._gap_queue) >= self.settings.max_queued:
            self._logout(f"more than {self.settings.max_queued} messages above a sequence gap")
        self._gap_queue[seq] = message
        if not self._resend_asked:
            self._resend_asked = True
            out = p.new_message(p.RESEND_REQUEST)
            out.append_pair(p.BEGIN_SEQ_NO, self.numbers.next_in)
            out.append_pair(p.END_SEQ_NO, 0)
            self.send(out)

    async def _dispatch(self, message: simplefix.FixMessage, msg_type: bytes, seq: int, consume: bool = True) -> None:
        """Handle message ``seq``; ``consume``: it is the one expected, and its number is consumed here, whatever
        becomes of it (a message handled after a gap fill jumped over it consumes nothing)."""
        if consume:
            self.numbers.next_in = seq + 1
        if msg_type in _ORDER_TYPES:
            await self._on_order(message, msg_type, seq)
            return
        self._batch_left = 0  # a declared batch cut short by another message: what came of it is submitted as it is
        await self._flush_batch()  # whatever comes next is answered after the orders before it
        if msg_type == p.HEARTBEAT:
            return
        if msg_type == p.TEST_REQUEST:
            out = p.new_message(p.HEARTBEAT)
            out.append_pair(p.TEST_REQ_ID, message.get(p.TEST_REQ_ID) or b"")
            self.send(out)
        elif msg_type == p.RESEND_REQUEST:
            self._on_resend_request(message, seq)
        elif msg_type == p.SEQUENCE_RESET:  # gap fill (a reset was handled before the sequence check)
            new_seq = p.integer(message, p.NEW_SEQ_NO) or 0
            if new_seq > self.numbers.next_in:
                self.numbers.next_in = new_seq
        elif msg_type == p.LOGOUT:
            out = p.new_message(p.LOGOUT)
            out.append_pair(p.TEXT, "goodbye")
            self.send(out)
            raise SessionEnded
        elif msg_type == p.REJECT:
            log.info("FIX session %r rejected our message %s: %s", self.trader, message.get(p.REF_SEQ_NUM), message.get(p.TEXT))
        elif msg_type == p.LOGON:
            self._reject(seq, "already logged on", p.SessionReject.VALUE_INCORRECT, 0, msg_type, reply="")
        elif msg_type == p.MARKET_DATA_REQUEST:
            self._on_market_data_request(message, seq)
        elif msg_type == p.SECURITY_LIST_REQUEST:
            self._on_security_list_request(message)
        elif msg_type == p.ORDER_STATUS_REQUEST:
            self._on_order_status_request(message, seq)
        elif msg_type == p.DEX_STATS_REQUEST:
            out = p.new_message(p.DEX_STATS)
            body = orjson.dumps(self.registry.requests.gateway.stats_dict())
            out.append_data(p.RAW_DATA_LENGTH, p.RAW_DATA, body)
            self._send_reply([out])
        elif msg_type == p.DEX_CANCEL_ON_DISCONNECT:
            self._on_cancel_on_disconnect(message, seq)
        elif msg_type == p.DEX_ADD_INSTRUMENT:
            await self._on_add_instrument(message, seq)
        else:
            self._reject(seq, f"MsgType {msg_type[:8]!r} is not served", p.SessionReject.INVALID_MSG_TYPE, p.MSG_TYPE, msg_type)

    # -------------------------------------------------------------- logon
    def _on_logon(self, message: simplefix.FixMessage, msg_type: bytes) -> None:
        if msg_type != p.LOGON:
            self._refuse("the first message must be a Logon (35=A)", message)
        if message.get(p.BEGIN_STRING_TAG) != p.BEGIN_STRING:
            self._refuse("BeginString must be FIX.4.4", message)
        try:
            sender = check_trader(message.get(p.SENDER_COMP_ID) or b"")
        except ExchangeError as exc:
            self._refuse(f"SenderCompID (49): {exc.message}", message, exc.reason)
        if (message.get(p.TARGET_COMP_ID) or b"") != self.settings.comp_id.encode():
            self._refuse(f"TargetCompID (56) must be {self.settings.comp_id}", message)
        if (message.get(p.ENCRYPT_METHOD) or b"0") != b"0":
            self._refuse("EncryptMethod (98) must be 0 (none)", message)
        try:
            heartbeat = p.integer(message, p.HEART_BT_INT)
            password = p.text(message, p.PASSWORD)
        except MalformedMessage as exc:
            self._refuse(exc.message, message)
        if heartbeat is None or not MIN_HEARTBEAT_S <= heartbeat <= MAX_HEARTBEAT_S:
            self._refuse(f"HeartBtInt (108) must be {MIN_HEARTBEAT_S} to {MAX_HEARTBEAT_S} seconds", message)
        if self.settings.auth is not None:
            self.principal = self._verify_logon(self.settings.auth, message, sender)
        elif not self.settings.passwords.check(sender, password):
            self._refuse("unknown SenderCompID or wrong Password (554)", message)
        if sender in self.registry.active:
            self._refuse(f"{sender} is already logged on", message)
        self._start_session(message, sender, heartbeat)

    def _verify_logon(self, auth: Authenticator, message: simplefix.FixMessage, sender: str) -> Principal:
        """The principal whose key signed this Logon (module docstring), or a refusal naming the cause."""
        try:
            key_id = p.text(message, p.USERNAME) or ""
            signature = p.text(message, p.RAW_DATA) or ""
            window = p.integer(message, p.DEX_RECV_WINDOW)
        except MalformedMessage as exc:
            self._refuse(f"malformed_credentials: {exc.message}", message, RejectReason.UNAUTHENTICATED)
        stamp = p.sending_time_ms(message.get(p.SENDING_TIME))
        if stamp is None and key_id and signature:
            self._refuse("malformed_credentials: SendingTime (52) is YYYYMMDD-HH:MM:SS.sss", message, RejectReason.UNAUTHENTICATED)
        route = f"{_seq_of(message)}|{sender}|{self.settings.comp_id}"
        try:
            principal = auth.verify_signed(
                key_id, stamp if stamp is not None else "", window if window is not None else "", signature, "A", route, "", b""
            )
        except AuthFailure as exc:
            self._refuse(f"Logon refused: {exc.message}", message, RejectReason.UNAUTHENTICATED)
        if principal.trader != sender:
            self._refuse(f"SenderCompID (49) must be the key's trader ({principal.trader})", message, RejectReason.UNAUTHORIZED)
        return principal

    def _start_session(self, message: simplefix.FixMessage, sender: str, heartbeat: int) -> None:
        reset = message.get(p.RESET_SEQ_NUM_FLAG) == b"Y"
        self.numbers = SequenceNumbers() if reset else self.registry.store.load(sender)
        seq = _seq_of(message)
        if seq < self.numbers.next_in:
            self._refuse(f"MsgSeqNum too low, expecting {self.numbers.next_in} but received {seq}", message)
        self.trader = sender
        self.heartbeat_s = float(heartbeat)
        self.registry.active[sender] = self
        gap = seq > self.numbers.next_in
        if not gap:
            self.numbers.next_in = seq + 1
        out = p.new_message(p.LOGON)
        out.append_pair(p.ENCRYPT_METHOD, 0)
        out.append_pair(p.HEART_BT_INT, heartbeat)
        if reset:
            out.append_pair(p.RESET_SEQ_NUM_FLAG, "Y")
        self.send(out)
        if gap:
            self._queue_gap_after_logon()
        self._fills = self.registry.requests.gateway.subscribe_fills(sender)
        self._spawn(self._forward_fills)
        self._spawn(self._keep_alive)
        log.info("FIX session %s logged on (next in %d, next out %d)", sender, self.numbers.next_in, self.numbers.next_out)

    def _queue_gap_after_logon(self) -> None:
        self._resend_asked = True
        out = p.new_message(p.RESEND_REQUEST)
        out.append_pair(p.BEGIN_SEQ_NO, self.numbers.next_in)
        out.append_pair(p.END_SEQ_NO, 0)
        self.send(out)

    # -------------------------------------------------------------- admin
    def _on_sequence_reset(self, message: simplefix.FixMessage, seq: int) -> None:
        new_seq = p.integer(message, p.NEW_SEQ_NO)
        if new_seq is None:
            self._reject(seq, "NewSeqNo (36) is missing", p.SessionReject.REQUIRED_TAG_MISSING, p.NEW_SEQ_NO, p.SEQUENCE_RESET, "")
            return
        if new_seq < self.numbers.next_in:
            self._reject(
                seq, "NewSeqNo (36) may not lower the sequence", p.SessionReject.VALUE_INCORRECT, p.NEW_SEQ_NO, p.SEQUENCE_RESET, ""
            )
            return
        self.numbers.next_in = new_seq
        self._gap_queue = {s: m for s, m in self._gap_queue.items() if s >= new_seq}

    def _on_resend_request(self, message: simplefix.FixMessage, seq: int) -> None:
        begin = p.integer(message, p.BEGIN_SEQ_NO)
        if begin is None or p.integer(message, p.END_SEQ_NO) is None:
            self._reject(seq, "BeginSeqNo (7) and EndSeqNo (16) are required", p.SessionReject.REQUIRED_TAG_MISSING, p.BEGIN_SEQ_NO)
            return
        if begin >= self.numbers.next_out or begin < 1:
            return  # nothing of ours in that range
        out = p.new_message(p.SEQUENCE_RESET)
        out.append_pair(p.GAP_FILL_FLAG, "Y")
        out.append_pair(p.NEW_SEQ_NO, self.numbers.next_out)
        assert self.trader is not None
        self._write(p.encode(out, self.settings.comp_id, self.trader, begin, poss_dup=True))

    async def _keep_alive(self) -> None:
        while not self.closed:
            await asyncio.sleep(min(_TICK_S, self.heartbeat_s / 2))
            now = self._loop.time()
            try:
                if now - self.last_sent >= self.heartbeat_s:
                    self.send(p.new_message(p.HEARTBEAT))
                silent = now - self.last_received
                if self._test_request_sent is None and silent > self.heartbeat_s * 1.2:
                    out = p.new_message(p.TEST_REQUEST)
                    out.append_pair(p.TEST_REQ_ID, f"T{int(now * 1000)}")
                    self.send(out)
                    self._test_request_sent = now
                elif self._test_request_sent is not None and now - self._test_request_sent > self.heartbeat_s:
                    self._logout("no answer to a TestRequest within the heartbeat interval")
            except SessionEnded:
                self.writer.transport.abort()
                return

    # -------------------------------------------------------------- orders
    async def _on_order(self, message: simplefix.FixMessage, msg_type: bytes, seq: int) -> None:
        """Collect one order-entry message into the batch submitted at the end of this read, or of its declared batch.

        DEX_BATCH (20005) = n on a message: it and the next n - 1 order messages are one batch, submitted whole or
        refused whole (OVERLOADED; LIMIT_EXCEEDED over ``max_batch``), across reads if need be.
        """
        limit = self.registry.requests.limits.max_batch
        try:
            declared = p.integer(message, p.DEX_BATCH) or 0
        except MalformedMessage:
            declared = 0
        if declared:
            self._batch_left = 0
            await self._flush_batch()  # what came before is a batch of its own
            self._batch_left = declared
            self._batch_refusal = None
            if declared > limit:
                self._batch_refusal = LimitExceeded(f"a batch holds at most {limit} commands, got {declared}", "max_batch")
        if self._batch_left and self._batch_refusal is not None:
            self._undecoded[seq] = undecoded(msg_type, message)
            self._batch.append((seq, self._batch_refusal, msg_type))
        else:
            self._collect_order(message, msg_type, seq)
        if self._batch_left:
            self._batch_left -= 1
            if self._batch_left == 0:
                await self._flush_batch()
        elif len(self._batch) >= limit:
            await self._flush_batch()

    def _collect_order(self, message: simplefix.FixMessage, msg_type: bytes, seq: int) -> None:
        assert self.trader is not None
        try:
            request: Request | ExchangeError = self.registry.orders.decode(msg_type, message, self.trader)
        except MissingField as exc:
            request = exc
        except ExchangeError as exc:
            request = exc
            self._undecoded[seq] = undecoded(msg_type, message)
        self._batch.append((seq, request, msg_type))

    async def _flush_batch(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        assert self.trader is not None
        commands: list[Command] = [item.command for _, item, _ in batch if isinstance(item, Request) and item.command is not None]
        replies: list[list[Event]] = []
        refused: ExchangeError | None = None
        if commands:
            admitted = None
            try:
                admitted = self.registry.requests.admit(self.acting)  # the key's rate and requests in flight
                replies = list(await self.registry.requests.gateway.submit(commands, TRANSPORT))
            except ExchangeError as exc:  # Overloaded or RateLimited: nothing of it was applied
                self.registry.requests.refused(exc)
                refused = exc
            finally:
                self.registry.requests.release(admitted)
        answers = iter(replies)
        orders = self.registry.orders
        counted: set[int] = set()  # a declared batch refused whole is one refusal (one error object), as on every wire
        for index, (seq, item, msg_type) in enumerate(batch, 1):
            if index % FRAMES_PER_TURN == 0:
                await asyncio.sleep(0)  # thousands of answers to encode: other sessions get their turn between them
            if isinstance(item, MissingField):
                self._reject(seq, item.message, p.SessionReject.REQUIRED_TAG_MISSING, item.tag, msg_type)
                continue
            if isinstance(item, ExchangeError):
                if id(item) not in counted:
                    counted.add(id(item))
                    self.registry.requests.refused(item)
                self._send_reply([orders.refusal(self._undecoded.pop(seq, None), item)])
                continue
            if refused is not None:
                self._send_reply([orders.refusal(item, refused)])
                continue
            self._send_reply(orders.reports(item, next(answers), self.trader))

    def _send_reply(self, messages: list[simplefix.FixMessage]) -> None:
        for index, message in enumerate(messages):
            self.send(message, "Y" if index == len(messages) - 1 else "N")

    async def _forward_fills(self) -> None:
        """Fills of this trader's resting orders (as maker), as unsolicited ExecutionReports."""
        subscription = self._fills
        assert subscription is not None and self.trader is not None
        try:
            async for fill in subscription:
                if fill.maker:
                    report = self.registry.orders.maker_fill(self.trader, fill)
                    if report is not None:
                        self.send(report)
            if subscription.overflowed:
                self._logout("fell behind its own fills: log on again and read the orders' status")
        except SessionEnded:
            self.writer.transport.abort()

    def _on_cancel_on_disconnect(self, message: simplefix.FixMessage, seq: int) -> None:
        try:
            grace = p.integer(message, p.DEX_GRACE_MS)
            armed = self.registry.requests.arm_session(self.acting, grace if grace is not None else -1)
        except ExchangeError as exc:
            self.registry.requests.refused(exc)
            out = p.new_message(p.REJECT)
            out.append_pair(p.REF_SEQ_NUM, seq)
            out.append_pair(p.REF_MSG_TYPE, p.DEX_CANCEL_ON_DISCONNECT)
            out.append_pair(p.SESSION_REJECT_REASON, p.SessionReject.VALUE_INCORRECT)
            out.append_pair(p.TEXT, exc.message[:200])
            out.append_pair(p.DEX_REASON, int(exc.reason))
            self._send_reply([out])
            return
        out = p.new_message(p.DEX_CANCEL_ON_DISCONNECT_ACK)
        out.append_pair(p.DEX_GRACE_MS, armed)
        self._send_reply([out])

    async def _on_add_instrument(self, message: simplefix.FixMessage, seq: int) -> None:
        """List an instrument (U5, ``Instrument.to_dict`` JSON in RawData): the admin role (``--allow-admin`` with
        --auth off), as on every wire; answered by U6 with the instrument, or a Reject (3) naming the reason."""
        requests = self.registry.requests
        try:
            _, admin = requests.acting(self.acting)
            if not admin:
                raise ExchangeError(requests.admin_refusal, RejectReason.UNAUTHORIZED)
            try:
                instrument = Instrument.from_dict(orjson.loads(message.get(p.RAW_DATA) or b""))
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError, KeyError, ArithmeticError) as exc:
                raise MalformedMessage(f"RawData (96) is an instrument as JSON: {str(exc)[:120]}") from None
            (events,) = await requests.gateway.submit([AddInstrument(instrument)], TRANSPORT)
            rejected = next((e for e in events if isinstance(e, OrderRejected)), None)
            if rejected is not None:
                raise ExchangeError(rejected.message, rejected.reason)
        except ExchangeError as exc:
            requests.refused(exc)
            out = p.new_message(p.REJECT)
            out.append_pair(p.REF_SEQ_NUM, seq)
            out.append_pair(p.REF_MSG_TYPE, p.DEX_ADD_INSTRUMENT)
            out.append_pair(p.SESSION_REJECT_REASON, p.SessionReject.OTHER)
            out.append_pair(p.TEXT, exc.message[:200])
            out.append_pair(p.DEX_REASON, int(exc.reason))
            self._send_reply([out])
            return
        out = p.new_message(p.DEX_INSTRUMENT_ADDED)
        out.append_data(p.RAW_DATA_LENGTH, p.RAW_DATA, orjson.dumps(instrument.to_dict()))
        self._send_reply([out])

    def _on_order_status_request(self, message: simplefix.FixMessage, seq: int) -> None:
        assert self.trader is not None
        try:
            order_id = p.integer(message, p.ORDER_ID) or 0
            cl_ord_id = p.text(message, p.CL_ORD_ID) or ""
        except MalformedMessage as exc:
            self._reject(seq, exc.message, p.SessionReject.INCORRECT_DATA_FORMAT, p.ORDER_ID, p.ORDER_STATUS_REQUEST)
            return
        engine = self.registry.requests.gateway.engine
        if not order_id and cl_ord_id:
            order_id = self.registry.orders.ledger(self.trader).by_cl_ord_id.get(cl_ord_id) or engine.order_id_for(self.trader, cl_ord_id)
        report = self.registry.orders.status_report(self.trader, order_id)
        if report is None:
            error = ExchangeError(f"no order {cl_ord_id or order_id!r} of this trader", RejectReason.UNKNOWN_ORDER)
            report = self.registry.orders.refusal(None, error, order_id)
        self._send_reply([report])

    # --------------------------------------------------------- market data
    def _on_market_data_request(self, message: simplefix.FixMessage, seq: int) -> None:
        try:
            request = md.parse_request(message, self.registry.requests.limits.max_snapshot_symbols)
        except MalformedMessage as exc:
            self._send_reply([md.reject_message(p.text(message, p.MD_REQ_ID) or "", "5", exc.message)])
            return
        if request.kind == "2":
            sub = self._subscriptions.pop(request.request_id, None)
            if sub is not None:
                self.registry.requests.gateway.unsubscribe(sub)
            return
        gateway = self.registry.requests.gateway
        unknown = [s for s in request.symbols if gateway.instrument(s) is None]
        if unknown:
            self._send_reply([md.reject_message(request.request_id, "0", f"unknown symbol {unknown[0][:64]!r}")])
            return
        if request.kind == "0":
            snapshots = [gateway.marketdata.snapshot(s) for s in request.symbols]
            self._send_reply([self._snapshot(request, snapshot) for snapshot in snapshots])
            return
        if request.request_id in self._subscriptions:
            self._send_reply([md.reject_message(request.request_id, "1", "MDReqID (262) is already subscribed")])
            return
        if len(self._subscriptions) >= self.settings.max_subscriptions:
            self._send_reply([md.reject_message(request.request_id, "99", f"at most {self.settings.max_subscriptions} subscriptions")])
            return
        sub = gateway.subscribe(request.symbols)
        self._subscriptions[request.request_id] = sub
        first = [item for item in iter(sub.poll, None)]  # the snapshots, taken as it subscribed
        self._send_reply([self._snapshot(request, s) for s in first if isinstance(s, BookSnapshot)])
        self._spawn(lambda: self._forward_market_data(request, sub))

    def _snapshot(self, request: md.MarketDataRequest, snapshot: BookSnapshot) -> simplefix.FixMessage:
        instrument = self.registry.requests.gateway.instrument(snapshot.symbol)
        assert instrument is not None
        return md.snapshot_message(request, snapshot, instrument)

    async def _forward_market_data(self, request: md.MarketDataRequest, sub: Subscription) -> None:
        gateway = self.registry.requests.gateway
        try:
            async for item in sub:
                if isinstance(item, MarketUpdate):
                    instrument = gateway.instrument(item.symbol)
                    message = md.update_message(request, item, instrument) if instrument is not None else None
                    if message is not None:
                        self.send(message)
                elif isinstance(item, BookSnapshot):  # after a Gap: the RptSeq jump tells the subscriber
                    self.send(self._snapshot(request, item))
                elif isinstance(item, Gap):
                    continue
        except SessionEnded:
            self.writer.transport.abort()

    def _on_security_list_request(self, message: simplefix.FixMessage) -> None:
        out = p.new_message(p.SECURITY_LIST)
        out.append_pair(p.SECURITY_REQ_ID, message.get(p.SECURITY_REQ_ID) or b"NONE")
        out.append_pair(p.SECURITY_RESPONSE_ID, "1")
        out.append_pair(p.SECURITY_REQUEST_RESULT, "0")
        instruments = self.registry.requests.gateway.instruments
        out.append_pair(p.NO_RELATED_SYM, len(instruments))
        for instrument in instruments:
            out.append_pair(p.SYMBOL, instrument.symbol)
            out.append_pair(p.MIN_PRICE_INCREMENT, format(instrument.tick_size, "f"))
            out.append_pair(p.ROUND_LOT, format(instrument.lot_size, "f"))
            out.append_pair(p.MIN_TRADE_VOL, instrument.format_qty(instrument.min_qty))
            out.append_pair(p.MAX_TRADE_VOL, instrument.format_qty(instrument.max_qty))
            out.append_pair(p.DEX_PRICE_BAND_BPS, instrument.price_band_bps)
            if instrument.reference_price:
                out.append_pair(p.DEX_REFERENCE_PRICE, instrument.format_price(instrument.reference_price))
        self._send_reply([out])


def _seq_of(message: simplefix.FixMessage | None) -> int:
    if message is None:
        return 0
    value = message.get(p.MSG_SEQ_NUM)
    return int(value) if value is not None and value.isdigit() and len(value) <= 18 else 0
