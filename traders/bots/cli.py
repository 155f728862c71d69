"""``dex-bots``: trading bots driven by price updates, kept in a SQLite database, run by N workers.

Commands::

    dex-bots init --db bots.db --bots 300 [--pairs ..] [--partitions 16] [--seed 1]   create / fill the database
    dex-bots add --db bots.db --id b1 --pair BTC-USD --strategy momentum --size 0.01 ...
    dex-bots list --db bots.db                      the bots, one per line
    dex-bots enable|disable --db bots.db ID
    dex-bots run --db bots.db --workers 4 [--transport amqp] [--server URL]   N worker processes
    dex-bots worker --db bots.db --worker 0 --workers 4 ...                    one worker (what run starts)

Orders go over the AMQP transport by default, to the RabbitMQ the prices come
from (``make rabbitmq-start && make amqp-server``): one broker serves both.
``run`` prints one status line a second for all its workers and a summary
when stopped (``traders.bots.supervisor``); a worker started alone prints
its own line (``traders.bots.stats``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from traders.bots.model import STRATEGIES, BotConfig
from traders.bots.risk import RiskSettings
from traders.bots.store import DEFAULT_PARTITIONS, BotStore, BotStoreError, generate_bots
from traders.bots.supervisor import run_workers
from traders.bots.worker import BotWorker, WorkerSettings, WorkerStartError

DEFAULT_DB = "var/bots.db"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a decimal: {text!r}") from exc
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive decimal: {text!r}")
    return value


def _worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--amqp-url", default=os.environ.get("DEX_AMQP_URL", DEFAULT_AMQP_URL), help="RabbitMQ URL (env DEX_AMQP_URL)")
    p.add_argument("--exchange", default="price_updates", help="topic exchange of the price updates (default price_updates)")
    p.add_argument("--queue-prefix", default="", help="prefix of the partition queue names (to share a broker)")
    p.add_argument("--trader-prefix", default="bots", help="exchange trader id of partition p is <prefix>-pNNN (default bots)")
    p.add_argument("--transport", default="amqp", help="transport to the exchange (any in transports.registry; default amqp)")
    p.add_argument("--server", default=None, help="exchange URL for --transport (default: amqp: --amqp-url; others: their default)")
    p.add_argument(
        "--keys",
        default=None,
        metavar="DIR",
        help="a development keyring (the exchange's --keys): each partition's trader proves its own key, created on first use",
    )
    p.add_argument("--workers", type=int, default=1, help="number of workers sharing the bots (default 1)")
    p.add_argument("--standby-step", type=float, default=0.2, help="poll period while standbys wait for higher ranks (default 0.2 s)")
    p.add_argument("--owner-wait", type=float, default=15.0, help="longest wait for the workers ranked before (default 15 s)")
    p.add_argument("--prefetch", type=int, default=16, help="updates a partition queue delivers ahead (default 16)")
    p.add_argument("--max-age-ms", type=int, default=2000, help="risk stage freshness: oldest usable update (default 2000)")
    p.add_argument("--max-drop-bps", type=int, default=300, help="risk stage drop: no buying this far below the window high")
    p.add_argument("--max-spread-bps", type=int, default=50, help="risk stage entry: widest spread to enter (default 50)")
    p.add_argument("--max-volatility-bps", type=int, default=500, help="risk stage entry: widest window range to enter (default 500)")
    p.add_argument("--stats-out", default="", help="write the worker's summary JSON here every second and at exit ({worker}: its index)")
    p.add_argument("--quiet", action="store_true", help="no per-second lines (run: still the summary)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="dex-bots", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = root.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="create the bot database, optionally with generated bots")
    init.add_argument("--db", default=DEFAULT_DB)
    init.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS, help="partition queues (fixed at creation; default 16)")
    init.add_argument("--bots", type=int, default=0, help="generate this many bots (seeded)")
    init.add_argument("--pairs", default="BTC-USD,ETH-USD,SOL-USD")
    init.add_argument("--seed", type=int, default=1)

    add = sub.add_parser("add", help="add or replace one bot")
    add.add_argument("--db", default=DEFAULT_DB)
    add.add_argument("--id", required=True)
    add.add_argument("--pair", required=True)
    add.add_argument("--strategy", choices=STRATEGIES, required=True)
    add.add_argument("--size", type=_decimal, required=True, help="base units per order")
    add.add_argument("--max-position", type=_decimal, required=True, help="absolute base units")
    add.add_argument("--max-exposure", type=_decimal, required=True, help="absolute notional in quote units")
    add.add_argument("--take-profit-bps", type=int, default=100)
    add.add_argument("--stop-loss-bps", type=int, default=100)
    add.add_argument("--cooldown-ms", type=int, default=1000)
    add.add_argument("--max-orders-per-min", type=int, default=30)
    add.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="strategy parameter (repeatable)")
    add.add_argument("--disabled", action="store_true")

    listing = sub.add_parser("list", help="list the bots")
    listing.add_argument("--db", default=DEFAULT_DB)
    for name in ("enable", "disable"):
        toggle = sub.add_parser(name, help=f"{name} a bot")
        toggle.add_argument("--db", default=DEFAULT_DB)
        toggle.add_argument("bot_id")

    run = sub.add_parser("run", help="run --workers worker processes")
    run.add_argument("--db", default=DEFAULT_DB)
    _worker_options(run)

    worker = sub.add_parser("worker", help="run one worker")
    worker.add_argument("--db", default=DEFAULT_DB)
    worker.add_argument("--worker", type=int, default=0, help="this worker's index, 0 .. workers-1")
    _worker_options(worker)
    return root


def _settings(args: argparse.Namespace) -> WorkerSettings:
    if not 0 <= args.worker < args.workers:
        raise ValueError(f"--worker must be in 0..{args.workers - 1}")
    return WorkerSettings(
        db=args.db,
        amqp_url=args.amqp_url,
        transport=args.transport,
        server=_server(args),
        worker=args.worker,
        workers=args.workers,
        exchange=args.exchange,
        queue_prefix=args.queue_prefix,
        trader_prefix=args.trader_prefix,
        standby_step_s=args.standby_step,
        owner_wait_s=args.owner_wait,
        prefetch=args.prefetch,
        stats_out=args.stats_out,
        quiet=args.quiet,
        risk=RiskSettings(args.max_age_ms, args.max_drop_bps, args.max_spread_bps, args.max_volatility_bps),
        keys=args.keys,
    )


def _server(args: argparse.Namespace) -> str | None:
    """The exchange URL: ``--server``; for the AMQP transport, by default the broker the prices come from."""
    if args.server is None and args.transport == "amqp":
        return str(args.amqp_url)
    return None if args.server is None else str(args.server)


def _existing_db(path: str) -> str:
    if not os.path.exists(path):
        raise ValueError(f"no bot database at {path}: create one with `make bots-init` (dex-bots init --db {path} --bots 300)")
    return path


async def _run_worker(settings: WorkerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = BotWorker(settings)
    bots = sum(map(len, worker.bots_by_partition.values()))
    if not settings.quiet:
        print(
            f"dex-bots worker {settings.worker}/{settings.workers} pid {os.getpid()}: {bots} bots, {worker.partitions} partitions",
            flush=True,
        )
    await worker.run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(argv if argv is not None else sys.argv[1:])
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.command == "init":
            store = BotStore(args.db, args.partitions)
            pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
            added = store.add(generate_bots(args.bots, pairs, args.seed)) if args.bots else 0
            print(f"{args.db}: {store.partitions} partitions, {added} bots added, {len(store.bots())} enabled", flush=True)
            store.close()
        elif args.command == "add":
            params = dict(p.split("=", 1) for p in args.param)
            bot = BotConfig(args.id, args.pair, args.strategy, args.size, args.max_position, args.max_exposure, args.take_profit_bps,
                            args.stop_loss_bps, args.cooldown_ms, args.max_orders_per_min, params, not args.disabled)  # fmt: skip
            store = BotStore(args.db)
            store.add([bot])
            store.close()
        elif args.command == "list":
            store = BotStore(args.db)
            for b in store.bots(enabled_only=False):
                print(json.dumps({"bot_id": b.bot_id, "pair": b.pair, "strategy": b.strategy, "size": str(b.size), "enabled": b.enabled}))
            store.close()
        elif args.command in ("enable", "disable"):
            store = BotStore(args.db)
            found = store.set_enabled(args.bot_id, args.command == "enable")
            store.close()
            if not found:
                print(f"dex-bots: no bot {args.bot_id!r}", file=sys.stderr)
                return 1
        elif args.command == "run":
            _existing_db(args.db)
            args.server = _server(args)  # the workers resolve it the same way; the supervisor names it
            return run_workers(args, argv)
        else:
            _existing_db(args.db)
            import uvloop

            uvloop.run(_run_worker(_settings(args)))
    except (BotStoreError, WorkerStartError, ValueError) as exc:
        print(f"dex-bots: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a Ctrl-C before the worker's own handler was installed (it was still starting)
        return 130
    except ConnectionError as exc:  # the broker went away under a running worker: `run` restarts it
        print(f"dex-bots worker {getattr(args, 'worker', '')}: {exc}; exiting", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
