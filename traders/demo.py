"""``make demo`` (engine only): drive the in-process engine with the seeded
workload for a few seconds and print what happened."""

from __future__ import annotations

import argparse
import time
from collections import Counter

from engine import AddInstrument, Engine, OrderAccepted, OrderRejected, TradeExecuted
from traders.workload import OrderFlow
from transports.instruments import DEFAULT_INSTRUMENTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--traders", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    engine = Engine()
    for instrument in DEFAULT_INSTRUMENTS:
        engine.handle(AddInstrument(instrument))
    flows = [OrderFlow(args.seed, f"trader-{i}", DEFAULT_INSTRUMENTS) for i in range(args.traders)]
    counts: Counter[str] = Counter()
    rejects: Counter[str] = Counter()
    commands = 0
    busy = 0.0
    deadline = time.monotonic() + args.seconds
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
        print(f"{instrument.symbol}  last {instrument.format_price(depth.last_price) if depth.last_price else '-'}")
        for ask in reversed(depth.asks):
            print(f"    ask {instrument.format_price(ask.price):>12} x {instrument.format_qty(ask.qty):>12}  ({ask.order_count} order(s))")
        for bid in depth.bids:
            print(f"    bid {instrument.format_price(bid.price):>12} x {instrument.format_qty(bid.qty):>12}  ({bid.order_count} order(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
