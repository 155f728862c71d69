"""The pure matching engine.

No I/O, no asyncio, no clock, no randomness: an import-linter contract enforces
it. Everything a transport or a trader needs is re-exported here; nothing
outside ``engine`` should import its submodules' private names.
"""

from engine.commands import AddInstrument, CancelOrder, Command, MassCancel, PlaceOrder, ReplaceOrder
from engine.engine import Engine
from engine.errors import ExchangeError, InvalidDecimal, MalformedMessage, NotConnected, Overloaded, SnapshotError
from engine.events import (
    BookDelta,
    Event,
    InstrumentAdded,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    StopTriggered,
    TradeExecuted,
)
from engine.instruments import Instrument
from engine.queries import BookDepth, L2Level, OrderView
from engine.reasons import CancelReason, RejectReason
from engine.risk import RiskLimits
from engine.snapshot import restore, snapshot, state_hash
from engine.types import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce

__all__ = [
    "AddInstrument",
    "BookDelta",
    "BookDepth",
    "CancelOrder",
    "CancelReason",
    "Command",
    "Engine",
    "Event",
    "ExchangeError",
    "Instrument",
    "InstrumentAdded",
    "InvalidDecimal",
    "L2Level",
    "MalformedMessage",
    "MassCancel",
    "NotConnected",
    "OrderAccepted",
    "OrderCancelled",
    "OrderRejected",
    "OrderReplaced",
    "OrderStatus",
    "OrderType",
    "OrderView",
    "Overloaded",
    "PlaceOrder",
    "RejectReason",
    "ReplaceOrder",
    "RiskLimits",
    "SelfTradePrevention",
    "Side",
    "SnapshotError",
    "StopTriggered",
    "TimeInForce",
    "TradeExecuted",
    "restore",
    "snapshot",
    "state_hash",
]
