"""CURVE on the ZeroMQ wire: the server's key pair, its ZAP handler, and how a client learns the server's key.

With ``--auth keys`` (docs/security.md, "ZeroMQ") the ROUTER is a CURVE
server. Its key pair lives in the keyring's ``server/`` directory
(``zmq-curve.key``: the pair, mode 0600; ``zmq-curve.pub``: the public key
alone, to hand to clients), created on the first start if missing. A client
needs the server's public key to connect; it finds it, in this order, in the
``ZmqClient(server_key=...)`` argument, the URL (``zmq://host:port?key=<64
hex digits>``, which the server prints at start-up), or the credential's
``extra["zmq_server_key"]`` (``with_server_key`` puts it there).

The ZAP handler (RFC 27) answers libzmq's authentication requests on
``inproc://zeromq.zap.01`` of the server's context, in the event loop: a
CURVE client key that belongs to a live key of the keyring is accepted with
the key id as its User-Id; anything else is refused (400). The server reads
the User-Id of every request it receives (``zmq.Frame.get("User-Id")``) and
looks the key up again, so a key revoked while its client is connected is
refused on its next request within one keyring reload.

Invariants:

* The ZAP socket is bound before the ROUTER binds and closed after it:
  libzmq lets a CURVE client in unchecked when no ZAP handler is bound, so
  the server also refuses any request without a User-Id.
* No secret key is logged; only key ids and the server's public key appear.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import zmq
import zmq.utils.z85

from engine import ExchangeError
from transports.core.auth import Authenticator
from transports.core.keys import SERVER_DIR, Credential, locked, write_private
from transports.core.loop_socket import LoopSocket

ZAP_ENDPOINT: Final = "inproc://zeromq.zap.01"  # fixed by RFC 27: one ZAP handler per context
ZAP_VERSION: Final = b"1.0"
ORDERS_DOMAIN: Final = b"dex-orders"  # the ROUTER's ZAP domain
KEY_FILE: Final = "zmq-curve.key"
PUBLIC_FILE: Final = "zmq-curve.pub"
EXTRA_SERVER_KEY: Final = "zmq_server_key"  # Credential.extra: the server's CURVE public key (Z85)

log = logging.getLogger("dex-zmq")


@dataclass(frozen=True, slots=True)
class CurveKeys:
    public: str  # Z85, 40 characters
    secret: str = ""


def server_keys(keyring: str | Path) -> CurveKeys:
    """The server's CURVE key pair under ``keyring``'s ``server/`` directory, created if missing."""
    base = Path(keyring) / SERVER_DIR
    path = base / KEY_FILE
    if not path.exists():
        with locked(Path(keyring)):
            if not path.exists():  # another server may have created it while this one waited
                public, secret = (k.decode() for k in zmq.curve_keypair())
                write_private(path, json.dumps({"public": public, "secret": secret}) + "\n")
                (base / PUBLIC_FILE).write_text(public + "\n")
    data = json.loads(path.read_text())
    return CurveKeys(str(data["public"]), str(data["secret"]))


def server_public_key(keyring: str | Path) -> str:
    """The server's CURVE public key (Z85), as a client is handed it (``zmq-curve.pub``)."""
    return (Path(keyring) / SERVER_DIR / PUBLIC_FILE).read_text().strip()


def with_server_key(credential: Credential, keyring: str | Path) -> Credential:
    """``credential`` with the server's CURVE public key in its ``extra`` (for a client on this machine)."""
    return replace(credential, extra={**credential.extra, EXTRA_SERVER_KEY: server_public_key(keyring)})


def key_to_hex(z85_key: str) -> str:
    """A Z85 key as the 64 hex digits a URL carries (Z85 uses characters a URL reserves)."""
    return zmq.utils.z85.decode(z85_key.encode()).hex()


def make_curve_server(sock: zmq.Socket[Any], keys: CurveKeys) -> None:
    """Make ``sock`` (before it binds) a CURVE server whose clients ZAP checks in ``ORDERS_DOMAIN``."""
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret.encode())
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public.encode())
    sock.setsockopt(zmq.ZAP_DOMAIN, ORDERS_DOMAIN)


def make_curve_client(sock: zmq.Socket[Any], public: str, secret: str, server_key: str) -> None:
    """Make ``sock`` (before it connects) a CURVE client with its key pair, trusting ``server_key`` (Z85)."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode())
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public.encode())
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret.encode())


class ZapHandler:
    """Answers libzmq's ZAP requests for one context: a CURVE key of a live key is let in, with its key id as User-Id."""

    def __init__(self, context: zmq.Context[Any], auth: Authenticator, refused: Callable[[ExchangeError], None]) -> None:
        self.auth = auth
        self._refused = refused
        self.accepted = 0
        self.denied = 0
        sock = context.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(ZAP_ENDPOINT)  # zmq.ZMQError (EADDRINUSE) if this context already has a handler
        self._reader = LoopSocket(sock, self._on_readable)

    def _on_readable(self) -> None:
        sock = self._reader.sock
        while True:
            try:
                request = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            sock.send_multipart(self.answer(request))
            self._reader.rearm()

    def answer(self, request: list[bytes]) -> list[bytes]:
        """The ZAP reply to ``request``: [version, request id, status, text, user id, metadata]."""
        if len(request) < 6 or request[0] != ZAP_VERSION:
            self.denied += 1
            return [ZAP_VERSION, request[1] if len(request) > 1 else b"", b"400", b"malformed ZAP request", b"", b""]
        request_id, domain, mechanism, credentials = request[1], request[2], request[5], request[6:]
        if domain != ORDERS_DOMAIN or mechanism != b"CURVE" or len(credentials) != 1 or len(credentials[0]) != 32:
            self.denied += 1
            return [ZAP_VERSION, request_id, b"400", b"CURVE with a client key is required", b"", b""]
        try:
            principal = self.auth.by_curve_key(zmq.utils.z85.encode(credentials[0]).decode())
        except ExchangeError as exc:
            self.denied += 1
            self._refused(exc)
            return [ZAP_VERSION, request_id, b"400", b"unknown_key", b"", b""]
        self.accepted += 1
        return [ZAP_VERSION, request_id, b"200", b"OK", principal.key_id.encode(), b""]

    def close(self) -> None:
        self._reader.close(0)
