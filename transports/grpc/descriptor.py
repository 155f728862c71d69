"""The gRPC transport's descriptor (``transports.core.descriptor``): grpc.aio, ``dex-grpc``. Imports lazily."""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path

from engine import RejectReason
from transports.core.auth import Authenticator
from transports.core.client import TraderClient
from transports.core.descriptor import Authentication, BenchDefaults, LocalProcess, Mount, TransportDescriptor
from transports.core.gateway import Gateway
from transports.core.keys import Credential


def _client(trader: str, url: str | None) -> TraderClient:
    from transports.grpc.client import GrpcClient

    return GrpcClient(trader, url)


def _serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.grpc.server import serve_grpc

    return serve_grpc(gateway)


async def _malformed(url: str) -> RejectReason:
    from transports.grpc.probe import send_malformed

    return await send_malformed(url)


def _local(workdir: Path, args: tuple[str, ...]) -> AbstractContextManager[LocalProcess]:
    from transports.grpc.local import LocalGrpcServer

    return LocalGrpcServer(workdir, args)


def _serve_authenticated(gateway: Gateway, auth: Authenticator) -> AbstractAsyncContextManager[str]:
    from transports.grpc.server import serve_grpc
    from transports.grpc.settings import GrpcServerSettings

    # TLS from the keyring's server/tls (issued on first start on loopback); the URL names its CA.
    return serve_grpc(gateway, GrpcServerSettings(port=0, log_level="warning", graceful_shutdown_s=2.0, auth=auth))


def _authenticated_client(credential: Credential, url: str) -> TraderClient:
    from transports.grpc.client import GrpcClient

    return GrpcClient(credential.trader, url, credential=credential)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grpc-port", type=int, default=50051, help="gRPC port (default 50051)")
    group = parser.add_argument_group("gRPC TLS (with --auth keys; docs/security.md)")
    group.add_argument("--grpc-tls-cert", default=None, metavar="PEM", help="server certificate (default: the keyring's server/tls)")
    group.add_argument("--grpc-tls-key", default=None, metavar="PEM", help="its private key")


def _mount(gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    from transports.grpc.server import serve_grpc
    from transports.grpc.settings import GrpcServerSettings

    settings = GrpcServerSettings(
        host=args.host,
        port=args.grpc_port,
        allow_admin=args.allow_admin,
        log_level=args.log_level,
        auth=getattr(args, "authenticator", None),
        tls_cert=getattr(args, "grpc_tls_cert", None),
        tls_key=getattr(args, "grpc_tls_key", None),
        shared_port=getattr(args, "fronts", 1) > 1,
    )
    return serve_grpc(gateway, settings)


DESCRIPTOR = TransportDescriptor(
    name="grpc",
    title="gRPC",
    summary="grpc.aio server: a pipelined bidirectional `Trade` stream, unary calls, market-data stream, health and reflection.",
    client=_client,
    serve=_serve,
    send_malformed=_malformed,
    extra="grpc",
    docs="docs/grpc.md",
    console_script="dex-grpc",
    server_module="transports.grpc.server",
    local_server=_local,
    mount=Mount(_options, _mount, fronts=True),
    bench=BenchDefaults(
        target_batch_per_s=150_000,
        target_single_p99_us=800,
        notes=("Each harness trader has its own channel (one TCP connection) and submits over one long-lived Trade stream.",),
        market_data="gRPC stream",
        fanout_target_p99_us=50_000,
    ),
    acknowledged_after="the server's journal fsync (group commit)",
    zero_configuration="no: clients name the server",
    operational_parts="the server",
    echo_wire="grpc",
    auth=Authentication(
        mechanism="TLS (dex-keys tls) and signed call metadata (Ed25519 or HMAC-SHA256), checked in a server interceptor",
        serve=_serve_authenticated,
        client=_authenticated_client,
        signed_requests=True,
    ),
)
