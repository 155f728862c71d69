"""The gRPC transport's descriptor (``transports.core.descriptor``): grpc.aio, ``dex-grpc``. Imports lazily."""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path

from engine import RejectReason
from transports.core.client import TraderClient
from transports.core.descriptor import BenchDefaults, LocalProcess, Mount, TransportDescriptor
from transports.core.gateway import Gateway


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


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grpc-port", type=int, default=50051, help="gRPC port (default 50051)")


def _mount(gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    from transports.grpc.server import serve_grpc
    from transports.grpc.settings import GrpcServerSettings

    settings = GrpcServerSettings(host=args.host, port=args.grpc_port, allow_admin=args.allow_admin, log_level=args.log_level)
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
    mount=Mount(_options, _mount),
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
)
