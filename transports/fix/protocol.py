"""FIX 4.4 on the wire: tags, message types, code tables, framing and encoding (pure functions, no I/O).

Framing is ours, tag splitting is ``simplefix``'s. A message is
``8=FIX.4.4|9=<BodyLength>|<body>|10=<CheckSum>|``; ``FrameReader`` reads the
BeginString and BodyLength first and refuses a declared length over the
bound before a byte of the body is held (``FrameTooLarge``), so one peer
can make the server buffer at most ``max_message_bytes``. A complete frame's
checksum is verified, then ``simplefix`` splits it into fields.

Invariants:

* ``FrameReader`` holds at most one frame plus one read's worth of bytes;
  bytes that cannot start a frame (``FrameGarbled``) end the stream: after
  them nothing can be framed again.
* ``encode`` writes BodyLength and CheckSum itself (simplefix does), with the
  standard header in the standard order (8, 9, 35, 49, 56, 34, 52, ...).
* Prices and quantities are decimal strings here; the conversion to ticks and
  lots is the instrument's (``transports.codec.decimals``), never a float.

Custom tags (the user-defined range 20000-39999), on our messages only:
``DEX_REASON`` (20001) carries the stable ``RejectReason`` code of every
refusal, and ``DEX_REPLY`` (20002) marks the messages answering one request:
``N`` on each but the last, ``Y`` on the last; unsolicited messages (a maker's
fill, market data) carry none, so a client can match answers in order.
``DEX_REQUEST_ID`` (20003) on a cancel, replace or mass cancel is the engine's
request id (a retry is answered, never applied twice). Custom MsgTypes U1-U4
carry what FIX has no message for: statistics and cancel on disconnect;
U5/U6 list an instrument (the admin role). ``DEX_RECV_WINDOW`` (20010) is a
signed Logon's receive window (docs/security.md, "FIX").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import simplefix

from engine import CancelReason, MalformedMessage, OrderType, RejectReason, Side, TimeInForce
from transports.core.signing import payload

BEGIN_STRING: Final = b"FIX.4.4"
SOH: Final = b"\x01"

# ------------------------------------------------------------------ tags
ACCOUNT = 1
AVG_PX = 6
BEGIN_SEQ_NO = 7
BEGIN_STRING_TAG = 8
BODY_LENGTH = 9
CHECKSUM = 10
CL_ORD_ID = 11
CUM_QTY = 14
END_SEQ_NO = 16
EXEC_ID = 17
EXEC_INST = 18
LAST_PX = 31
LAST_QTY = 32
MSG_SEQ_NUM = 34
MSG_TYPE = 35
NEW_SEQ_NO = 36
ORDER_ID = 37
ORDER_QTY = 38
ORD_STATUS = 39
ORD_TYPE = 40
ORIG_CL_ORD_ID = 41
POSS_DUP_FLAG = 43
PRICE = 44
REF_SEQ_NUM = 45
SENDER_COMP_ID = 49
SENDING_TIME = 52
SIDE = 54
SYMBOL = 55
TARGET_COMP_ID = 56
TEXT = 58
TIME_IN_FORCE = 59
TRANSACT_TIME = 60
RPT_SEQ = 83
ENCRYPT_METHOD = 98
STOP_PX = 99
CXL_REJ_REASON = 102
ORD_REJ_REASON = 103
HEART_BT_INT = 108
TEST_REQ_ID = 112
GAP_FILL_FLAG = 123
RESET_SEQ_NUM_FLAG = 141
NO_RELATED_SYM = 146
EXEC_TYPE = 150
LEAVES_QTY = 151
NO_MD_ENTRY_TYPES = 267
NO_MD_ENTRIES = 268
MD_ENTRY_TYPE = 269
MD_ENTRY_PX = 270
MD_ENTRY_SIZE = 271
MD_UPDATE_ACTION = 279
MD_REQ_ID = 262
SUBSCRIPTION_REQUEST_TYPE = 263
MARKET_DEPTH = 264
MD_REQ_REJ_REASON = 281
NUMBER_OF_ORDERS = 346
REF_TAG_ID = 371
REF_MSG_TYPE = 372
SESSION_REJECT_REASON = 373
CXL_REJ_RESPONSE_TO = 434
MASS_CANCEL_REQUEST_TYPE = 530
MASS_CANCEL_RESPONSE = 531
MASS_CANCEL_REJECT_REASON = 532
TOTAL_AFFECTED_ORDERS = 533
USERNAME = 553
PASSWORD = 554
SECURITY_REQ_ID = 320
SECURITY_RESPONSE_ID = 322
SECURITY_LIST_REQUEST_TYPE = 559
SECURITY_REQUEST_RESULT = 560
ROUND_LOT = 561
MIN_TRADE_VOL = 562
TRD_MATCH_ID = 880
MIN_PRICE_INCREMENT = 969
AGGRESSOR_SIDE = 2446  # FIX 5.0 SP2's tag, on our trade entries (FIX 4.4 has none)
RAW_DATA_LENGTH = 95
RAW_DATA = 96
DEX_REASON = 20001
DEX_REPLY = 20002
DEX_REQUEST_ID = 20003  # on F, G, q: makes a retry safe (the engine's request id, docs/exactly-once.md)
DEX_GRACE_MS = 20004  # on U3 / U4: cancel on disconnect's grace
DEX_PRIORITY_KEPT = 20006  # on a Replaced report: Y when the order kept its time priority (a quantity decrease)
DEX_REFERENCE_PRICE = 20007  # on SecurityList entries: the instrument's reference price (its price band's centre)
DEX_PRICE_BAND_BPS = 20008  # on SecurityList entries: how far a limit price may stray from the reference (0: no band)
DEX_APPLIED_NS = 20009  # on X: the server's monotonic clock (ns) when the engine applied it (latency, one machine)
MAX_TRADE_VOL = 1140  # FIX 5.0's tag, on SecurityList entries: the largest quantity of one order
DEX_BATCH = 20005  # on an order message: it and the next n - 1 order messages are one batch, applied or refused whole
DEX_RECV_WINDOW = 20010  # on a signed Logon: how far (ms) its SendingTime may be from the server's clock (default 5,000)

# --------------------------------------------------------- message types
HEARTBEAT = b"0"
TEST_REQUEST = b"1"
RESEND_REQUEST = b"2"
REJECT = b"3"
SEQUENCE_RESET = b"4"
LOGOUT = b"5"
LOGON = b"A"
EXECUTION_REPORT = b"8"
ORDER_CANCEL_REJECT = b"9"
NEW_ORDER_SINGLE = b"D"
ORDER_CANCEL_REQUEST = b"F"
ORDER_CANCEL_REPLACE_REQUEST = b"G"
ORDER_STATUS_REQUEST = b"H"
MARKET_DATA_REQUEST = b"V"
MARKET_DATA_SNAPSHOT = b"W"
MARKET_DATA_INCREMENTAL = b"X"
MARKET_DATA_REQUEST_REJECT = b"Y"
ORDER_MASS_CANCEL_REQUEST = b"q"
ORDER_MASS_CANCEL_REPORT = b"r"
SECURITY_LIST_REQUEST = b"x"
SECURITY_LIST = b"y"
# Ours (user-defined MsgTypes start with U): what FIX has no message for.
DEX_STATS_REQUEST = b"U1"  # answered by U2, the server's counters as JSON in RawData (95/96)
DEX_STATS = b"U2"
DEX_CANCEL_ON_DISCONNECT = b"U3"  # DEX_GRACE_MS: arm (or refresh, the heartbeat) or disarm (0); answered by U4
DEX_CANCEL_ON_DISCONNECT_ACK = b"U4"
DEX_ADD_INSTRUMENT = b"U5"  # the instrument as JSON (``Instrument.to_dict``) in RawData (95/96); the admin role
DEX_INSTRUMENT_ADDED = b"U6"  # its answer: the listed instrument, the same way; a refusal is a Reject (3) with DEX_REASON

ADMIN_TYPES: Final = frozenset({HEARTBEAT, TEST_REQUEST, RESEND_REQUEST, REJECT, SEQUENCE_RESET, LOGOUT, LOGON})


# --------------------------------------------- SessionRejectReason (373)
class SessionReject:
    INVALID_TAG_NUMBER = 0
    REQUIRED_TAG_MISSING = 1
    TAG_NOT_DEFINED = 2
    UNDEFINED_TAG = 3
    TAG_WITHOUT_VALUE = 4
    VALUE_INCORRECT = 5
    INCORRECT_DATA_FORMAT = 6
    COMP_ID_PROBLEM = 9
    SENDING_TIME_ACCURACY = 10
    INVALID_MSG_TYPE = 11
    OTHER = 99


# ------------------------------------------------------ enumerated fields
SIDES: Final = {b"1": Side.BUY, b"2": Side.SELL}
SIDE_CODES: Final = {Side.BUY: "1", Side.SELL: "2"}
ORD_TYPES: Final = {b"1": OrderType.MARKET, b"2": OrderType.LIMIT, b"3": OrderType.STOP_MARKET, b"4": OrderType.STOP_LIMIT}
ORD_TYPE_CODES: Final = {v: k.decode() for k, v in ORD_TYPES.items()}
# Day (0) is good till cancel here: the exchange trades around the clock and has no session end.
TIFS: Final = {b"0": TimeInForce.GTC, b"1": TimeInForce.GTC, b"3": TimeInForce.IOC, b"4": TimeInForce.FOK}
TIF_CODES: Final = {TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
POST_ONLY_EXEC_INST: Final = "6"  # Participate don't initiate


class ExecType:
    NEW = "0"
    CANCELED = "4"
    REPLACED = "5"
    REJECTED = "8"
    TRADE = "F"
    ORDER_STATUS = "I"


class OrdStatus:
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REJECTED = "8"


# RejectReason -> OrdRejReason (103). Every refusal also carries its own code in DEX_REASON.
_ORD_REJ: Final = {
    RejectReason.UNKNOWN_SYMBOL: 1,
    RejectReason.INVALID_QUANTITY: 13,
    RejectReason.QUANTITY_BELOW_MIN: 13,
    RejectReason.QUANTITY_ABOVE_MAX: 13,
    RejectReason.RISK_MAX_ORDER_QTY: 3,
    RejectReason.RISK_MAX_NOTIONAL: 3,
    RejectReason.RISK_MAX_OPEN_ORDERS: 3,
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: 6,
    RejectReason.UNKNOWN_ORDER: 5,
    RejectReason.INVALID_ORDER: 11,
    RejectReason.POST_ONLY_WOULD_TAKE: 11,
}
# RejectReason -> CxlRejReason (102).
_CXL_REJ: Final = {RejectReason.UNKNOWN_ORDER: 1, RejectReason.DUPLICATE_CLIENT_ORDER_ID: 6, RejectReason.ORDER_NOT_REPLACEABLE: 0}
CANCEL_CODES: Final = {int(r): r.name for r in CancelReason}


def ord_rej_reason(reason: RejectReason) -> int:
    return _ORD_REJ.get(reason, 99)


def cxl_rej_reason(reason: RejectReason) -> int:
    return _CXL_REJ.get(reason, 99)


def reject_reason(code: bytes | None) -> RejectReason:
    """The ``RejectReason`` a message's DEX_REASON names (INTERNAL_ERROR when absent or unknown)."""
    try:
        return RejectReason(int(code or b"599"))
    except ValueError:
        return RejectReason.INTERNAL_ERROR


# --------------------------------------------------------------- framing
class FrameError(MalformedMessage):
    """Bytes that are not a FIX 4.4 frame; the stream cannot be read further."""


class FrameGarbled(FrameError):
    """The stream does not start with ``8=FIX.4.4|9=<n>|``."""


class FrameTooLarge(FrameError):
    """A frame declared longer than the bound (refused before its body is read)."""

    reason = RejectReason.LIMIT_EXCEEDED


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete frame: its fields (``None`` when they could not be split) and why it is unusable, if it is."""

    message: simplefix.FixMessage | None
    problem: str  # "" for a good frame; else the checksum or field error (the frame is still one message)
    size: int


_PREFIX = b"8=FIX.4.4\x019="
_TRAILER_BYTES = 7  # "10=ddd\x01"
_LENGTH_DIGITS = 9  # a BodyLength longer than this is not a number we read (any bound is far below 10**9)


class FrameReader:
    """Cuts a byte stream into FIX frames, bounded by ``max_message_bytes`` (whole frame)."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> Iterable[Frame]:
        """Every complete frame buffered, in order; raises ``FrameError`` at bytes that cannot be framed."""
        buf = self._buf
        while buf:
            head = bytes(buf[: len(_PREFIX)])
            if not _PREFIX.startswith(head) and not head.startswith(_PREFIX):
                raise FrameGarbled("a message starts with 8=FIX.4.4<SOH>9=<BodyLength><SOH>")
            if len(buf) < len(_PREFIX):
                return
            end = buf.find(SOH, len(_PREFIX), len(_PREFIX) + _LENGTH_DIGITS + 1)
            if end < 0:
                if len(buf) > len(_PREFIX) + _LENGTH_DIGITS:
                    raise FrameGarbled("BodyLength (9) is not a number")
                return
            digits = bytes(buf[len(_PREFIX) : end])
            if not digits.isdigit():
                raise FrameGarbled("BodyLength (9) is not a number")
            total = end + 1 + int(digits) + _TRAILER_BYTES
            if total > self.max_message_bytes:
                raise FrameTooLarge(f"a message is at most {self.max_message_bytes} bytes, this one declares {total}")
            if len(buf) < total:
                return
            raw = bytes(buf[:total])
            del buf[:total]
            yield _split(raw, end + 1 + int(digits))


def _split(raw: bytes, body_end: int) -> Frame:
    trailer = raw[body_end:]
    if not (trailer.startswith(b"10=") and trailer.endswith(SOH) and trailer[3:6].isdigit()):
        return Frame(None, "CheckSum (10) missing where BodyLength (9) says the body ends", len(raw))
    parser = simplefix.FixParser()
    parser.append_buffer(raw)
    try:
        message = parser.get_message()
    except simplefix.errors.ParsingError as exc:  # a tag that is not a number, a field without '='
        return Frame(None, f"fields do not parse: {type(exc).__name__}", len(raw))
    if message is None:
        return Frame(None, "fields do not parse", len(raw))
    if sum(raw[:body_end]) % 256 != int(trailer[3:6]):
        return Frame(message, "CheckSum (10) is wrong", len(raw))
    return Frame(message, "", len(raw))


# -------------------------------------------------------------- encoding
def sending_time(now: dt.datetime | None = None) -> str:
    """UTCTimestamp with milliseconds (YYYYMMDD-HH:MM:SS.sss)."""
    moment = now or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y%m%d-%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def sending_time_ms(value: bytes | None) -> int | None:
    """A SendingTime (``YYYYMMDD-HH:MM:SS`` or ``YYYYMMDD-HH:MM:SS.sss``, UTC) as Unix ms; None when malformed."""
    if value is None or len(value) not in (17, 21):
        return None
    millis = 0
    if len(value) == 21:
        if value[17:18] != b"." or not value[18:].isdigit():
            return None
        millis = int(value[18:])
    try:
        moment = dt.datetime.strptime(value[:17].decode("ascii"), "%Y%m%d-%H:%M:%S").replace(tzinfo=dt.UTC)
    except (UnicodeDecodeError, ValueError):
        return None
    return int(moment.timestamp()) * 1000 + millis


def logon_payload(sending_ms: int, window_ms: int, seq: int, sender: str, target: str) -> bytes:
    """What a signed Logon's signature covers (``transports.core.signing.payload``, docs/security.md "FIX")."""
    return payload(sending_ms, window_ms, "A", f"{seq}|{sender}|{target}", "", b"")


def new_message(msg_type: bytes) -> simplefix.FixMessage:
    """A message of ``msg_type`` with its BeginString; the session adds the rest of the header."""
    message = simplefix.FixMessage()
    message.append_pair(BEGIN_STRING_TAG, BEGIN_STRING, header=True)
    message.append_pair(MSG_TYPE, msg_type, header=True)
    return message


def encode(message: simplefix.FixMessage, sender: str, target: str, seq: int, poss_dup: bool = False, sent: str = "") -> bytes:
    """``message`` with the rest of its standard header, framed (BodyLength and CheckSum computed); ``sent``: its
    SendingTime (now when empty; a signed Logon signs the one it sends)."""
    message.append_pair(SENDER_COMP_ID, sender, header=True)
    message.append_pair(TARGET_COMP_ID, target, header=True)
    message.append_pair(MSG_SEQ_NUM, seq, header=True)
    message.append_pair(SENDING_TIME, sent or sending_time(), header=True)
    if poss_dup:
        message.append_pair(POSS_DUP_FLAG, "Y", header=True)
    data: bytes = message.encode()
    return data


def text(message: simplefix.FixMessage, tag: int) -> str | None:
    """Field ``tag`` as text (UTF-8; a field that is not UTF-8 is ``MalformedMessage``), or None."""
    value = message.get(tag)
    if value is None:
        return None
    try:
        decoded: str = value.decode()
    except UnicodeDecodeError:
        raise MalformedMessage(f"tag {tag} is not UTF-8 text") from None
    return decoded


def integer(message: simplefix.FixMessage, tag: int) -> int | None:
    """Field ``tag`` as a non-negative integer, or None; ``MalformedMessage`` if it is not one."""
    value = message.get(tag)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise MalformedMessage(f"tag {tag} is not a non-negative integer")
    return int(value)
