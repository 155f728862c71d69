"""``turbo-dex``: the matching engine behind HTTP (FastAPI on uvicorn, uvloop + httptools).

One process, one engine, one gateway. Start-up recovers the journal (if
any) before the socket listens, lists the default instruments that are not
yet listed, and prints one line naming the URL. SIGTERM or SIGINT stops
accepting connections, lets open requests finish (up to
``graceful_shutdown_s``), then ``Gateway.stop()`` applies what is queued,
fsyncs and writes a checkpoint.

There is no ``--workers``/``--shards``: the engine is a single writer, and a
second worker process would hold a second, separate order book.

For tests and for a process that serves several transports over one
gateway, ``serve_http(gateway, ...)`` runs the same server inside the
caller's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace

import uvicorn
import uvloop

from engine import ExchangeError
from transports.core import legacy_flags
from transports.core.auth import add_auth_options
from transports.core.connections import ConnectionGuard
from transports.core.gateway import Gateway
from transports.core.server_cli import (
    add_gateway_options,
    describe,
    freeze_startup_heap,
    gateway_config,
    gateway_options,
    process_authenticator,
    start_metrics,
)
from transports.http.app import create_app
from transports.http.protocol import guarded_protocol
from transports.http.settings import DEFAULT_HOST, DEFAULT_PORT, HttpServerSettings, http_url
from transports.instruments import select_instruments

log = logging.getLogger("turbo-dex")


class _Server(uvicorn.Server):
    """uvicorn's server, minus its signal handling when embedded.

    Standalone, SIGTERM/SIGINT only ask it to exit (and are not re-raised
    afterwards, so the gateway still stops cleanly); embedded, the host
    process owns the signals.
    """

    def __init__(self, config: uvicorn.Config, *, handle_signals: bool) -> None:
        super().__init__(config)
        self.handle_signals = handle_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if not self.handle_signals:
            yield
            return
        import signal

        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _uvicorn_config(gateway: Gateway, settings: HttpServerSettings) -> uvicorn.Config:
    guard = ConnectionGuard(settings.connections, gateway.stats, "http")
    return uvicorn.Config(
        create_app(gateway, settings),
        loop="uvloop",
        http=guarded_protocol(guard, settings.body_limit),  # httptools, with read timeouts and connection caps
        timeout_keep_alive=max(1, round(settings.connections.idle_timeout_s)),
        ws="websockets-sansio",
        lifespan="off",  # the gateway's lifetime is ours, not the app's
        log_level=settings.log_level,
        log_config=None,  # the process owns logging (transports.core.logs): uvicorn's records share its format
        access_log=settings.log_level in ("debug", "trace"),
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        server_header=False,
    )


def bind(host: str, port: int, backlog: int = 2048, shared: bool = False) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one; ``shared``: other fronts may listen on it too).

    It listens at once, so that from the moment the start-up line names the
    URL, connections are accepted (queued until uvicorn serves them).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.asynccontextmanager
async def serve_http(
    gateway: Gateway, settings: HttpServerSettings | None = None, *, sock: socket.socket | None = None
) -> AsyncIterator[str]:
    """Serve ``gateway`` over HTTP in the running event loop; yields the base URL.

    The caller starts and stops the gateway. ``settings.port = 0`` picks a
    free port. Leaving the block stops the server (open requests finish).
    """
    settings = settings if settings is not None else HttpServerSettings(port=0, log_level="warning")
    sock = sock if sock is not None else bind(settings.host, settings.port, shared=settings.shared_port)
    url = http_url(settings.host, sock.getsockname()[1])
    server = _Server(_uvicorn_config(gateway, settings), handle_signals=False)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]), name=f"turbo-dex {url}")
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raise the start-up failure
                raise RuntimeError(f"turbo-dex at {url} did not start")
            await asyncio.sleep(0.005)
        yield url
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_server(settings: HttpServerSettings) -> int:
    """The ``turbo-dex`` process: recover, listen, serve until SIGTERM/SIGINT, stop cleanly."""
    instruments = select_instruments(settings.symbols)
    gateway = Gateway(config=gateway_config(settings.buffer, settings.journal, settings.fsync))  # --snapshot-* included
    try:
        await gateway.start(instruments)
    except (ExchangeError, OSError) as exc:
        print(f"turbo-dex: cannot start: {exc}", file=sys.stderr)
        return 1
    freeze_startup_heap()
    try:
        try:
            sock = bind(settings.host, settings.port)
        except OSError as exc:
            print(f"turbo-dex: cannot listen on {settings.host}:{settings.port}: {exc.strerror}", file=sys.stderr)
            return 1
        url = http_url(settings.host, sock.getsockname()[1])
        server = _Server(_uvicorn_config(gateway, settings), handle_signals=True)
        async with AsyncExitStack() as extras:
            try:
                metrics = await start_metrics(extras, gateway)  # also on GET /metrics of the API port
            except OSError as exc:
                print(f"turbo-dex: cannot serve metrics: {exc}", file=sys.stderr)
                return 1
            print(f"turbo-dex listening on {url} ({describe(gateway, settings.journal, settings.fsync)}{metrics})", flush=True)
            await server.serve(sockets=[sock])
    finally:
        await gateway.stop()
    print(f"turbo-dex stopped (engine seq {gateway.engine.seq})", flush=True)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> HttpServerSettings:
    parser = argparse.ArgumentParser(prog="turbo-dex", description="The matching engine behind HTTP (docs/http.md).")
    add_gateway_options(parser, default_host=DEFAULT_HOST, what="over HTTP")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0 = any free port)")
    add_auth_options(parser)
    args = legacy_flags.parse_args(parser, argv)
    common = gateway_options(parser, args)
    # --auth keys: signed requests; --auth off: loopback only. SystemExit here, before the journal is opened, when unsafe.
    return replace(HttpServerSettings(), port=args.port, auth=process_authenticator(args), **common)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_server(settings))


if __name__ == "__main__":
    raise SystemExit(main())
