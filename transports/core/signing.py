"""Signed requests: what a client signs, and how a server checks it (docs/security.md).

A signed request carries four values beside its body: the key id, the time
it was signed (Unix milliseconds), its receive window (milliseconds) and the
signature. What is signed is ``payload``::

    <timestamp>\\n<window>\\n<METHOD>\\n<path>\\n<query>\\n<body>

where METHOD, path and query name the operation on the wire (an HTTP
method, path and query string; a gRPC method; a FIX Logon's fields) and the
body is the request's bytes. Ed25519 keys sign it (the signature is base64);
HMAC-SHA256 keys MAC it (hex), as Binance's and Kraken's REST APIs do.

Invariants, checked by ``RequestVerifier.verify`` in this order (the cheap
refusals first, the signature before anything remembers the request):

* a missing or malformed value: ``UNAUTHENTICATED`` ``missing_credentials``;
* a window over ``MAX_WINDOW_MS`` or under 1: ``malformed_credentials``;
* an unknown or revoked key: ``unknown_key``;
* a timestamp further than the window from the server's clock: ``stale_request``;
* a signature that does not verify: ``bad_signature``;
* a signature already seen within its window: ``replayed_request``.

The replay memory holds each accepted signature until its window has passed,
so a request cannot be replayed while its timestamp is still acceptable, and
the memory is bounded by the keys' rate limits times ``MAX_WINDOW_MS``. No
signature, secret or private key is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine import ExchangeError, RejectReason
from transports.core.keys import Credential, KeyRecord, unb64

DEFAULT_WINDOW_MS: Final = 5_000
MAX_WINDOW_MS: Final = 60_000
MAX_REMEMBERED: Final = 1_000_000  # accepted signatures remembered at once: past it, new requests wait (RATE_LIMITED)


class AuthFailure(ExchangeError):
    """A request without valid credentials. ``cause`` is stable (docs/security.md lists them)."""

    reason = RejectReason.UNAUTHENTICATED

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}", RejectReason.UNAUTHENTICATED)
        self.cause = cause


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def payload(timestamp_ms: int, window_ms: int, method: str, path: str, query: str, body: bytes) -> bytes:
    """The bytes a request's signature covers."""
    return f"{timestamp_ms}\n{window_ms}\n{method.upper()}\n{path}\n{query}\n".encode() + body


def sign(credential: Credential, message: bytes) -> str:
    """``credential``'s signature of ``message``: base64 Ed25519, or hex HMAC-SHA256."""
    if credential.scheme == "hmac":
        return hmac.new(credential.seed, message, hashlib.sha256).hexdigest()
    return base64.b64encode(credential.signing_key().sign(message)).decode()


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The four values a signed request carries, as a client sends them."""

    key_id: str
    timestamp_ms: int
    window_ms: int
    signature: str


class RequestStamper:
    """Timestamps for one process's signed requests: never the same signature twice.

    Both schemes are deterministic, so the same request signed twice within one millisecond (a retry, two
    identical cancels) would carry the same signature and the second would be refused as ``replayed_request``.
    Such a request is stamped one millisecond later instead, until its payload is new. Only identical requests
    move, so a busy key's stamps stay on the clock (a strictly increasing stamp would run ahead of it).
    """

    def __init__(self, clock_ms: Callable[[], int] = now_ms) -> None:
        self._clock = clock_ms
        self._signed: dict[str, tuple[int, set[bytes]]] = {}  # key id -> (newest stamp, payloads signed at it)

    def payload(self, key_id: str, window_ms: int, method: str, path: str, query: str, body: bytes) -> tuple[int, bytes]:
        """The stamp and the payload to sign: the clock's stamp, later only if this key just signed the same."""
        stamp = self._clock()
        newest, seen = self._signed.get(key_id, (0, set()))
        if stamp < newest:
            stamp = newest  # the clock stepped back, or an earlier request moved ahead: never reuse an older stamp
        elif stamp > newest:
            seen = set()
        message = payload(stamp, window_ms, method, path, query, body)
        while message in seen:
            stamp, seen = stamp + 1, set()
            message = payload(stamp, window_ms, method, path, query, body)
        seen.add(message)
        self._signed[key_id] = (stamp, seen)
        return stamp, message


_STAMPER = RequestStamper()


def sign_request(
    credential: Credential, method: str, path: str, query: str, body: bytes, window_ms: int = DEFAULT_WINDOW_MS
) -> SignedHeaders:
    """Sign one request now (``RequestStamper``: an identical request signed again gets a later stamp)."""
    stamp, message = _STAMPER.payload(credential.key_id, window_ms, method, path, query, body)
    return SignedHeaders(credential.key_id, stamp, window_ms, sign(credential, message))


def verify_signature(record: KeyRecord, message: bytes, signature: str) -> bool:
    """True when ``signature`` is ``record``'s over ``message``."""
    try:
        if record.scheme == "hmac":
            expected = hmac.new(unb64(record.secret), message, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, signature)
        Ed25519PublicKey.from_public_bytes(unb64(record.public_key)).verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


class ReplayGuard:
    """The signatures accepted within their windows: a second use of one is a replay."""

    def __init__(self, clock_ms: Callable[[], int] = now_ms) -> None:
        self._seen: set[str] = set()
        self._expiry: deque[tuple[int, str]] = deque()  # (forget after, signature), in acceptance order
        self._clock = clock_ms

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, signature: str, timestamp_ms: int, window_ms: int) -> bool:
        """Remember ``signature``; False if it was already seen (a replay)."""
        now = self._clock()
        expiry = self._expiry
        while expiry and expiry[0][0] < now:
            self._seen.discard(expiry.popleft()[1])
        if signature in self._seen:
            return False
        if len(self._seen) >= MAX_REMEMBERED:
            raise ExchangeError("too many signed requests within their windows: retry later", RejectReason.RATE_LIMITED)
        self._seen.add(signature)
        # Kept until the request's timestamp can no longer pass the window check, measured from either side.
        expiry.append((max(now, timestamp_ms) + window_ms, signature))
        return True


def check_values(key_id: str, timestamp: str | int, window: str | int, signature: str) -> tuple[int, int]:
    """The timestamp and window as integers, or ``AuthFailure`` if any value is missing or malformed."""
    if not key_id or not signature or timestamp in ("", None):
        raise AuthFailure("missing_credentials", "a signed request names its key, timestamp and signature")
    try:
        stamp = int(timestamp)
        span = int(window) if window not in ("", None) else DEFAULT_WINDOW_MS
    except ValueError:
        raise AuthFailure("malformed_credentials", "the timestamp and window are integers (milliseconds)") from None
    if not 1 <= span <= MAX_WINDOW_MS:
        raise AuthFailure("malformed_credentials", f"the receive window is 1 to {MAX_WINDOW_MS} ms")
    if len(signature) > 256 or len(key_id) > 64:
        raise AuthFailure("malformed_credentials", "a key id is at most 64 characters and a signature at most 256")
    return stamp, span
