"""Authentication, once for every wire: who is asking, proved by a key (docs/security.md).

Each wire proves identity the way its ecosystem does (signed HTTP requests,
gRPC metadata over TLS, ZeroMQ CURVE, NATS NKEY users, RabbitMQ users, a
signed FIX Logon) and turns the proof into a ``Principal`` through one
``Authenticator``. The request handler then acts for the principal only:
its trader on every command, its own orders and fills on every read, the
admin role for ``add_instrument``.

Invariants:

* With ``--auth keys`` (``Authenticator.enabled``), a request without a valid
  proof is refused with ``UNAUTHENTICATED`` and a stable cause
  (``transports.core.signing``), before anything else is done for it.
* ``--auth off`` trusts the name a client gives, so it is for loopback only:
  ``auth_from_options`` refuses to start a server with it on any other
  address, and says at start-up that it is off.
* A server on a non-loopback address needs a keyring with at least one live
  key; on loopback an empty keyring is allowed, so development keys
  (``transports.core.keys.dev_credential``) can be created beside a running
  server and take effect within one reload.
* Limits per key (``transports.core.ratelimit``) apply to every admitted
  request: ``admit`` before the work, ``release`` after the answer.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from transports.core.keys import KEYS_ENV, KeyRecord, Keyring, keys_dir
from transports.core.ratelimit import DEFAULT_MAX_IN_FLIGHT, DEFAULT_RATE_PER_S, KeyLimiter
from transports.core.signing import AuthFailure, ReplayGuard, check_values, now_ms, payload, verify_signature

AUTH_MODES: Final = ("keys", "off")
DEFAULT_AUTH: Final = "off"  # the wires move to keys one by one (docs/security.md, "Status"); off is loopback only


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: a trader, the key that proved it, and whether that key may administer."""

    trader: str
    key_id: str = ""
    admin: bool = False

    @classmethod
    def of(cls, record: KeyRecord) -> Principal:
        return cls(record.trader, record.key_id, record.admin)


class Authenticator:
    """One server's keyring, replay memory and per-key limits."""

    def __init__(self, keyring: Keyring, *, rate_per_s: int = DEFAULT_RATE_PER_S, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self.keyring = keyring
        self.replays = ReplayGuard()
        self.limiter = KeyLimiter(rate_per_s, max_in_flight)

    # ------------------------------------------------------------ proofs
    def verify_signed(
        self, key_id: str, timestamp: str | int, window: str | int, signature: str, method: str, path: str, query: str, body: bytes
    ) -> Principal:
        """The principal of a signed request, or ``AuthFailure`` with its cause."""
        stamp, span = check_values(key_id, timestamp, window, signature)
        record = self.keyring.lookup(key_id)
        if record is None:
            raise AuthFailure("unknown_key", "no live key with this id (unknown or revoked)")
        if abs(now_ms() - stamp) > span:
            raise AuthFailure("stale_request", f"signed more than {span} ms from the server's clock")
        if not verify_signature(record, payload(stamp, span, method, path, query, body), signature):
            raise AuthFailure("bad_signature", "the signature does not match the request and the key")
        if not self.replays.admit(signature, stamp, span):
            raise AuthFailure("replayed_request", "this signed request was already received")
        return Principal.of(record)

    def by_key_id(self, key_id: str) -> Principal:
        """The principal of a key a broker or a secure channel has already proved (NATS user, RabbitMQ user, mTLS)."""
        record = self.keyring.lookup(key_id)
        if record is None:
            raise AuthFailure("unknown_key", "no live key with this id (unknown or revoked)")
        return Principal.of(record)

    def by_curve_key(self, curve_public: str) -> Principal:
        """The principal of a ZeroMQ CURVE client public key (Z85)."""
        record = self.keyring.by_curve_key(curve_public)
        if record is None:
            raise AuthFailure("unknown_key", "no live key with this CURVE public key")
        return Principal.of(record)

    # ------------------------------------------------------------ limits
    def admit(self, principal: Principal) -> None:
        """Count one request of ``principal`` against its key's limits (``RateLimited`` over them).

        A key revoked since it was proved is refused here (``unknown_key``): a wire that proves a key once per
        connection or stream (ZeroMQ CURVE, a gRPC stream, a FIX Logon) refuses its next request within one reload.
        """
        record = self.keyring.lookup(principal.key_id)
        if record is None:
            raise AuthFailure("unknown_key", "this key was revoked or removed")
        self.limiter.acquire(principal.key_id, record.rate_per_s, record.max_in_flight)

    def release(self, principal: Principal) -> None:
        self.limiter.release(principal.key_id)

    @contextmanager
    def admitted(self, principal: Principal) -> Iterator[None]:
        """``admit`` for the duration of one request."""
        self.admit(principal)
        try:
            yield
        finally:
            self.release(principal)


# ---------------------------------------------------------------- options
def add_auth_options(parser: argparse.ArgumentParser) -> None:
    """``--auth``, ``--keys`` and the default per-key limits, shared by every server."""
    group = parser.add_argument_group("authentication (docs/security.md)")
    group.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default=DEFAULT_AUTH,
        help=f"keys: each request proves its trader with an API key; off: trust a client's name (loopback only; default {DEFAULT_AUTH})",
    )
    group.add_argument("--keys", default=None, metavar="DIR", help=f"keyring directory (default ${KEYS_ENV}, else STATE_DIR/keys)")
    rate, in_flight = f"{DEFAULT_RATE_PER_S:,}", f"{DEFAULT_MAX_IN_FLIGHT:,}"
    group.add_argument("--key-rate", type=int, default=DEFAULT_RATE_PER_S, metavar="N", help=f"requests/s per key (default {rate})")
    group.add_argument(
        "--key-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT, metavar="N", help=f"requests per key at once (default {in_flight})"
    )


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def auth_from_options(args: argparse.Namespace, host: str) -> Authenticator | None:
    """The server's authenticator (None with ``--auth off``), or ``SystemExit`` when the choice is unsafe for ``host``."""
    mode = getattr(args, "auth", DEFAULT_AUTH)
    if mode == "off":
        if not is_loopback(host):
            raise SystemExit(f"--auth off trusts any client's name: refused on {host} (loopback only; use --auth keys)")
        print("authentication is off: any local client may act as any trader (loopback only; --auth keys turns it on)", file=sys.stderr)
        return None
    directory = keys_dir(getattr(args, "keys", None))
    keyring = Keyring(directory)
    if not is_loopback(host) and not any(not r.revoked for r in keyring.records()):
        raise SystemExit(f"no live key in {Path(directory) / 'keyring.json'}: a server on {host} needs keys (dex-keys create TRADER)")
    return Authenticator(keyring, rate_per_s=args.key_rate, max_in_flight=args.key_in_flight)
