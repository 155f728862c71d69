"""Errors on the gRPC wire, both ways: ``ExchangeError`` <-> status code + ``Error`` trailer.

A failed call carries the status that ``transports.codec.status`` maps the
reason to (the one table), the error's message as details, and the
serialized ``Error`` in the trailing metadata key ``exchange-error-bin`` (the
exact reason, which the status alone does not carry). A client turns that
back into the same exception class (``proto_codec.decode_error``); a failure
without the trailer (no server, a broken connection, a deadline) is
``NotConnected``.

::

    ExchangeError (engine)
    └── Unidentified      no x-trader metadata: UNAUTHENTICATED (reason UNAUTHORIZED)
"""

from __future__ import annotations

from typing import Any, Never

import grpc
import grpc.aio

from engine import ExchangeError, NotConnected, RejectReason
from transports.codec.proto_codec import decode_error, error_reply
from transports.codec.status import grpc_status
from transports.grpc.settings import ERROR_TRAILER

_STATUS_CODES: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}

# Without an Error trailer, these codes mean the server was not reached or the
# call did not complete: the caller cannot know more than "not connected".
_UNREACHED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})


class Unidentified(ExchangeError):
    """The call names no trader (no ``x-trader`` metadata)."""

    reason = RejectReason.UNAUTHORIZED


def status_code(error: ExchangeError) -> grpc.StatusCode:
    """The gRPC status for ``error`` (UNAUTHENTICATED when the caller did not name itself)."""
    return _STATUS_CODES[grpc_status(error.reason, identified=not isinstance(error, Unidentified)).value]


def error_trailer(error: ExchangeError) -> tuple[tuple[str, bytes]]:
    return ((ERROR_TRAILER, error_reply(error).SerializeToString()),)


Context = grpc.aio.ServicerContext[Any, Any]


async def abort(context: Context, error: ExchangeError) -> Never:
    """End the call with ``error`` (status, details and the ``Error`` trailer)."""
    await context.abort(status_code(error), error.message, error_trailer(error))


def error_from_rpc(exc: grpc.aio.AioRpcError, url: str) -> ExchangeError:
    """The exception a client raises for a failed call."""
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_TRAILER and isinstance(value, bytes):
            try:
                return decode_error(value)
            except ExchangeError:
                break  # an unreadable trailer: fall back to the status code
    code = exc.code()
    details = exc.details() or code.name
    if code in _UNREACHED:
        return NotConnected(f"not connected to the gRPC server at {url} ({code.name}: {details})")
    return ExchangeError(f"the gRPC server at {url} answered {code.name}: {details}")
