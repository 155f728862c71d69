"""``dex-pricefeed``: publish prices of ``--pairs`` every ``--interval`` seconds from ``--source`` to ``--publish`` targets.

Examples::

    dex-pricefeed                                        # seeded random walk -> RabbitMQ price_updates
    dex-pricefeed --source kraken --pairs BTC-USD,ETH-USD --publish amqp,nats,zmq
    dex-pricefeed --source replay --file prices.csv --interval 0.1 --count 100

It prints one line per round on stdout unless ``--quiet``; SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence

from pricefeed.feed import FeedStats, run_feed
from pricefeed.publishers import PRICE_EXCHANGE, PublisherUnavailable, ZmqPublisher, make_publishers
from pricefeed.sources import SOURCES, SourceError, make_source
from transports.core import legacy_flags

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dex-pricefeed", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--pairs", default="BTC-USD,ETH-USD,SOL-USD", help="comma list of pairs (default BTC-USD,ETH-USD,SOL-USD)")
    p.add_argument("--bots-db", default="", help="publish the active pairs of this dex-bots database (its enabled bots) instead of --pairs")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between rounds (default 5)")
    p.add_argument("--source", choices=SOURCES, default="random", help="price source (default random: seeded walk, offline)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random walk (default 1)")
    p.add_argument("--file", default="", help="CSV or JSON Lines file for --source replay")
    p.add_argument("--loop", action="store_true", help="replay: start over at the end of the file")
    p.add_argument("--count", type=int, default=None, help="stop after this many rounds (default: run until stopped)")
    p.add_argument("--publish", default="amqp", help="comma list of targets: amqp,nats,zmq (default amqp)")
    p.add_argument("--amqp-url", default=os.environ.get("DEX_AMQP_URL", DEFAULT_AMQP_URL), help="RabbitMQ URL (env DEX_AMQP_URL)")
    p.add_argument("--exchange", default=PRICE_EXCHANGE, help=f"RabbitMQ topic exchange (default {PRICE_EXCHANGE})")
    p.add_argument("--nats-url", default=os.environ.get("DEX_NATS_URL", DEFAULT_NATS_URL), help="NATS URL (env DEX_NATS_URL)")
    p.add_argument("--zmq-endpoint", default="tcp://127.0.0.1:0", help="ZeroMQ PUB bind endpoint (default: a free loopback port)")
    p.add_argument("--quiet", action="store_true")
    return p


async def _run(args: argparse.Namespace) -> int:
    pairs = active_pairs(args.bots_db) if args.bots_db else [p.strip() for p in args.pairs.split(",") if p.strip()]
    if not pairs:
        raise ValueError("no pairs to publish (no enabled bot in --bots-db?)")
    source = make_source(args.source, seed=args.seed, path=args.file, loop=args.loop)
    publishers = make_publishers(
        args.publish, amqp_url=args.amqp_url, nats_url=args.nats_url, zmq_endpoint=args.zmq_endpoint, exchange=args.exchange
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for publisher in publishers:
        await publisher.connect()
        where = publisher.endpoint if isinstance(publisher, ZmqPublisher) else ""
        print(f"dex-pricefeed publishing to {publisher.name} {where}".rstrip(), flush=True)
    stats = FeedStats()
    reporter = asyncio.create_task(_report(stats, args.quiet))
    try:
        await run_feed(source, publishers, pairs, args.interval, count=args.count, stop=stop, stats=stats)
    finally:
        reporter.cancel()
        for publisher in publishers:
            await publisher.close()
        await source.close()
    print(f"dex-pricefeed stopped: {stats.published} updates published, {stats.source_errors} source errors", flush=True)
    return 0


def active_pairs(db: str) -> list[str]:
    """The pairs of the enabled bots of a dex-bots database (read-only; the schema is docs/bots.md's)."""
    if not os.path.exists(db):
        raise ValueError(f"no bot database at {db}")
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return [row[0] for row in connection.execute("SELECT DISTINCT pair FROM bots WHERE enabled = 1 ORDER BY pair")]


async def _report(stats: FeedStats, quiet: bool) -> None:
    shown = 0
    while not quiet:
        await asyncio.sleep(1.0)
        if stats.published != shown:
            shown = stats.published
            prices = " ".join(f"{u.pair}={u.price}" for u in stats.last.values())
            print(f"pricefeed: published {stats.published} source_errors {stats.source_errors} {prices}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = legacy_flags.parse_args(parser(), argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return asyncio.run(_run(args))
    except (SourceError, PublisherUnavailable, ValueError) as exc:
        print(f"dex-pricefeed: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
