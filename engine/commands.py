"""Commands: what a trader (or the operator) asks the engine to do.

Commands are imperative and immutable. Prices are ``int`` ticks and quantities
``int`` lots; ``0`` means "absent" (a market order has ``price == 0``, a
replace with ``new_qty == 0`` keeps the quantity). The engine validates every
field; a command object is never trusted just because it type-checks.
"""

from __future__ import annotations

from typing import ClassVar

from engine.instruments import Instrument
from engine.native import mypyc_attr
from engine.reasons import CancelReason
from engine.record import Record
from engine.types import OrderType, SelfTradePrevention, Side, TimeInForce


@mypyc_attr(acyclic=True)
class PlaceOrder(Record):
    __slots__ = ("client_order_id", "order_type", "post_only", "price", "qty", "side", "stop_price", "stp", "symbol", "tif", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "trader",
        "client_order_id",
        "symbol",
        "side",
        "qty",
        "price",
        "order_type",
        "tif",
        "post_only",
        "stop_price",
        "stp",
    )

    trader: str
    client_order_id: str
    symbol: str
    side: Side
    qty: int
    price: int  # ticks; 0 for market and stop-market orders
    order_type: OrderType
    tif: TimeInForce
    post_only: bool
    stop_price: int  # ticks; stop orders only
    stp: SelfTradePrevention

    def __init__(
        self,
        trader: str,
        client_order_id: str,
        symbol: str,
        side: Side,
        qty: int,
        price: int = 0,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        stop_price: int = 0,
        stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST,
    ) -> None:
        self.trader = trader
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.price = price
        self.order_type = order_type
        self.tif = tif
        self.post_only = post_only
        self.stop_price = stop_price
        self.stp = stp


@mypyc_attr(acyclic=True)
class CancelOrder(Record):
    """Cancel by exchange ``order_id``, or by ``client_order_id`` when ``order_id`` is 0.

    ``request_id`` (0 = none) makes a retry safe: within the de-duplication
    window a cancel with a request id the trader already used is answered with
    the first one's outcome and not applied again (``Engine``, docs/exactly-once.md).
    """

    __slots__ = ("client_order_id", "order_id", "request_id", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = ("trader", "order_id", "client_order_id", "request_id")

    trader: str
    order_id: int
    client_order_id: str
    request_id: int

    def __init__(self, trader: str, order_id: int = 0, client_order_id: str = "", request_id: int = 0) -> None:
        self.trader = trader
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.request_id = request_id


@mypyc_attr(acyclic=True)
class ReplaceOrder(Record):
    """Change a resting order's price and/or quantity (``0`` = unchanged).

    The order is named by ``order_id``, or by ``client_order_id`` when
    ``order_id`` is 0. ``new_qty`` is the new remaining quantity. A quantity
    decrease at the same price keeps time priority; a price change or a
    quantity increase sends the order to the back of its (new) level, and a new
    price that crosses the spread trades at once. ``symbol``, when given, must
    be the order's symbol (the edge needs it to convert the price).
    ``request_id`` (0 = none): as for ``CancelOrder``.
    """

    __slots__ = ("client_order_id", "new_price", "new_qty", "order_id", "request_id", "symbol", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = ("trader", "order_id", "new_price", "new_qty", "symbol", "client_order_id", "request_id")

    trader: str
    order_id: int
    new_price: int
    new_qty: int
    symbol: str
    client_order_id: str
    request_id: int

    def __init__(
        self,
        trader: str,
        order_id: int,
        new_price: int = 0,
        new_qty: int = 0,
        symbol: str = "",
        client_order_id: str = "",
        request_id: int = 0,
    ) -> None:
        self.trader = trader
        self.order_id = order_id
        self.new_price = new_price
        self.new_qty = new_qty
        self.symbol = symbol
        self.client_order_id = client_order_id
        self.request_id = request_id


@mypyc_attr(acyclic=True)
class MassCancel(Record):
    """Cancel every open order of ``trader``, in ``symbol`` or (``""``) in all symbols.

    ``reason`` is what the cancels say: ``MASS_CANCEL`` when the trader asks
    (the only one a wire decodes), ``CANCEL_ON_DISCONNECT`` when the exchange
    issues it for a session that went silent (``transports.core.sessions``).
    It is part of the command, so a replayed journal cancels with the same reason.
    ``request_id`` (0 = none): as for ``CancelOrder``.
    """

    __slots__ = ("reason", "request_id", "symbol", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = ("trader", "symbol", "reason", "request_id")

    trader: str
    symbol: str
    reason: CancelReason
    request_id: int

    def __init__(self, trader: str, symbol: str = "", reason: CancelReason = CancelReason.MASS_CANCEL, request_id: int = 0) -> None:
        self.trader = trader
        self.symbol = symbol
        self.reason = reason
        self.request_id = request_id


@mypyc_attr(acyclic=True)
class AddInstrument(Record):
    """Operator command: list a new symbol. Journaled like any other command."""

    __slots__ = ("instrument",)
    FIELDS: ClassVar[tuple[str, ...]] = ("instrument",)

    instrument: Instrument

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument


Command = PlaceOrder | CancelOrder | ReplaceOrder | MassCancel | AddInstrument
