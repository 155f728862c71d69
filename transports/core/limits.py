"""What one request may ask for: the limits every wire shares, in one table (docs/wire-schema.md).

The request handler (``transports.core.requests``) checks them before the
work they bound; a wire's own settings may only lower them (a server's
``--max-batch``, a transport's message-size limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_TRADER_LENGTH: Final = 64  # characters of a trader name (and of a symbol or client order id)
DEFAULT_DEPTH: Final = 10  # levels per side of a book query that names none
MAX_DEPTH: Final = 1000  # levels per side a book query may ask for


@dataclass(frozen=True, slots=True)
class Limits:
    """The per-request limits of one server."""

    max_batch: int = 10_000  # commands per batch (never more than the gateway's queue)
    max_request_bytes: int = 4 * 1024 * 1024  # bytes of one request, checked before decoding
    max_snapshot_symbols: int = 256  # distinct symbols of one snapshot request
