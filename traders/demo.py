"""``make demo``: start ``turbo-dex``, trade against it over HTTP for about ten seconds, show what happened.

The demo starts the HTTP server as a subprocess (127.0.0.1, a free port, a
journal in a temporary directory, ``--auth keys``), waits for ``/health``,
runs the harness (``dex-trader --transport http --keys``: every trader signs
with a development key it creates) with its live progress, prints the
summary, the top of every book and what an order without a key gets, and
stops the server by its PID.

``--engine-only`` drives the in-process engine directly instead (no server,
no gateway) and reports the engine's own speed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter

from engine import (
    AddInstrument,
    BookDepth,
    Engine,
    ExchangeError,
    Instrument,
    OrderAccepted,
    OrderRejected,
    PlaceOrder,
    Side,
    TradeExecuted,
)
from traders.harness import cli
from traders.harness.clients import remote_client
from traders.harness.server import LocalServer, ServerStartError
from transports.core.workload import OrderFlow
from transports.instruments import DEFAULT_INSTRUMENTS


def print_book(instrument: Instrument, depth: BookDepth) -> None:
    print(f"{instrument.symbol}  last {instrument.format_price(depth.last_price) if depth.last_price else '-'}")
    for ask in reversed(depth.asks):
        print(f"    ask {instrument.format_price(ask.price):>12} x {instrument.format_qty(ask.qty):>12}  ({ask.order_count} order(s))")
    for bid in depth.bids:
        print(f"    bid {instrument.format_price(bid.price):>12} x {instrument.format_qty(bid.qty):>12}  ({bid.order_count} order(s))")


def engine_only(seconds: float, traders: int, seed: int) -> int:
    engine = Engine()
    for instrument in DEFAULT_INSTRUMENTS:
        engine.handle(AddInstrument(instrument))
    flows = [OrderFlow(seed, f"trader-{i}", DEFAULT_INSTRUMENTS) for i in range(traders)]
    counts: Counter[str] = Counter()
    rejects: Counter[str] = Counter()
    commands = 0
    busy = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = [flow.next_command() for flow in flows for _ in range(125)]
        started = time.perf_counter()
        events = [engine.handle(command) for command in batch]
        busy += time.perf_counter() - started
        commands += len(batch)
        for reply in events:
            for event in reply:
                if isinstance(event, OrderAccepted):
                    counts["accepted"] += 1
                elif isinstance(event, TradeExecuted):
                    counts["trades"] += 1
                elif isinstance(event, OrderRejected):
                    rejects[event.reason.name] += 1

    print(f"commands   {commands:>10,}   ({commands / busy:,.0f} commands/s inside the engine)")
    print(f"accepted   {counts['accepted']:>10,}")
    print(f"trades     {counts['trades']:>10,}")
    print(f"rejected   {sum(rejects.values()):>10,}   " + ", ".join(f"{k}={v:,}" for k, v in rejects.most_common()))
    print(f"state hash {engine.state_hash()[:16]}…")
    print()
    for instrument in DEFAULT_INSTRUMENTS:
        depth = engine.depth(instrument.symbol, 3)
        assert depth is not None
        print_book(instrument, depth)
    return 0


async def _books(url: str, levels: int) -> list[tuple[Instrument, BookDepth]]:
    client = remote_client("http", "demo-viewer", url)
    await client.connect()
    try:
        return [(instrument, await client.book(instrument.symbol, levels)) for instrument in await client.instruments()]
    finally:
        await client.close()


async def _unsigned_order(url: str) -> str:
    """What the exchange answers an order that carries no key: the refusal, as a client sees it."""
    client = remote_client("http", "mallory", url)
    await client.connect()
    try:
        instrument = DEFAULT_INSTRUMENTS[0]
        await client.submit([PlaceOrder("mallory", "mallory-1", instrument.symbol, Side.BUY, instrument.min_qty, 1)])
    except ExchangeError as refused:
        return f"refused: {refused}"
    finally:
        await client.close()
    return "answered, not refused (authentication is not on)"


def introduction(url: str, pid: int, journal: str, seconds: float, warmup: float, traders: int, keys: str) -> str:
    """What the demo is about to show, before the live progress starts."""
    return f"""\
What runs: turbo-dex, the HTTP exchange (one matching engine, every reply waits for its journal fsync),
  pid {pid} on {url}, journal {journal}.
  Authentication is on (--auth keys): each trader signs every request with its own development key
  (Ed25519, created in {keys}; docs/security.md), and acts and reads only as itself.
Watch it live in a browser: {url}/  (the trading screen: books, candles, tape and the Transports panel
  update by WebSocket while the traders run; {url}/reports is the measured transport comparison).
  dex-trader drives it: {traders} traders, each sending batches of 100 commands as fast as replies come back,
  for {seconds:g} s ({warmup:g} s warm-up, not measured). Their seeded mix: passive limit orders that rest,
  orders that cross and trade, IOC and market orders, and cancels/replaces of their own resting orders.
The live line, once a second: sent = commands answered, rate/s = in the last second, accepted / rejected =
  the exchange's answers to them, trades = matches, p50/p99 = latency of one batch (1s = last second, all = so far).
"""


def conclusion(url: str) -> str:
    """What the numbers meant and where to go next."""
    return f"""\
What you saw: throughput is commands answered per second of the measured window; "rejected, by reason" and
  "cancelled, by reason" say why each refusal or early end happened (the server's own counters);
  "reconciled" means the harness's counts equal the server's counter deltas exactly. The books above are
  what the traders left resting on {url} (now stopped).
Next (README.md, "Commands"):
  make turbo-server                                      # the same server, left running on 127.0.0.1:8080
  make dex-trader ARGS="--workers 8 --batch 1000 --duration 30s"   # the harness against it
  .venv/bin/dex-trader --transport grpc --batch 1000 --duration 10s   # another transport (dex-grpc running)
  make bench                                             # every transport compared on one workload
"""


def over_http(seconds: float, traders: int, seed: int) -> int:
    warmup = min(1.0, seconds / 5)
    with tempfile.TemporaryDirectory(prefix="dex-demo-") as workdir:
        keys = f"{workdir}/keys"
        server = LocalServer(workdir, ("--auth", "keys", "--keys", keys))
        try:
            server.start()
        except ServerStartError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 2
        try:
            print(introduction(server.url, server.pid, str(server.journal_path), seconds, warmup, traders, keys))
            code = cli.main(
                [
                    "--transport", "http", "--server", server.url, "--workers", str(traders), "--batch", "100",
                    "--duration", f"{seconds - warmup:g}s", "--warmup", f"{warmup:g}s", "--seed", str(seed),
                    "--keys", keys,
                ]
            )  # fmt: skip
            if code == 0:
                print("\ntop of the books:")
                for instrument, depth in asyncio.run(_books(server.url, 3)):
                    print_book(instrument, depth)
                print(f"\nan order sent without a key, as 'mallory': {asyncio.run(_unsigned_order(server.url))}")
        finally:
            exit_code = server.stop()
            print(f"\nturbo-dex pid {server.pid} stopped (exit code {exit_code})\n")
    if code == 0:
        print(conclusion(server.url))
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine-only", action="store_true", help="drive the in-process engine, no server")
    parser.add_argument("--seconds", type=float, default=None, help="how long to trade (default: 10 over HTTP, 3 engine-only)")
    parser.add_argument("--traders", type=int, default=None, help="traders (default: 4 over HTTP, 8 engine-only)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.engine_only:
        return engine_only(args.seconds or 3.0, args.traders or 8, args.seed)
    return over_http(args.seconds or 10.0, args.traders or 4, args.seed)


if __name__ == "__main__":
    raise SystemExit(main())
