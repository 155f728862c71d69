"""``dex-grpc``: the matching engine behind gRPC (``grpc.aio``, the one schema protos/exchange/v1/exchange.proto).

One process, one engine, one gateway. Start-up recovers the journal (if
any) before the port listens, lists the default instruments that are not yet
listed, and prints one line naming the URL. Besides ``exchange.v1.Exchange``
the server answers the standard health check (``grpc.health.v1.Health``:
SERVING for "" and for the service) and server reflection, so ``grpcurl``
works without the .proto file.

SIGTERM or SIGINT: health turns NOT_SERVING, no new call is accepted, open
``Trade`` streams stop reading and answer what they read, open calls get up
to ``graceful_shutdown_s`` to finish, then ``Gateway.stop()`` applies what is
queued, fsyncs and writes a checkpoint.

With ``--auth keys`` (docs/security.md, "gRPC") the server listens with TLS
only and ``auth.AuthInterceptor`` verifies every private call's signed
metadata before the servicer runs; the URL it prints is ``grpcs://`` and names
the CA clients trust.

For tests and for a process that serves several transports over one
gateway, ``serve_grpc(gateway, ...)`` runs the same server inside the
caller's event loop (the caller starts and stops the gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from transports.core import legacy_flags
from transports.core.auth import add_auth_options, auth_from_options
from transports.core.gateway import Gateway
from transports.core.server_cli import Listener, add_gateway_options, describe, gateway_options, run_process
from transports.grpc.auth import AuthInterceptor, server_credentials, tls_material
from transports.grpc.service import ExchangeService
from transports.grpc.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    SERVICE_NAME,
    GrpcServerSettings,
    grpc_url,
    server_options,
)

log = logging.getLogger("dex-grpc")


class ExchangeServer:
    """A ``grpc.aio`` server of one gateway: the exchange service, health checking and reflection."""

    def __init__(self, gateway: Gateway, settings: GrpcServerSettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.service = ExchangeService(gateway, settings)
        self.health = health.aio.HealthServicer()
        # Calls open at once, all connections together: beyond, gRPC answers RESOURCE_EXHAUSTED (docs/limits.md).
        limits = settings.connections
        auth = settings.auth
        interceptors = [AuthInterceptor(auth, self.service.requests.refused)] if auth is not None else []
        self.server = grpc.aio.server(
            options=server_options(limits, self.settings.shared_port),
            maximum_concurrent_rpcs=limits.max_connections,
            interceptors=interceptors,
        )
        self.server.add_registered_method_handlers(SERVICE_NAME, self.service.handlers())
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        self.port = 0

    async def start(self) -> str:
        """Listen and serve; the URL clients use. ``OSError`` if the address cannot be bound."""
        address = (
            f"[{self.settings.host}]:{self.settings.port}" if ":" in self.settings.host else f"{self.settings.host}:{self.settings.port}"
        )
        auth, ca = self.settings.auth, None
        try:
            if auth is None:
                self.port = self.server.add_insecure_port(address)
            else:  # keys: TLS only, never a plaintext port beside it
                cert, key, ca = tls_material(self.settings, auth)
                self.port = self.server.add_secure_port(address, server_credentials(cert, key))
        except RuntimeError as exc:  # grpc reports a failed bind as RuntimeError
            raise OSError(f"cannot listen on {address}: {exc}") from None
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        return grpc_url(self.settings.host, self.port, tls=auth is not None, ca=str(ca) if ca else None)

    async def stop(self) -> None:
        """Stop accepting calls, let open ones finish (up to the grace period), and stop."""
        await self.health.enter_graceful_shutdown()
        self.service.shutdown()
        await self.server.stop(self.settings.graceful_shutdown_s)


@contextlib.asynccontextmanager
async def serve_grpc(gateway: Gateway, settings: GrpcServerSettings | None = None) -> AsyncIterator[str]:
    """Serve ``gateway`` over gRPC in the running event loop; yields the ``grpc://`` URL.

    The caller starts and stops the gateway. ``settings.port = 0`` (the
    default here) picks a free port. Leaving the block stops the server.
    """
    settings = settings if settings is not None else GrpcServerSettings(port=0, log_level="warning", graceful_shutdown_s=2.0)
    server = ExchangeServer(gateway, settings)
    url = await server.start()
    try:
        yield url
    finally:
        await server.stop()


async def run_server(settings: GrpcServerSettings) -> int:
    """The ``dex-grpc`` process: recover, listen, serve until SIGTERM/SIGINT, stop cleanly."""

    async def listen(gateway: Gateway) -> Listener:
        server = ExchangeServer(gateway, settings)
        url = await server.start()
        return f"{url} ({describe(gateway, settings.journal, settings.fsync)})", server.stop

    return await run_process(
        "dex-grpc", buffer=settings.buffer, journal=settings.journal, fsync=settings.fsync, symbols=settings.symbols, listen=listen
    )


def parse_args(argv: Sequence[str] | None = None) -> GrpcServerSettings:
    parser = argparse.ArgumentParser(prog="dex-grpc", description="The matching engine behind gRPC (docs/grpc.md).")
    add_gateway_options(parser, default_host=DEFAULT_HOST, what="over gRPC")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0 = any free port)")
    add_auth_options(parser)
    add_tls_options(parser)
    args = legacy_flags.parse_args(parser, argv)
    common = gateway_options(parser, args)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    auth = auth_from_options(args, args.host)
    return replace(GrpcServerSettings(), port=args.port, auth=auth, tls_cert=args.tls_cert, tls_key=args.tls_key, **common)


def add_tls_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--tls-cert``/``--tls-key`` (``--grpc-tls-cert`` in turbo-dex): the server's PEM files, used with --auth keys."""
    group = parser.add_argument_group("TLS (with --auth keys; docs/security.md)")
    group.add_argument(f"--{prefix}tls-cert", default=None, metavar="PEM", help="server certificate (default: the keyring's server/tls)")
    group.add_argument(f"--{prefix}tls-key", default=None, metavar="PEM", help="its private key")


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(run_server(settings))


if __name__ == "__main__":
    raise SystemExit(main())
