"""Order vocabulary shared by commands, events and the book.

Every enum here is an ``IntEnum`` whose integer values are part of the wire
contract (journal, protobuf, JSON Lines): a value is never renumbered or
reused, only appended.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2
    STOP_MARKET = 3
    STOP_LIMIT = 4


class TimeInForce(IntEnum):
    GTC = 1  # rests until filled or cancelled
    IOC = 2  # fills what it can at once; the remainder is cancelled
    FOK = 3  # fills completely at once, or nothing happens


class SelfTradePrevention(IntEnum):
    """What happens when an incoming order would trade with its own trader's order."""

    CANCEL_NEWEST = 1  # cancel the incoming (aggressing) order's remainder
    CANCEL_OLDEST = 2  # cancel the resting order and keep matching
    CANCEL_BOTH = 3  # cancel both
    DECREMENT = 4  # reduce both by the smaller quantity, no trade


class OrderStatus(IntEnum):
    PENDING_TRIGGER = 1  # a stop order waiting for its trigger price
    NEW = 2  # resting, nothing filled yet
    PARTIALLY_FILLED = 3  # resting, partly filled
    FILLED = 4
    CANCELLED = 5
