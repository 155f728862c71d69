"""Reject reason -> wire status: the one table every wire maps ``RejectReason`` through.

``engine.RejectReason`` codes are stable; each wire needs its own status
vocabulary for them. The tables live here, next to the codec, so that two
transports of the same wire can never disagree (docs/http.md prints the HTTP
table). Invariants:

* Every ``RejectReason`` has an entry (a test checks it); adding a reason
  means adding a row here.
* 4xx means "this request, as sent, will not succeed"; 503 (``OVERLOADED``,
  ``UNAVAILABLE``) means "nothing was applied: retry later, the same request
  may succeed" and comes with ``Retry-After``.
* ``UNAUTHORIZED`` is 403 for a caller that named itself and may not do what
  it asked, and 401 for a caller that did not name itself at all
  (``http_status(reason, identified=False)``).
* gRPC (``REJECT_GRPC_STATUS``) agrees with HTTP on what may be retried: a
  reason is 503 on HTTP exactly when it is ``UNAVAILABLE`` on gRPC (a test
  checks it). The codes are plain numbers (``GrpcStatus``) so that the codec
  does not need the ``grpc`` package; a gRPC server looks up
  ``grpc.StatusCode`` by ``value[0]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from http import HTTPStatus
from types import MappingProxyType

from engine import RejectReason

R = RejectReason
S = HTTPStatus

REJECT_HTTP_STATUS: Mapping[RejectReason, int] = MappingProxyType(
    {
        # 1xx validation: the request is wrong as sent.
        R.UNKNOWN_SYMBOL: S.NOT_FOUND,
        R.INVALID_PRICE: S.BAD_REQUEST,
        R.INVALID_QUANTITY: S.BAD_REQUEST,
        R.QUANTITY_BELOW_MIN: S.BAD_REQUEST,
        R.QUANTITY_ABOVE_MAX: S.BAD_REQUEST,
        R.INVALID_ORDER: S.BAD_REQUEST,
        R.DUPLICATE_CLIENT_ORDER_ID: S.CONFLICT,
        R.INSTRUMENT_EXISTS: S.CONFLICT,
        R.INVALID_INSTRUMENT: S.BAD_REQUEST,
        # 2xx pre-trade risk: well formed, refused by a business rule.
        R.RISK_MAX_ORDER_QTY: S.UNPROCESSABLE_ENTITY,
        R.RISK_MAX_NOTIONAL: S.UNPROCESSABLE_ENTITY,
        R.PRICE_OUT_OF_BAND: S.UNPROCESSABLE_ENTITY,
        R.RISK_MAX_OPEN_ORDERS: S.UNPROCESSABLE_ENTITY,
        # 3xx execution rules: conflicts with the current state of the book.
        R.POST_ONLY_WOULD_TAKE: S.CONFLICT,
        # 4xx order management.
        R.UNKNOWN_ORDER: S.NOT_FOUND,
        R.ORDER_NOT_REPLACEABLE: S.CONFLICT,
        R.DUPLICATE_REQUEST_ID: S.CONFLICT,
        # 5xx around the engine.
        R.OVERLOADED: S.SERVICE_UNAVAILABLE,
        R.MALFORMED_MESSAGE: S.BAD_REQUEST,
        R.UNAUTHORIZED: S.FORBIDDEN,
        R.UNAVAILABLE: S.SERVICE_UNAVAILABLE,
        R.LIMIT_EXCEEDED: S.REQUEST_ENTITY_TOO_LARGE,
        R.UNAUTHENTICATED: S.UNAUTHORIZED,
        R.RATE_LIMITED: S.TOO_MANY_REQUESTS,
        R.INTERNAL_ERROR: S.INTERNAL_SERVER_ERROR,
    }
)

# Seconds a client should wait before retrying a 503 (the gateway drains its
# queue in milliseconds; one second is the smallest value the header can say).
RETRY_AFTER_SECONDS = 1


def http_status(reason: RejectReason, *, identified: bool = True) -> int:
    """The HTTP status for ``reason``; ``identified=False`` turns UNAUTHORIZED into 401."""
    if reason is RejectReason.UNAUTHORIZED and not identified:
        return int(HTTPStatus.UNAUTHORIZED)
    return int(REJECT_HTTP_STATUS[reason])


def is_retryable(reason: RejectReason) -> bool:
    """True when nothing was applied and the same request may succeed later."""
    return REJECT_HTTP_STATUS[reason] == HTTPStatus.SERVICE_UNAVAILABLE


class GrpcStatus(IntEnum):
    """The canonical gRPC status codes (the numbers of ``grpc.StatusCode``)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


G = GrpcStatus

REJECT_GRPC_STATUS: Mapping[RejectReason, GrpcStatus] = MappingProxyType(
    {
        # 1xx validation: the request is wrong as sent.
        R.UNKNOWN_SYMBOL: G.NOT_FOUND,
        R.INVALID_PRICE: G.INVALID_ARGUMENT,
        R.INVALID_QUANTITY: G.INVALID_ARGUMENT,
        R.QUANTITY_BELOW_MIN: G.INVALID_ARGUMENT,
        R.QUANTITY_ABOVE_MAX: G.INVALID_ARGUMENT,
        R.INVALID_ORDER: G.INVALID_ARGUMENT,
        R.DUPLICATE_CLIENT_ORDER_ID: G.ALREADY_EXISTS,
        R.INSTRUMENT_EXISTS: G.ALREADY_EXISTS,
        R.INVALID_INSTRUMENT: G.INVALID_ARGUMENT,
        # 2xx pre-trade risk and 3xx execution rules: refused in the current state.
        R.RISK_MAX_ORDER_QTY: G.FAILED_PRECONDITION,
        R.RISK_MAX_NOTIONAL: G.FAILED_PRECONDITION,
        R.PRICE_OUT_OF_BAND: G.FAILED_PRECONDITION,
        R.RISK_MAX_OPEN_ORDERS: G.FAILED_PRECONDITION,
        R.POST_ONLY_WOULD_TAKE: G.FAILED_PRECONDITION,
        # 4xx order management.
        R.UNKNOWN_ORDER: G.NOT_FOUND,
        R.ORDER_NOT_REPLACEABLE: G.FAILED_PRECONDITION,
        R.DUPLICATE_REQUEST_ID: G.ALREADY_EXISTS,
        # 5xx around the engine. OVERLOADED is UNAVAILABLE, not RESOURCE_EXHAUSTED:
        # nothing was applied, and UNAVAILABLE is the code gRPC clients retry.
        R.OVERLOADED: G.UNAVAILABLE,
        R.MALFORMED_MESSAGE: G.INVALID_ARGUMENT,
        R.UNAUTHORIZED: G.PERMISSION_DENIED,
        R.UNAVAILABLE: G.UNAVAILABLE,
        R.LIMIT_EXCEEDED: G.RESOURCE_EXHAUSTED,
        R.UNAUTHENTICATED: G.UNAUTHENTICATED,
        R.RATE_LIMITED: G.RESOURCE_EXHAUSTED,
        R.INTERNAL_ERROR: G.INTERNAL,
    }
)


def grpc_status(reason: RejectReason, *, identified: bool = True) -> GrpcStatus:
    """The gRPC status for ``reason``; ``identified=False`` turns UNAUTHORIZED into UNAUTHENTICATED."""
    if reason is RejectReason.UNAUTHORIZED and not identified:
        return GrpcStatus.UNAUTHENTICATED
    return REJECT_GRPC_STATUS[reason]
