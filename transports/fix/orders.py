"""FIX order entry: NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest, OrderMassCancelRequest in,
engine commands out; engine events in, ExecutionReport / OrderCancelReject / OrderMassCancelReport out.

Pure translation plus one piece of memory (``OrderLedger``): what FIX says
about an order that the engine's events do not, namely its current ClOrdID
(a replace gives the order a new one; the engine keeps the first), its
OrderQty (filled + open) and the notional traded so far (for AvgPx).

Invariants:

* Prices and quantities are decimal strings on the wire and integer ticks and
  lots inside, converted by the instrument's ``DecimalConverter``: a value off
  the tick or lot is refused (INVALID_PRICE / INVALID_QUANTITY), never rounded.
  AvgPx is exact decimal arithmetic, never a float.
* Every refusal names its stable ``RejectReason`` in DEX_REASON (20001),
  besides the standard OrdRejReason (103) / CxlRejReason (102) and Text (58).
* A trader sees reports of its own orders only: a reply's events about other
  traders' orders are dropped (their owners get their fills from the fills hub).
* The ledger is bounded by the orders that are open: an order's entry goes
  when it is filled, cancelled or rejected here, and entries of orders that
  ended elsewhere (another wire, cancel on disconnect) are swept out when a
  trader's ledger passes ``MAX_TRACKED``. An order that is not in it (the
  server restarted) is described from the engine's ``OrderView``; only its
  AvgPx then counts from the fills seen since.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

import simplefix

from engine import (
    CancelOrder,
    Command,
    Engine,
    Event,
    ExchangeError,
    Instrument,
    MalformedMessage,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderType,
    OrderView,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    Side,
    TimeInForce,
    TradeExecuted,
)
from transports.codec.decimals import converter
from transports.codec.market_messages import Fill
from transports.core.limits import MAX_TEXT
from transports.fix import protocol as p

Lookup = Callable[[str], Instrument | None]
_STOPS = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
MAX_TRACKED = 100_000  # ledger entries per trader before those of orders no longer open are swept out


class MissingField(MalformedMessage):
    """A required field is absent: a session-level Reject (373 = 1) naming it in RefTagID."""

    def __init__(self, tag: int) -> None:
        super().__init__(f"required tag {tag} is missing")
        self.tag = tag


@dataclass(slots=True)
class TrackedOrder:
    order_id: int
    cl_ord_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: int
    order_qty: int  # lots: filled + open
    cum_qty: int = 0
    notional: int = 0  # sum of price (ticks) x quantity (lots) of the fills seen
    seen_qty: int = 0  # lots of the fills seen (less than cum_qty for an order known only from the engine)


@dataclass(slots=True)
class Request:
    """One order-entry message, decoded: the command and what its answers must repeat."""

    msg_type: bytes
    command: Command | None  # None: the message made no command (it is being refused)
    cl_ord_id: str
    orig_cl_ord_id: str = ""
    order_qty: int = 0  # G: the new OrderQty (filled + open)


@dataclass(slots=True)
class OrderLedger:
    """What FIX says about one trader's open orders that the engine does not."""

    by_id: dict[int, TrackedOrder] = field(default_factory=dict)
    by_cl_ord_id: dict[str, int] = field(default_factory=dict)

    def add(self, order: TrackedOrder) -> None:
        self.by_id[order.order_id] = order
        self.by_cl_ord_id[order.cl_ord_id] = order.order_id

    def forget(self, order_id: int) -> None:
        order = self.by_id.pop(order_id, None)
        if order is not None and self.by_cl_ord_id.get(order.cl_ord_id) == order_id:
            del self.by_cl_ord_id[order.cl_ord_id]


def _required(message: simplefix.FixMessage, tag: int) -> str:
    value = p.text(message, tag)
    if value is None or value == "":
        raise MissingField(tag)
    if len(value) > MAX_TEXT:
        raise MalformedMessage(f"tag {tag} holds at most {MAX_TEXT} characters")
    return value


def _optional(message: simplefix.FixMessage, tag: int) -> str:
    value = p.text(message, tag) or ""
    if len(value) > MAX_TEXT:
        raise MalformedMessage(f"tag {tag} holds at most {MAX_TEXT} characters")
    return value


def _request_id(message: simplefix.FixMessage) -> int:
    return p.integer(message, p.DEX_REQUEST_ID) or 0


def _code(message: simplefix.FixMessage, tag: int, table: Mapping[bytes, object], what: str) -> object:
    value = message.get(tag)
    if value is None:
        raise MissingField(tag)
    if value not in table:
        raise MalformedMessage(f"{what} ({tag}) {value[:8]!r} is not supported", RejectReason.INVALID_ORDER)
    return table[value]


class OrderEntry:
    """Order entry for every FIX session of one gateway (one ledger per trader)."""

    def __init__(self, lookup: Lookup, engine: Engine) -> None:
        self._lookup = lookup
        self._engine = engine
        self._ledgers: dict[str, OrderLedger] = {}
        self._exec_ids = 0

    def ledger(self, trader: str) -> OrderLedger:
        ledger = self._ledgers.get(trader)
        if ledger is None:
            ledger = self._ledgers[trader] = OrderLedger()
        return ledger

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self._lookup(symbol)
        if instrument is None:
            raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
        return instrument

    # ------------------------------------------------------------ decoding
    def decode(self, msg_type: bytes, message: simplefix.FixMessage, trader: str) -> Request:
        """The command of one order-entry message (``MissingField``, ``MalformedMessage`` or another
        ``ExchangeError`` when it makes none)."""
        if msg_type == p.NEW_ORDER_SINGLE:
            return self._new_order(message, trader)
        if msg_type == p.ORDER_CANCEL_REQUEST:
            cl_ord_id = _required(message, p.CL_ORD_ID)
            order_id, orig = self._target(message, trader)
            return Request(msg_type, CancelOrder(trader, order_id, orig, _request_id(message)), cl_ord_id, orig)
        if msg_type == p.ORDER_CANCEL_REPLACE_REQUEST:
            return self._replace(message, trader)
        if msg_type == p.ORDER_MASS_CANCEL_REQUEST:
            cl_ord_id = _required(message, p.CL_ORD_ID)
            kind = _required(message, p.MASS_CANCEL_REQUEST_TYPE)
            if kind == "1":  # all orders of one security
                return Request(msg_type, MassCancel(trader, _required(message, p.SYMBOL), request_id=_request_id(message)), cl_ord_id)
            if kind == "7":  # all orders
                return Request(msg_type, MassCancel(trader, request_id=_request_id(message)), cl_ord_id)
            raise MalformedMessage("MassCancelRequestType (530) is 1 (one symbol) or 7 (all orders)")
        raise MalformedMessage(f"not an order-entry message: {msg_type!r}")

    def _new_order(self, message: simplefix.FixMessage, trader: str) -> Request:
        cl_ord_id = _required(message, p.CL_ORD_ID)
        symbol = _required(message, p.SYMBOL)
        side = _code(message, p.SIDE, p.SIDES, "Side")
        order_type = _code(message, p.ORD_TYPE, p.ORD_TYPES, "OrdType")
        tif = _code(message, p.TIME_IN_FORCE, p.TIFS, "TimeInForce") if message.get(p.TIME_IN_FORCE) else TimeInForce.GTC
        assert isinstance(side, Side) and isinstance(order_type, OrderType) and isinstance(tif, TimeInForce)
        conv = converter(self._instrument(symbol))
        qty = conv.parse_qty(_required(message, p.ORDER_QTY))
        # Required where the order type needs them; read whenever present, so the engine judges every combination
        # (a market order with a price is INVALID_ORDER there, the same on every wire).
        price_text = _required(message, p.PRICE) if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else _optional(message, p.PRICE)
        stop_text = _required(message, p.STOP_PX) if order_type in _STOPS else _optional(message, p.STOP_PX)
        price = conv.parse_price(price_text) if price_text else 0
        stop = conv.parse_price(stop_text) if stop_text else 0
        post_only = p.POST_ONLY_EXEC_INST in _optional(message, p.EXEC_INST).split()
        command = PlaceOrder(trader, cl_ord_id, symbol, side, qty, price, order_type, tif, post_only, stop)
        return Request(p.NEW_ORDER_SINGLE, command, cl_ord_id)

    def _target(self, message: simplefix.FixMessage, trader: str) -> tuple[int, str]:
        """The order a cancel or replace names: OrderID (37), else OrigClOrdID (41) as the ledger or engine knows it."""
        orig = _optional(message, p.ORIG_CL_ORD_ID)
        order_id = p.integer(message, p.ORDER_ID) or 0
        if order_id:
            return order_id, orig
        if not orig:
            raise MissingField(p.ORIG_CL_ORD_ID)
        known = self.ledger(trader).by_cl_ord_id.get(orig)
        if known is None:
            known = self._engine.order_id_for(trader, orig)
        return known, orig

    def _replace(self, message: simplefix.FixMessage, trader: str) -> Request:
        cl_ord_id = _required(message, p.CL_ORD_ID)
        order_id, orig = self._target(message, trader)
        view = self._engine.order_status(trader, order_id) if order_id else None
        if view is None or view.status in (OrderStatus.FILLED, OrderStatus.CANCELLED):
            # No open order to count OrderQty against: the engine refuses it (UNKNOWN_ORDER), counted as on every wire.
            command = ReplaceOrder(trader, order_id, 0, 0, "", orig, _request_id(message))
            return Request(p.ORDER_CANCEL_REPLACE_REQUEST, command, cl_ord_id, orig)
        symbol = _optional(message, p.SYMBOL) or view.symbol  # a different symbol is the engine's to refuse
        conv = converter(self._instrument(symbol))
        order_qty = conv.parse_qty(_required(message, p.ORDER_QTY))
        price_text = _optional(message, p.PRICE)
        new_price = conv.parse_price(price_text) if price_text else 0
        new_qty = order_qty - view.filled  # FIX's OrderQty counts what is filled; the engine's new_qty is what stays open
        if new_qty <= 0:
            # Fills overtook the request (its sender counted fewer): nothing is left to trade, so the rest is cancelled,
            # as venues do (CME: a quantity at or below the filled one cancels the order), through the engine.
            cancel = CancelOrder(trader, order_id, orig, _request_id(message))
            return Request(p.ORDER_CANCEL_REPLACE_REQUEST, cancel, cl_ord_id, orig, order_qty)
        command = ReplaceOrder(trader, order_id, new_price, new_qty, symbol, request_id=_request_id(message))
        return Request(p.ORDER_CANCEL_REPLACE_REQUEST, command, cl_ord_id, orig, order_qty)

    # ------------------------------------------------------------ encoding
    def _exec_id(self) -> str:
        self._exec_ids += 1
        return f"X{self._exec_ids}"

    def reports(self, request: Request, events: Sequence[Event], trader: str) -> list[simplefix.FixMessage]:
        """The messages answering ``request``, from the events the engine gave it (this trader's orders only)."""
        out: list[simplefix.FixMessage] = []
        ledger = self.ledger(trader)
        cancelled = 0
        for event in events:
            if isinstance(event, OrderAccepted) and event.trader == trader:
                order = TrackedOrder(
                    event.order_id, event.client_order_id, event.symbol, event.side, event.order_type, event.tif, event.price, event.qty
                )
                ledger.add(order)
                if len(ledger.by_id) > MAX_TRACKED:
                    self._prune(ledger, trader)
                out.append(self._report(order, p.ExecType.NEW, f"{event.seq}"))
            elif isinstance(event, OrderRejected) and event.trader == trader:
                out.append(self.refusal(request, ExchangeError(event.message, event.reason), event.order_id))
            elif isinstance(event, TradeExecuted) and event.taker_trader == trader:
                taker = self._tracked(trader, event.taker_order_id)
                if taker is not None:
                    order = taker
                    out.append(self._fill(order, event.price, event.qty, event.taker_remaining, f"{event.seq}T", event.trade_id))
                    if event.taker_remaining == 0:
                        ledger.forget(order.order_id)
            elif isinstance(event, OrderCancelled) and event.trader == trader:
                cancelled += 1
                out.append(self._cancelled(request, event, ledger))
            elif isinstance(event, OrderReplaced) and event.trader == trader:
                out.append(self._replaced(request, event, ledger))
        if request.msg_type == p.ORDER_MASS_CANCEL_REQUEST:
            out.append(self._mass_cancel_report(request, cancelled))
        return out

    def _prune(self, ledger: OrderLedger, trader: str) -> None:
        """Forget the orders that ended out of FIX's sight (cancelled over another wire, or on disconnect)."""
        for order_id in list(ledger.by_id):
            view = self._engine.order_status(trader, order_id)
            if view is None or view.status in (OrderStatus.FILLED, OrderStatus.CANCELLED):
                ledger.forget(order_id)

    def status_report(self, trader: str, order_id: int) -> simplefix.FixMessage | None:
        """An ExecutionReport (ExecType I) of one of ``trader``'s orders, open or done (None: no such order)."""
        view = self._engine.order_status(trader, order_id) if order_id else None
        if view is None:
            return None
        # CumQty from the engine: fills this session has not seen (a stop fired by another's trade) count too.
        order = replace(self.ledger(trader).by_id.get(order_id) or _from_view(view), cum_qty=view.filled)
        status = {
            OrderStatus.FILLED: p.OrdStatus.FILLED,
            OrderStatus.CANCELLED: p.OrdStatus.CANCELED,
            OrderStatus.PARTIALLY_FILLED: p.OrdStatus.PARTIALLY_FILLED,
        }.get(view.status, p.OrdStatus.NEW)
        return self._report(order, p.ExecType.ORDER_STATUS, self._exec_id(), leaves=view.remaining, status=status)

    def _tracked(self, trader: str, order_id: int) -> TrackedOrder | None:
        order = self.ledger(trader).by_id.get(order_id)
        if order is not None:
            return order
        view = self._engine.order_status(trader, order_id)
        if view is None:
            return None
        order = _from_view(view)
        self.ledger(trader).add(order)
        return order

    def maker_fill(self, trader: str, fill: Fill) -> simplefix.FixMessage | None:
        """The ExecutionReport of a fill of ``trader``'s resting order (None when the order is unknown)."""
        order = self._tracked(trader, fill.order_id)
        if order is None:
            return None
        report = self._fill(order, fill.price, fill.qty, fill.remaining, f"{fill.seq}M", fill.trade_id)
        if fill.remaining == 0:
            self.ledger(trader).forget(order.order_id)
        return report

    def _fill(self, order: TrackedOrder, price: int, qty: int, remaining: int, exec_id: str, trade_id: int) -> simplefix.FixMessage:
        order.cum_qty += qty
        order.notional += price * qty
        order.seen_qty += qty
        order.order_qty = order.cum_qty + remaining
        report = self._report(order, p.ExecType.TRADE, exec_id, leaves=remaining)
        conv = converter(self._instrument(order.symbol))
        report.append_pair(p.LAST_PX, conv.format_price(price))
        report.append_pair(p.LAST_QTY, conv.format_qty(qty))
        report.append_pair(p.TRD_MATCH_ID, trade_id)
        return report

    def _cancelled(self, request: Request, event: OrderCancelled, ledger: OrderLedger) -> simplefix.FixMessage:
        order = ledger.by_id.get(event.order_id) or self._tracked(event.trader, event.order_id)
        if order is None:  # unknown to both: describe it from the event alone
            order = TrackedOrder(
                event.order_id, event.client_order_id, event.symbol, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 0, event.qty
            )
        leaves = event.remaining
        order.order_qty = max(order.order_qty, order.cum_qty + event.qty + leaves)  # known from the engine alone: rebuilt
        report = self._report(order, p.ExecType.CANCELED, f"{event.seq}C{event.order_id}", leaves=leaves, status=p.OrdStatus.CANCELED)
        if isinstance(request.command, CancelOrder) and request.command.order_id in (0, event.order_id):
            report.remove(p.CL_ORD_ID)
            report.append_pair(p.CL_ORD_ID, request.cl_ord_id)
            report.append_pair(p.ORIG_CL_ORD_ID, order.cl_ord_id)
        report.append_pair(p.TEXT, p.CANCEL_CODES.get(int(event.reason), "CANCELLED"))
        if leaves == 0:
            ledger.forget(event.order_id)
        return report

    def _replaced(self, request: Request, event: OrderReplaced, ledger: OrderLedger) -> simplefix.FixMessage:
        order = ledger.by_id.get(event.order_id) or self._tracked(event.trader, event.order_id)
        assert order is not None  # the engine just replaced it: the ledger or the engine knows it
        ledger.forget(order.order_id)
        orig = order.cl_ord_id
        order.cl_ord_id = request.cl_ord_id or orig
        order.price = event.price
        order.order_qty = order.cum_qty + event.qty
        ledger.add(order)
        report = self._report(order, p.ExecType.REPLACED, f"{event.seq}", leaves=event.qty)
        report.append_pair(p.ORIG_CL_ORD_ID, orig)
        report.append_pair(p.DEX_PRIORITY_KEPT, "Y" if event.priority_kept else "N")
        return report

    def _report(
        self, order: TrackedOrder, exec_type: str, exec_id: str, *, leaves: int | None = None, status: str | None = None
    ) -> simplefix.FixMessage:
        instrument = self._instrument(order.symbol)
        conv = converter(instrument)
        leaves = order.order_qty - order.cum_qty if leaves is None else leaves
        if status is None:
            status = (
                p.OrdStatus.FILLED if leaves == 0 and order.cum_qty else p.OrdStatus.PARTIALLY_FILLED if order.cum_qty else p.OrdStatus.NEW
            )
        report = p.new_message(p.EXECUTION_REPORT)
        report.append_pair(p.ORDER_ID, order.order_id)
        report.append_pair(p.CL_ORD_ID, order.cl_ord_id)
        report.append_pair(p.EXEC_ID, exec_id)
        report.append_pair(p.EXEC_TYPE, exec_type)
        report.append_pair(p.ORD_STATUS, status)
        report.append_pair(p.SYMBOL, order.symbol)
        report.append_pair(p.SIDE, p.SIDE_CODES[order.side])
        report.append_pair(p.ORD_TYPE, p.ORD_TYPE_CODES[order.order_type])
        report.append_pair(p.TIME_IN_FORCE, p.TIF_CODES[order.tif])
        if order.price:
            report.append_pair(p.PRICE, conv.format_price(order.price))
        report.append_pair(p.ORDER_QTY, conv.format_qty(order.order_qty))
        report.append_pair(p.CUM_QTY, conv.format_qty(order.cum_qty))
        report.append_pair(p.LEAVES_QTY, conv.format_qty(leaves))
        report.append_pair(p.AVG_PX, avg_price(order.notional, order.seen_qty, instrument.tick_size))
        report.append_pair(p.TRANSACT_TIME, p.sending_time())
        return report

    def refusal(self, request: Request | None, error: ExchangeError, order_id: int = 0) -> simplefix.FixMessage:
        """The business-level answer to a refused request: ER Rejected (D), OrderCancelReject (F, G), report (q)."""
        msg_type = request.msg_type if request is not None else p.NEW_ORDER_SINGLE
        if msg_type in (p.ORDER_CANCEL_REQUEST, p.ORDER_CANCEL_REPLACE_REQUEST):
            out = p.new_message(p.ORDER_CANCEL_REJECT)
            out.append_pair(p.ORDER_ID, order_id or "NONE")
            out.append_pair(p.CL_ORD_ID, request.cl_ord_id if request else "NONE")
            out.append_pair(p.ORIG_CL_ORD_ID, (request.orig_cl_ord_id if request else "") or "NONE")
            out.append_pair(p.ORD_STATUS, p.OrdStatus.REJECTED)
            out.append_pair(p.CXL_REJ_RESPONSE_TO, "1" if msg_type == p.ORDER_CANCEL_REQUEST else "2")
            out.append_pair(p.CXL_REJ_REASON, p.cxl_rej_reason(error.reason))
        elif msg_type == p.ORDER_MASS_CANCEL_REQUEST:
            out = p.new_message(p.ORDER_MASS_CANCEL_REPORT)
            out.append_pair(p.CL_ORD_ID, request.cl_ord_id if request else "NONE")
            out.append_pair(p.ORDER_ID, "NONE")
            out.append_pair(p.MASS_CANCEL_REQUEST_TYPE, "7")
            out.append_pair(p.MASS_CANCEL_RESPONSE, "0")
            out.append_pair(p.MASS_CANCEL_REJECT_REASON, "99")
        else:
            out = p.new_message(p.EXECUTION_REPORT)
            command = request.command if request is not None else None
            out.append_pair(p.ORDER_ID, order_id or "NONE")
            out.append_pair(p.CL_ORD_ID, request.cl_ord_id if request else "NONE")
            out.append_pair(p.EXEC_ID, self._exec_id())
            out.append_pair(p.EXEC_TYPE, p.ExecType.REJECTED)
            out.append_pair(p.ORD_STATUS, p.OrdStatus.REJECTED)
            if isinstance(command, PlaceOrder):
                out.append_pair(p.SYMBOL, command.symbol)
                out.append_pair(p.SIDE, p.SIDE_CODES[command.side])
            out.append_pair(p.ORD_REJ_REASON, p.ord_rej_reason(error.reason))
            out.append_pair(p.CUM_QTY, "0")
            out.append_pair(p.LEAVES_QTY, "0")
            out.append_pair(p.AVG_PX, "0")
        out.append_pair(p.TEXT, f"{error.reason.name}: {error.message}"[:200])
        out.append_pair(p.DEX_REASON, int(error.reason))
        return out

    def _mass_cancel_report(self, request: Request, cancelled: int) -> simplefix.FixMessage:
        command = request.command
        assert isinstance(command, MassCancel)
        out = p.new_message(p.ORDER_MASS_CANCEL_REPORT)
        out.append_pair(p.CL_ORD_ID, request.cl_ord_id)
        out.append_pair(p.ORDER_ID, request.cl_ord_id)
        out.append_pair(p.MASS_CANCEL_REQUEST_TYPE, "1" if command.symbol else "7")
        out.append_pair(p.MASS_CANCEL_RESPONSE, "1" if command.symbol else "7")
        if command.symbol:
            out.append_pair(p.SYMBOL, command.symbol)
        out.append_pair(p.TOTAL_AFFECTED_ORDERS, cancelled)
        return out


def _from_view(view: OrderView) -> TrackedOrder:
    return TrackedOrder(
        view.order_id, view.client_order_id, view.symbol, view.side, view.order_type, view.tif, view.price,
        view.filled + view.remaining, view.filled,
    )  # fmt: skip


def avg_price(notional: int, cum_qty: int, tick_size: Decimal) -> str:
    """``notional`` (ticks x lots) over ``cum_qty`` lots in price units, in decimal arithmetic (28 digits), "0" when nothing
    filled."""
    if cum_qty <= 0:
        return "0"
    value = Decimal(notional) * tick_size / Decimal(cum_qty)
    return format(value.normalize(), "f")


def undecoded(msg_type: bytes, message: simplefix.FixMessage) -> Request:
    """What the refusal of an order message that made no command repeats: its type and ids (as far as they read)."""
    try:
        cl_ord_id = _optional(message, p.CL_ORD_ID) or "NONE"
        orig = _optional(message, p.ORIG_CL_ORD_ID)
    except MalformedMessage:
        cl_ord_id, orig = "NONE", ""
    return Request(msg_type, None, cl_ord_id, orig)
