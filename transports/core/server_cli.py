"""What every server process shares: the gateway options and the process lifecycle.

Each transport's server (``turbo-dex``, ``dex-grpc``, ``dex-zmq``) adds its
own options (ports, ...) to the same gateway options, and runs the same
lifecycle: recover the journal, listen, print one start-up line naming the
URL, serve until SIGTERM/SIGINT, stop the listener, stop the gateway (apply
what is queued, fsync, checkpoint), print one line, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from engine import ExchangeError
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import FsyncPolicy
from transports.instruments import select_instruments

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

# A started listener: the text after "listening on" in the start-up line, and how to stop it.
Listener = tuple[str, Callable[[], Awaitable[None]]]


def add_gateway_options(parser: argparse.ArgumentParser, *, default_journal: str, default_host: str = "127.0.0.1", what: str = "") -> None:
    """The options every server shares (``what`` names the wire in help texts, e.g. "over gRPC")."""
    parser.add_argument("--host", default=default_host, help=f"interface to bind (default {default_host}; 0.0.0.0 = all)")
    parser.add_argument("--buffer", type=int, default=100_000, help="most commands waiting in the gateway queue before OVERLOADED")
    journal = parser.add_mutually_exclusive_group()
    journal.add_argument("--journal", default=default_journal, metavar="PATH", help=f"command journal (default {default_journal})")
    journal.add_argument("--no-journal", action="store_true", help="keep nothing across restarts")
    parser.add_argument("--fsync", choices=("batch", "interval", "off"), default="batch", help="journal durability (default batch)")
    parser.add_argument("--symbols", default="", help="comma list of default instruments to list (default: all)")
    parser.add_argument("--allow-admin", action="store_true", help=f"accept add_instrument commands {what}".rstrip())
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")


def gateway_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Validate the shared options; return them as settings fields (every server's settings has these)."""
    if args.buffer < 1:
        parser.error("--buffer must be at least 1")
    try:
        select_instruments(args.symbols)
    except ValueError as exc:
        parser.error(str(exc))
    return {
        "host": args.host,
        "buffer": args.buffer,
        "journal": None if args.no_journal else args.journal,
        "fsync": args.fsync,
        "symbols": args.symbols,
        "allow_admin": args.allow_admin,
        "log_level": args.log_level,
    }


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (code, the recovered book) out of the
    collector's reach: the engine makes no reference cycles, and full passes
    over a large book are the worst latency spikes otherwise."""
    gc.collect()
    gc.freeze()


def describe(gateway: Gateway, journal: str | None, fsync: str) -> str:
    """The start-up line's tail: journal, symbols, engine sequence."""
    stored = f"journal {journal} (fsync {fsync}, {gateway.recovered_commands} commands recovered)" if journal else "no journal"
    return f"{stored}; symbols {','.join(i.symbol for i in gateway.instruments)}; engine seq {gateway.engine.seq}"


async def run_process(
    name: str, *, buffer: int, journal: str | None, fsync: FsyncPolicy, symbols: str, listen: Callable[[Gateway], Awaitable[Listener]]
) -> int:
    """The whole life of a server process; the exit code."""
    gateway = Gateway(config=GatewayConfig(buffer=buffer, journal=journal, fsync=fsync))
    try:
        await gateway.start(select_instruments(symbols))
    except (ExchangeError, OSError) as exc:
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        return 1
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)  # kept until the end: a second signal does not cut the shutdown short
    try:
        try:
            where, close = await listen(gateway)
        except OSError as exc:
            print(f"{name}: cannot listen: {exc}", file=sys.stderr)
            return 1
        print(f"{name} listening on {where}", flush=True)
        try:
            await stop.wait()
        finally:
            await close()
    finally:
        await gateway.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print(f"{name} stopped (engine seq {gateway.engine.seq})", flush=True)
    return 0
