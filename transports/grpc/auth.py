"""Authentication on the gRPC wire: TLS, and every private call signed in its metadata (docs/security.md, "gRPC").

A server with an ``Authenticator`` listens with TLS only (``tls_credentials``:
``--tls-cert``/``--tls-key``, else the keyring's ``server/tls`` files that
``dex-keys tls`` writes, created on first start when the server is on
loopback). Clients trust the CA (``grpc.ssl_channel_credentials``).

A private call (trading, an order's status, own fills, cancel on disconnect)
carries five metadata values::

    dex-key        the key id
    dex-timestamp  Unix milliseconds when it was signed
    dex-window     the receive window, milliseconds
    dex-nonce      16 random hex digits: two calls in one millisecond differ
    dex-signature  over transports.core.signing.payload(timestamp, window, "GRPC", <full method>, <nonce>, b"")

A unary call is signed per call; a stream (``Trade``, ``Orders``, ``Fills``)
once, when it opens, and every batch on it is then checked against the
keyring (a revoked key's next batch is refused, ``Authenticator.admit``).

Invariants:

* ``AuthInterceptor`` verifies before the servicer runs (before the request
  is even deserialized); a refusal ends the call with the status of
  ``transports.codec.status`` (UNAUTHENTICATED, RESOURCE_EXHAUSTED,
  PERMISSION_DENIED) and the ``Error`` trailer, as every other refusal.
* The servicer reads the verified ``Principal`` from ``PRINCIPAL``, a context
  variable the interceptor's wrapper sets inside the call's own task.
* Public calls (book, instruments, stats, market data, health, reflection)
  need no signature: market data stays public. They still ride TLS.
* No signature or private key is logged; the metadata is never echoed.
"""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import grpc
import grpc.aio

from engine import ExchangeError
from transports.core.auth import Authenticator, Principal, is_loopback
from transports.core.keys import Credential
from transports.core.signing import sign_request
from transports.core.tls import TlsFiles, issue_server_certificate
from transports.grpc.errors import abort
from transports.grpc.settings import SERVICE_NAME, GrpcServerSettings

KEY: Final = "dex-key"
TIMESTAMP: Final = "dex-timestamp"
WINDOW: Final = "dex-window"
NONCE: Final = "dex-nonce"
SIGNATURE: Final = "dex-signature"
METHOD: Final = "GRPC"  # the signed payload's METHOD line
EXTRA_CA: Final = "grpc_ca"  # Credential.extra: the path of the CA certificate the client trusts

_PREFIX = f"/{SERVICE_NAME}/"
# Calls that act for a trader or read its own data; every other method (public market data, health, reflection) is open.
PRIVATE_METHODS: Final = frozenset(
    _PREFIX + name
    for name in ("Trade", "Orders", "PlaceOrder", "CancelOrder", "ReplaceOrder", "SubmitBatch", "GetOrder", "Fills", "CancelOnDisconnect")
)

PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("dex_grpc_principal", default=None)

Metadata = tuple[tuple[str, str | bytes], ...]


# ------------------------------------------------------------------ client
def signed_metadata(credential: Credential, method: str) -> Metadata:
    """The metadata proving ``credential``'s key for one call of ``method`` (``/exchange.v1.Exchange/Trade``)."""
    nonce = secrets.token_hex(8)
    signed = sign_request(credential, METHOD, method, nonce, b"")
    return (
        (KEY, signed.key_id),
        (TIMESTAMP, str(signed.timestamp_ms)),
        (WINDOW, str(signed.window_ms)),
        (NONCE, nonce),
        (SIGNATURE, signed.signature),
    )


def with_ca(credential: Credential, keyring: str | Path) -> Credential:
    """``credential`` naming the CA of ``keyring``'s ``dex-keys tls`` files in its ``extra`` (a client on this machine)."""
    return replace(credential, extra={**credential.extra, EXTRA_CA: str(TlsFiles.under(keyring).ca)})


def channel_credentials(ca: str | Path | None) -> grpc.ChannelCredentials:
    """TLS that trusts the CA in ``ca`` (None: the system's roots)."""
    return grpc.ssl_channel_credentials(root_certificates=Path(ca).read_bytes() if ca else None)


# ------------------------------------------------------------------ server
def tls_material(settings: GrpcServerSettings, auth: Authenticator) -> tuple[bytes, bytes, Path | None]:
    """The server's certificate chain and key (PEM), and the CA file clients trust (None: not ours to name).

    ``--tls-cert``/``--tls-key`` when given; else the keyring's ``server/tls``
    files, issued on first start on loopback (``dex-keys tls``). A server on any
    other address without them refuses to start: its certificate must name
    the address clients dial, which only the operator knows.
    """
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise SystemExit("--tls-cert and --tls-key go together")
        return Path(settings.tls_cert).read_bytes(), Path(settings.tls_key).read_bytes(), None
    files = TlsFiles.under(auth.keyring.directory)
    if not files.exist():
        if not is_loopback(settings.host):
            raise SystemExit(
                f"no TLS certificate in {files.cert.parent}: run `dex-keys tls --name {settings.host}` (or pass --tls-cert/--tls-key)"
            )
        files = issue_server_certificate(auth.keyring.directory)
    return files.cert.read_bytes(), files.key.read_bytes(), files.ca


def server_credentials(cert: bytes, key: bytes) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key, cert)])


def _value(metadata: Sequence[tuple[str, str | bytes]] | None, name: str) -> str:
    for key, value in metadata or ():
        if key == name and isinstance(value, str):
            return value
    return ""


def verify_call(auth: Authenticator, method: str, metadata: Sequence[tuple[str, str | bytes]] | None) -> Principal:
    """The principal whose key signed this call of ``method``; ``AuthFailure`` (or ``RATE_LIMITED``) otherwise."""
    return auth.verify_signed(
        _value(metadata, KEY),
        _value(metadata, TIMESTAMP),
        _value(metadata, WINDOW),
        _value(metadata, SIGNATURE),
        METHOD,
        method,
        _value(metadata, NONCE),
        b"",
    )


Behaviour = Callable[..., Awaitable[Any]]
Refused = Callable[[ExchangeError], None]


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Verifies every private call's signed metadata before the servicer sees it."""

    def __init__(self, auth: Authenticator, refused: Refused) -> None:
        self.auth = auth
        self._refused = refused  # counts a refusal (RequestHandler.refused): stats and metrics see it

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method not in PRIVATE_METHODS:
            return handler
        try:
            principal = verify_call(self.auth, method, handler_call_details.invocation_metadata)
        except ExchangeError as exc:
            self._refused(exc)
            return _wrap(handler, _refusal(exc))
        return _wrap(handler, _acting_for(principal))


def _refusal(error: ExchangeError) -> Callable[[Behaviour], Behaviour]:
    def wrap(behaviour: Behaviour) -> Behaviour:
        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await abort(context, error)

        return refuse

    return wrap


def _acting_for(principal: Principal) -> Callable[[Behaviour], Behaviour]:
    def wrap(behaviour: Behaviour) -> Behaviour:
        async def acting(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            PRINCIPAL.set(principal)  # this call's own task: no other call sees it
            return await behaviour(request, context)

        return acting

    return wrap


def _wrap(handler: grpc.RpcMethodHandler[Any, Any], wrap: Callable[[Behaviour], Behaviour]) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with its behaviour wrapped; the same kind, deserializer and serializer."""
    de, ser = handler.request_deserializer, handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream), de, ser)  # type: ignore[arg-type]
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), de, ser)  # type: ignore[arg-type]
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), de, ser)  # type: ignore[arg-type]
    return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), de, ser)  # type: ignore[arg-type]


__all__ = [
    "PRINCIPAL",
    "PRIVATE_METHODS",
    "AuthInterceptor",
    "channel_credentials",
    "server_credentials",
    "signed_metadata",
    "tls_material",
    "verify_call",
    "with_ca",
]
