"""Stable reason codes: why a command was rejected, why an order was cancelled.

Codes are grouped in ranges by the stage that produces them (as exchange-core
does with its result codes):

====== ==============================================================
range  stage
====== ==============================================================
1xx    validation of the command against the instrument
2xx    pre-trade risk
3xx    execution rules (post-only, ...)
4xx    order management (cancel / replace / mass cancel)
5xx    the system around the engine (gateway, codec, transports)
====== ==============================================================

A code is never renumbered or reused. Each wire (HTTP status, gRPC status,
wire code) maps these in exactly one table, owned by the codec.
"""

from __future__ import annotations

from enum import IntEnum


class RejectReason(IntEnum):
    # 1xx: validation
    UNKNOWN_SYMBOL = 100
    INVALID_PRICE = 101  # non-positive, off the tick, or not a decimal
    INVALID_QUANTITY = 102  # non-positive, off the lot, or not a decimal
    QUANTITY_BELOW_MIN = 103
    QUANTITY_ABOVE_MAX = 104
    INVALID_ORDER = 105  # a combination of fields that makes no order
    DUPLICATE_CLIENT_ORDER_ID = 106
    INSTRUMENT_EXISTS = 107
    INVALID_INSTRUMENT = 108
    # 2xx: pre-trade risk
    RISK_MAX_ORDER_QTY = 200
    RISK_MAX_NOTIONAL = 201
    PRICE_OUT_OF_BAND = 202
    RISK_MAX_OPEN_ORDERS = 203
    # 3xx: execution rules
    POST_ONLY_WOULD_TAKE = 300
    # 4xx: order management
    UNKNOWN_ORDER = 400  # no such live order of this trader
    ORDER_NOT_REPLACEABLE = 401
    DUPLICATE_REQUEST_ID = 402  # a request id answered longer ago than the window's duration: nothing applied
    # 5xx: around the engine (never produced by the engine itself)
    OVERLOADED = 500  # the gateway's queue is full: retry later
    MALFORMED_MESSAGE = 501  # the codec could not decode the input
    UNAUTHORIZED = 502  # the trader may not act on this
    UNAVAILABLE = 503  # no matching server reachable / not the leader
    LIMIT_EXCEEDED = 504  # a request or connection over a stated limit (docs/limits.md): nothing applied
    UNAUTHENTICATED = 505  # no valid credentials: missing, unknown, revoked, stale, replayed or badly signed (docs/security.md)
    RATE_LIMITED = 506  # the key's request rate or requests in flight over its limit: nothing applied, retry later
    INTERNAL_ERROR = 599


class CancelReason(IntEnum):
    USER = 1  # the trader asked
    IOC_REMAINDER = 2  # the unfilled rest of an IOC order
    MARKET_REMAINDER = 3  # the unfilled rest of a market order (market orders never rest)
    FOK_NOT_FILLED = 4  # a FOK order that could not fill completely
    SELF_TRADE = 5  # self-trade prevention
    MASS_CANCEL = 6  # a mass cancel by the trader
    CANCEL_ON_DISCONNECT = 7  # the trader's session went silent past its grace (docs/sessions.md)
