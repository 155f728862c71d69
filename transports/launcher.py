"""``turbo-dex``: one process, one gateway, one book, served over any set of transports.

``turbo-dex`` alone is the HTTP server (``transports.http.server``, docs/http.md).
``turbo-dex --transports http,grpc,zmq,nats,amqp`` serves the *same* gateway
over each listed transport at once: an order sent over gRPC trades against one
sent over NATS or HTTP, each submitter gets its own events, and every
market-data subscriber, whatever its wire, sees the same sequenced stream.

Which transports it can serve, their options and their brokers' URL options
(``--nats-url``, ``--amqp-url``) come from the registry's descriptors (their
``mount`` and ``broker``); this module names none. A transport without a
mount is not served here: inproc has no wire, and a DHT node is a process
kind of its own (``dex-node``). A brokered transport with no URL given uses
its environment variable, else its default (NATS: a private nats-server
started for the purpose and stopped by PID; RabbitMQ: the local broker).

Authentication (docs/security.md): ``--auth keys --keys DIR`` builds one
``Authenticator`` before anything is served and puts it on the parsed
options as ``args.authenticator``; every mount reads it from there, so all
wires check the same keyring, replay memory and per-key limits. A transport
that cannot authenticate yet (its descriptor has no ``auth``) is refused
with ``--auth keys`` rather than served open. ``--auth off`` is for
loopback only: on any other ``--host`` turbo-dex exits 1 with the reason.
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
from transports.core.auth import add_auth_options
from transports.core.descriptor import Mount
from transports.core.gateway import Gateway
from transports.core.legacy_flags import modern_argv
from transports.core.pids import die_with
from transports.core.server_cli import (
    add_gateway_options,
    describe,
    freeze_startup_heap,
    gateway_config,
    gateway_options,
    process_authenticator,
    start_metrics,
)
from transports.instruments import select_instruments
from transports.registry import TRANSPORTS
from transports.sharding.cluster import ShardProcesses, add_shard_options, check_shard_options

DEFAULT = "http"  # turbo-dex alone is the HTTP server, with every option it has


def served() -> tuple[str, ...]:
    """The registered transports turbo-dex can serve: those whose descriptor has a mount (not inproc, not dht)."""
    return tuple(name for name, d in TRANSPORTS.items() if d.mount is not None)


def _parser() -> argparse.ArgumentParser:
    names = served()
    parser = argparse.ArgumentParser(
        prog="turbo-dex",
        description=f"The matching engine behind any of {', '.join(names)}: one gateway for all (docs/transports.md).",
    )
    parser.add_argument("--transports", default=DEFAULT, help=f"comma list of transports to serve: {', '.join(names)} (default {DEFAULT})")
    add_gateway_options(parser)
    add_auth_options(parser)
    add_shard_options(parser)
    for name in names:
        descriptor = TRANSPORTS[name]
        assert descriptor.mount is not None
        descriptor.mount.add_options(parser)
        broker = descriptor.broker
        if broker is not None:
            parser.add_argument(
                broker.option, default=None, help=f"the {broker.name} {descriptor.title} uses (default ${broker.env}, else its own default)"
            )
    return parser


def _mount_of(name: str) -> Mount:
    mount = TRANSPORTS[name].mount
    assert mount is not None  # callers pass only served() names
    return mount


def _serve(name: str, gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    mount = TRANSPORTS[name].mount
    assert mount is not None  # main() accepts only served() names
    return mount.serve(gateway, args)


def _shown(url: str) -> str:
    """``url`` without a password (a broker URL may carry credentials; stdout is no place for them)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.partition(':')[0]}@{host}"


async def serve_all(args: argparse.Namespace, names: Sequence[str], journal: str | None, shards: ShardProcesses | None = None) -> int:
    if shards is not None:  # a front: the shards hold the books (docs/shards.md)
        gateway: Gateway = shards.front(args.buffer)
    else:
        gateway = Gateway(config=gateway_config(args.buffer, journal, args.fsync))  # --snapshot-* included
    try:
        await gateway.start(select_instruments(args.symbols))
    except (ExchangeError, OSError, TimeoutError) as exc:
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
            if shards is not None and not args.front_index:
                watcher = asyncio.get_running_loop().create_task(shards.watch(), name="shard-watch")
                stack.callback(watcher.cancel)
            shown = ", ".join(_shown(u) for u in urls)
            what = f"a front of {shards.describe()}" if shards is not None else f"one gateway; {describe(gateway, journal, args.fsync)}"
            print(f"turbo-dex listening on {shown} ({what}{metrics})", flush=True)
            await stop.wait()
    finally:
        await gateway.stop()
    print(f"turbo-dex stopped (engine seq {gateway.stats_dict()['engine_seq']})", flush=True)
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
    refused = check_shard_options(args)
    if refused is not None:
        print(f"turbo-dex: {refused}", file=sys.stderr)
        return 2
    single = [n for n in names if n in served() and not _mount_of(n).fronts] if args.fronts > 1 else []
    if single:
        print(f"turbo-dex: --fronts {args.fronts}: {', '.join(single)} can be served by one front only (docs/shards.md)", file=sys.stderr)
        return 2
    elsewhere = [n for n in names if n in TRANSPORTS and n not in served()]
    if elsewhere:
        servers = ", ".join(f"{n}: {TRANSPORTS[n].console_script or 'none, it has no wire'}" for n in elsewhere)
        print(f"turbo-dex: not served from one gateway, each has its own process kind ({servers})", file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in served()]
    if unknown or not names:
        print(f"turbo-dex: unknown transport(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(served())}", file=sys.stderr)
        return 2
    if names == [DEFAULT] and not args.shards:
        # The HTTP-only server, with every option it has (docs/http.md).
        from transports.http.server import main as http_main

        return http_main(_without_transports(argv))
    parser = _parser()
    args = parser.parse_args(argv)
    journal = gateway_options(parser, args)["journal"]  # validates the shared options; configures logging and metrics
    if process_authenticator(args) is not None:  # args.authenticator: every mount serves with it
        open_wires = [n for n in names if TRANSPORTS[n].auth is None]
        if open_wires:
            print(f"turbo-dex: --auth keys: {', '.join(open_wires)} cannot authenticate yet (docs/security.md, 'Status')", file=sys.stderr)
            return 2
    if args.shards:
        return _serve_sharded(parser, args, names, journal, argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve_all(args, names, journal))


def _serve_sharded(
    parser: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str], journal: str | None, argv: list[str]
) -> int:
    """``--shards N``: start the shard processes and the other fronts, serve every wire as front 0, stop them by PID at
    the end. With ``--front-index K`` (started so by front 0): only serve, as front K of the shards running."""
    try:
        shards = ShardProcesses(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.front_index:
        die_with(args.front_parent)
    else:
        try:
            shards.start()
            shards.start_fronts(argv)
        except (RuntimeError, OSError) as exc:
            print(f"turbo-dex: cannot start the shards: {exc}", file=sys.stderr)
            return 1
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve_all(args, names, journal, shards))
    finally:
        shards.stop()


if __name__ == "__main__":
    raise SystemExit(main())
