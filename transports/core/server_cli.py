"""What every server process shares: the gateway options and the process lifecycle.

Each transport's server (``turbo-dex``, ``dex-grpc``, ``dex-zmq``) adds its
own options (ports, ...) to the same gateway options, and runs the same
lifecycle: recover the journal (its snapshot and tail; ``--snapshot-every``
and ``--snapshot-interval`` set how often the gateway takes the next one),
listen, print one start-up line naming the URL, serve until SIGTERM/SIGINT,
stop the listener, stop the gateway (apply what is queued, fsync,
checkpoint), print one line, exit 0.

Authentication is process-wide: ``process_authenticator(args)`` builds the
one ``Authenticator`` of a process from ``--auth``/``--keys``
(``transports.core.auth.add_auth_options``) and keeps it on the parsed
options as ``args.authenticator``, so every transport a process serves
(``turbo-dex --transports``) checks the same keyring, replay memory and
per-key limits. It refuses (``SystemExit``) a server on a non-loopback
address without keys, before any journal is opened.

Observability is process-wide and shared too: ``--log-format console|json``
and ``--log-level`` configure structured logs (``transports.core.logs``) as
soon as the options are parsed (``gateway_options``), and ``--metrics-port``
serves Prometheus metrics (``transports.core.metrics``) for the whole life of
the process (``run_process``; ``turbo-dex`` also answers ``/metrics`` on its
HTTP port).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from engine import ExchangeError
from transports.core.auth import Authenticator, auth_from_options
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import FsyncPolicy
from transports.core.logs import LOG_FORMATS, LogFormat, configure_logging
from transports.core.metrics import serve_metrics
from transports.core.state_dir import DEFAULT_STATE_DIR, STATE_DIR_ENV, journal_path
from transports.instruments import select_instruments

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

_GATEWAY_DEFAULTS = GatewayConfig()

# A started listener: the text after "listening on" in the start-up line, and how to stop it.
Listener = tuple[str, Callable[[], Awaitable[None]]]


def add_gateway_options(parser: argparse.ArgumentParser, *, default_host: str = "127.0.0.1", what: str = "") -> None:
    """The options every server shares (``what`` names the wire in help texts, e.g. "over gRPC").

    The default journal is ``STATE_DIR/<prog>.journal`` (``transports.core.state_dir``).
    """
    default_journal = journal_path(parser.prog, "STATE_DIR")
    parser.add_argument("--host", default=default_host, help=f"interface to bind (default {default_host}; 0.0.0.0 = all)")
    parser.add_argument("--buffer", type=int, default=100_000, help="most commands waiting in the gateway queue before OVERLOADED")
    journal = parser.add_mutually_exclusive_group()
    journal.add_argument("--journal", default=None, metavar="PATH", help=f"command journal (default {default_journal})")
    journal.add_argument("--no-journal", action="store_true", help="keep nothing across restarts")
    parser.add_argument(
        "--state-dir",
        default=None,
        metavar="DIR",
        help=f"state directory (default ${STATE_DIR_ENV}, else {DEFAULT_STATE_DIR})",
    )
    parser.add_argument("--fsync", choices=("batch", "interval", "off"), default="batch", help="journal durability (default batch)")
    defaults = _GATEWAY_DEFAULTS  # the gateway's own defaults, so help and behaviour cannot disagree
    parser.add_argument(
        "--snapshot-every",
        type=int,
        default=defaults.snapshot_every,
        metavar="N",
        help=f"snapshot the engine and truncate the journal every N commands (default {defaults.snapshot_every:,}; 0 = never by count)",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=float,
        default=defaults.snapshot_interval_s,
        metavar="SECONDS",
        help=f"... or every SECONDS, whichever comes first (default {defaults.snapshot_interval_s:g}; 0 = never by time)",
    )
    parser.add_argument("--symbols", default="", help="comma list of default instruments to list (default: all)")
    parser.add_argument("--allow-admin", action="store_true", help=f"accept add_instrument commands {what}".rstrip())
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="console", help="structured logs on stderr (default console)")
    parser.add_argument(
        "--metrics-port", type=int, default=None, metavar="PORT", help="serve Prometheus metrics on http://HOST:PORT/metrics (0 = any free)"
    )


@dataclass(frozen=True, slots=True)
class ProcessOptions:
    """Process-wide options every server shares beyond its settings: where metrics are served."""

    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no metrics endpoint of its own
    snapshot_every: int = _GATEWAY_DEFAULTS.snapshot_every  # --snapshot-every: commands between snapshots (0 = never by count)
    snapshot_interval_s: float = _GATEWAY_DEFAULTS.snapshot_interval_s  # --snapshot-interval (0 = never by time)


_process = ProcessOptions()


def process_options() -> ProcessOptions:
    """What ``gateway_options`` read last (the defaults when a server is embedded and parsed no options)."""
    return _process


def gateway_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Validate the shared options; return them as settings fields (every server's settings has these)."""
    global _process  # noqa: PLW0603 - one set of process-wide options per process, read by run_process
    if args.buffer < 1:
        parser.error("--buffer must be at least 1")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        parser.error("--metrics-port must be between 0 and 65535")
    if args.snapshot_every < 0 or args.snapshot_interval < 0:
        parser.error("--snapshot-every and --snapshot-interval must be 0 (off) or positive")
    log_format: LogFormat = args.log_format
    configure_logging(args.log_level, log_format)
    _process = ProcessOptions(args.host, args.metrics_port, args.snapshot_every, args.snapshot_interval)
    try:
        select_instruments(args.symbols)
    except ValueError as exc:
        parser.error(str(exc))
    return {
        "host": args.host,
        "buffer": args.buffer,
        "journal": None if args.no_journal else args.journal or journal_path(parser.prog, args.state_dir),
        "fsync": args.fsync,
        "symbols": args.symbols,
        "allow_admin": args.allow_admin,
        "log_level": args.log_level,
    }


def process_authenticator(args: argparse.Namespace) -> Authenticator | None:
    """The process's one ``Authenticator`` (None with ``--auth off``), built once and kept as ``args.authenticator``.

    ``SystemExit`` with the reason when the choice is unsafe for ``--host`` (``auth_from_options``).
    """
    if not hasattr(args, "authenticator"):
        args.authenticator = auth_from_options(args, args.host)
    authenticator: Authenticator | None = args.authenticator
    return authenticator


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (code, the recovered book) out of the
    collector's reach: the engine makes no reference cycles, and full passes
    over a large book are the worst latency spikes otherwise."""
    gc.collect()
    gc.freeze()


async def start_metrics(stack: AsyncExitStack, gateway: Gateway) -> str:
    """Serve metrics if ``--metrics-port`` asked for it (stopped with ``stack``); the start-up line's mention of it."""
    options = process_options()
    if options.metrics_port is None:
        return ""
    url = await stack.enter_async_context(serve_metrics(gateway, options.metrics_host, options.metrics_port))
    return f"; metrics {url}"


def describe(gateway: Gateway, journal: str | None, fsync: str) -> str:
    """The start-up line's tail: journal, symbols, engine sequence."""
    stored = f"journal {journal} (fsync {fsync}, {gateway.recovered_commands} commands recovered)" if journal else "no journal"
    return f"{stored}; symbols {','.join(i.symbol for i in gateway.instruments)}; engine seq {gateway.engine.seq}"


def gateway_config(buffer: int, journal: str | None, fsync: FsyncPolicy) -> GatewayConfig:
    """The gateway of a server process: its queue and journal, and the snapshot options ``gateway_options`` read."""
    options = process_options()
    return GatewayConfig(buffer, journal, fsync, snapshot_every=options.snapshot_every, snapshot_interval_s=options.snapshot_interval_s)


async def run_process(
    name: str, *, buffer: int, journal: str | None, fsync: FsyncPolicy, symbols: str, listen: Callable[[Gateway], Awaitable[Listener]]
) -> int:
    """The whole life of a server process; the exit code."""
    gateway = Gateway(config=gateway_config(buffer, journal, fsync))
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
        async with AsyncExitStack() as extras:
            try:
                where, close = await listen(gateway)
                extras.push_async_callback(close)
                where += await start_metrics(extras, gateway)
            except OSError as exc:
                print(f"{name}: cannot listen: {exc}", file=sys.stderr)
                return 1
            print(f"{name} listening on {where}", flush=True)
            await stop.wait()
    finally:
        await gateway.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print(f"{name} stopped (engine seq {gateway.engine.seq})", flush=True)
    return 0
