"""What each reject and cancel reason means, in one line: the one table the harness's summary reads.

Invariant: every ``RejectReason`` and every ``CancelReason`` member has a
meaning here (a unit test checks it), written for the person reading a
``dex-trader`` or ``make demo`` summary: what the trader did, what the
exchange did about it, and, where it is the harness's own doing, why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from engine import CancelReason, RejectReason

REJECT_MEANINGS: Final[Mapping[RejectReason, str]] = {
    RejectReason.UNKNOWN_SYMBOL: "the order named an instrument the exchange does not list",
    RejectReason.INVALID_PRICE: "the price was not positive or not a multiple of the tick",
    RejectReason.INVALID_QUANTITY: "the quantity was not positive or not a multiple of the lot",
    RejectReason.QUANTITY_BELOW_MIN: "the quantity was below the instrument's minimum",
    RejectReason.QUANTITY_ABOVE_MAX: "the quantity was above the instrument's maximum",
    RejectReason.INVALID_ORDER: "the fields made no valid order (e.g. a stop without a stop price)",
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: "the trader had already used this client order id "
    "(a second run under the same --run-id, or a server that recovered an earlier run's journal)",
    RejectReason.INSTRUMENT_EXISTS: "an instrument of that symbol is already listed",
    RejectReason.INVALID_INSTRUMENT: "the instrument's definition was not valid",
    RejectReason.RISK_MAX_ORDER_QTY: "pre-trade risk: the order was larger than the per-order quantity limit",
    RejectReason.RISK_MAX_NOTIONAL: "pre-trade risk: price x quantity was above the per-order notional limit",
    RejectReason.PRICE_OUT_OF_BAND: "pre-trade risk: the limit price was too far from the last trade (price band)",
    RejectReason.RISK_MAX_OPEN_ORDERS: "pre-trade risk: the trader already had the most resting orders allowed",
    RejectReason.POST_ONLY_WOULD_TAKE: "a post-only order would have traded on arrival, so it was refused",
    RejectReason.UNKNOWN_ORDER: "a cancel/replace named an order that had already filled or been cancelled "
    "(--workload exercise-unknown does it on purpose)",
    RejectReason.ORDER_NOT_REPLACEABLE: "a replace named an order that cannot be replaced (a pending stop)",
    RejectReason.DUPLICATE_REQUEST_ID: "a retry's request id was answered longer ago than the dedup window; nothing applied",
    RejectReason.OVERLOADED: "the server's queue was full; nothing was applied (the harness retries)",
    RejectReason.MALFORMED_MESSAGE: "the server could not decode the request",
    RejectReason.UNAUTHORIZED: "the trader may not act on this order or route",
    RejectReason.UNAVAILABLE: "no matching server could take the order (none reachable, or not the leader)",
    RejectReason.LIMIT_EXCEEDED: "the request was over a limit of docs/limits.md (a batch too large); nothing was applied",
    RejectReason.UNAUTHENTICATED: "the request proved no live key (none, unknown, revoked, stale or replayed); nothing was applied",
    RejectReason.RATE_LIMITED: "the key was over its requests per second or in flight; nothing was applied (docs/security.md)",
    RejectReason.INTERNAL_ERROR: "the server failed on this command (a bug: see its log)",
}

CANCEL_MEANINGS: Final[Mapping[CancelReason, str]] = {
    CancelReason.USER: "the trader asked (a cancel command)",
    CancelReason.IOC_REMAINDER: "the unfilled rest of an immediate-or-cancel order",
    CancelReason.MARKET_REMAINDER: "the unfilled rest of a market order (market orders never rest)",
    CancelReason.FOK_NOT_FILLED: "a fill-or-kill order that could not fill completely",
    CancelReason.SELF_TRADE: "an order would have traded with the same trader's resting order; "
    "the newest was cancelled (self-trade prevention)",
    CancelReason.MASS_CANCEL: "a mass cancel by the trader",
    CancelReason.CANCEL_ON_DISCONNECT: "the trader's session went silent past the grace it chose (cancel on disconnect)",
}


def reject_meaning(name: str) -> str:
    """The meaning of the ``RejectReason`` called ``name`` (a name from a newer server: said so)."""
    member = RejectReason.__members__.get(name)
    return REJECT_MEANINGS[member] if member is not None else "a reason this harness does not know (a newer server?)"


def cancel_meaning(name: str) -> str:
    """The meaning of the ``CancelReason`` called ``name``."""
    member = CancelReason.__members__.get(name)
    return CANCEL_MEANINGS[member] if member is not None else "a reason this harness does not know (a newer server?)"
