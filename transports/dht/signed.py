"""Signed client requests to a dex-node (docs/security.md, "DHT"): what a client adds, what a node checks.

A client with a ``Credential`` signs every request that acts for its trader
(``PRIVATE_PATHS`` and Grenache's ``POST /``) with ``transports.core.signing``
over ``METHOD``, the path, the query string exactly as sent and the body, and
sends four headers: ``DEX-KEY``, ``DEX-TIMESTAMP`` (Unix ms), ``DEX-WINDOW``
(ms) and ``DEX-SIGNATURE`` (the names of the HTTP wire's signed requests).

Invariants:

* The node that receives a request verifies it (``verified``) before anything
  of it is decoded or proposed to the replicated log; the principal it proves
  binds the trader of every command, so an entry in the log already names
  the key's trader, and the owner (and every member) applies it as that
  trader, never as the node that forwarded it.
* The replay memory is the receiving node's (``Authenticator.replays``): a
  signed request repeated to the same node within its window is refused
  (``replayed_request``). A client moves to another node only when nothing
  was sent (``Unreachable``). A copy captured on the network and sent to a
  *different* node within the window is not caught by that node's memory;
  what it can do is bounded by the engine: a repeated client order id is
  refused as a duplicate by every member alike (docs/security.md, "DHT").
* No signature is logged.
"""

from __future__ import annotations

from typing import Final

from transports.core.auth import Authenticator, Principal
from transports.core.keys import Credential
from transports.core.signing import sign_request
from transports.dht.httpd import Request

KEY_HEADER: Final = "DEX-KEY"
TIMESTAMP_HEADER: Final = "DEX-TIMESTAMP"
WINDOW_HEADER: Final = "DEX-WINDOW"
SIGNATURE_HEADER: Final = "DEX-SIGNATURE"
# The requests that act for a trader; everything else (book, instruments, market data, stats) is public.
PRIVATE_PATHS: Final = frozenset({"/v1/batch", "/v1/lean", "/v1/order", "/v1/cancel-on-disconnect", "/"})


def signed_headers(credential: Credential, method: str, path: str, query: str, body: bytes) -> dict[str, str]:
    """The four headers proving ``credential``'s key for this request, signed now."""
    signed = sign_request(credential, method, path, query, body)
    return {
        KEY_HEADER: signed.key_id,
        TIMESTAMP_HEADER: str(signed.timestamp_ms),
        WINDOW_HEADER: str(signed.window_ms),
        SIGNATURE_HEADER: signed.signature,
    }


def verified(auth: Authenticator, request: Request) -> Principal:
    """The principal of a signed ``request``, or ``AuthFailure`` (``UNAUTHENTICATED`` with its cause)."""
    headers = request.headers  # lower-case names
    return auth.verify_signed(
        headers.get(KEY_HEADER.lower(), ""),
        headers.get(TIMESTAMP_HEADER.lower(), ""),
        headers.get(WINDOW_HEADER.lower(), ""),
        headers.get(SIGNATURE_HEADER.lower(), ""),
        request.method,
        request.path,
        request.query_string,
        request.body,
    )
