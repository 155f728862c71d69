"""The project's one exception hierarchy.

::

    ExchangeError                 every error we raise; carries a RejectReason
    ├── MalformedMessage          the codec could not decode wire input
    │   └── InvalidDecimal        a decimal string that is not exact on the tick/lot
    ├── Overloaded                the gateway queue is full; retry later
    ├── NotConnected              a transport client cannot reach its server/broker
    └── SnapshotError             a snapshot or journal that cannot be restored

Callers match on the class or on ``reason``, never on message text. Business
rejects (risk, unknown order, ...) are not exceptions: the engine reports them
as ``OrderRejected`` events.
"""

from __future__ import annotations

from engine.reasons import RejectReason


class ExchangeError(Exception):
    """Root of every error this project raises."""

    reason: RejectReason = RejectReason.INTERNAL_ERROR

    def __init__(self, message: str, reason: RejectReason | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason.name}: {self.message}"


class MalformedMessage(ExchangeError):
    reason = RejectReason.MALFORMED_MESSAGE


class InvalidDecimal(MalformedMessage):
    """A price or quantity that is not an exact multiple of the tick or lot."""

    reason = RejectReason.INVALID_PRICE


class Overloaded(ExchangeError):
    reason = RejectReason.OVERLOADED


class NotConnected(ExchangeError):
    reason = RejectReason.UNAVAILABLE


class SnapshotError(ExchangeError):
    reason = RejectReason.INTERNAL_ERROR
