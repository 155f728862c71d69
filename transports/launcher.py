"""``turbo-dex``: one process, one gateway, one book, served over any set of transports.

``turbo-dex`` alone is the HTTP server (``transports.http.server``, docs/http.md).
``turbo-dex --transports http,grpc,zmq`` serves the *same* gateway over each
listed transport at once: an order sent over gRPC trades against one sent
over ZeroMQ or HTTP, each submitter gets its own events, and every market-data
subscriber, whatever its wire, sees the same sequenced stream.

This module sits beside ``registry`` (outside the transport folders) because
it is the one place that knows several transports; the folders themselves
never import each other (an import-linter contract).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import uvloop

from engine import ExchangeError
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.legacy_flags import modern_argv
from transports.core.server_cli import add_gateway_options, describe, freeze_startup_heap, gateway_options, start_metrics
from transports.instruments import select_instruments

KNOWN = ("http", "grpc", "zmq")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turbo-dex",
        description="The matching engine behind HTTP, gRPC and/or ZeroMQ, one gateway for all (docs/http.md, docs/grpc.md, docs/zmq.md).",
    )
    parser.add_argument("--transports", default="http", help="comma list of transports to serve: http, grpc, zmq (default http)")
    add_gateway_options(parser)
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--grpc-port", type=int, default=50051, help="gRPC port (default 50051)")
    parser.add_argument("--zmq-port", type=int, default=5555, help="ZeroMQ ROUTER port for orders (default 5555)")
    parser.add_argument("--zmq-pub-port", type=int, default=5556, help="ZeroMQ PUB port for market data (default 5556)")
    return parser


def _serve(name: str, gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    if name == "http":
        from transports.http.server import serve_http
        from transports.http.settings import HttpServerSettings

        return serve_http(
            gateway, HttpServerSettings(host=args.host, port=args.port, allow_admin=args.allow_admin, log_level=args.log_level)
        )
    if name == "grpc":
        from transports.grpc.server import serve_grpc
        from transports.grpc.settings import GrpcServerSettings

        settings = GrpcServerSettings(host=args.host, port=args.grpc_port, allow_admin=args.allow_admin, log_level=args.log_level)
        return serve_grpc(gateway, settings)
    from transports.zmq.server import serve_zmq
    from transports.zmq.settings import ZmqServerSettings

    settings_zmq = ZmqServerSettings(
        host=args.host, port=args.zmq_port, pub_port=args.zmq_pub_port, allow_admin=args.allow_admin, log_level=args.log_level
    )
    return serve_zmq(gateway, settings_zmq)


async def serve_all(args: argparse.Namespace, names: Sequence[str], journal: str | None) -> int:
    gateway = Gateway(config=GatewayConfig(buffer=args.buffer, journal=journal, fsync=args.fsync))
    try:
        await gateway.start(select_instruments(args.symbols))
    except (ExchangeError, OSError) as exc:
        print(f"turbo-dex: cannot start: {exc}", file=sys.stderr)
        return 1
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            urls = []
            for name in names:
                try:
                    urls.append(await stack.enter_async_context(_serve(name, gateway, args)))
                except OSError as exc:
                    print(f"turbo-dex: cannot serve {name}: {exc}", file=sys.stderr)
                    return 1
            try:
                metrics = await start_metrics(stack, gateway)
            except OSError as exc:
                print(f"turbo-dex: cannot serve metrics: {exc}", file=sys.stderr)
                return 1
            print(f"turbo-dex listening on {', '.join(urls)} (one gateway; {describe(gateway, journal, args.fsync)}{metrics})", flush=True)
            await stop.wait()
    finally:
        await gateway.stop()
    print(f"turbo-dex stopped (engine seq {gateway.engine.seq})", flush=True)
    return 0


def _without_transports(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--transports":
            skip = True
        elif not arg.startswith("--transports="):
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = modern_argv(_parser(), sys.argv[1:] if argv is None else argv)  # -port 8080 as --port 8080
    args, _ = _parser().parse_known_args(argv)
    names = [n.strip() for n in args.transports.split(",") if n.strip()]
    unknown = [n for n in names if n not in KNOWN]
    if unknown or not names:
        print(f"turbo-dex: unknown transport(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(KNOWN)}", file=sys.stderr)
        return 2
    if names == ["http"]:
        # The HTTP-only server, with every option it has (docs/http.md).
        from transports.http.server import main as http_main

        return http_main(_without_transports(argv))
    parser = _parser()
    args = parser.parse_args(argv)
    journal = gateway_options(parser, args)["journal"]  # validates the shared options; configures logging and metrics
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve_all(args, names, journal))


if __name__ == "__main__":
    raise SystemExit(main())
