"""What the ``live`` workload costs on the measured path, per command: ``python -m traders.harness.live_cost``.

Four traders' planned batches (``Planned``) go through an in-process engine
one batch at a time, as a closed loop would send them; only the work the
harness does between having a batch and sending it (naming the slots,
encoding them) and after its reply (``settle``) is timed. For comparison it
also times writing and encoding whole batches (``Prepared.of``), which is what
generating at send time would cost. The engine's and the codec's server side
are not timed. Figures are medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

from engine import AddInstrument, Engine
from traders.harness.runner import Planned, Prepared
from transports.codec.lean import decode_orders, decode_outcomes, encode_outcomes, parse_orders
from transports.core.workload import OrderFlow
from transports.instruments import DEFAULT_INSTRUMENTS


def send_path_us(batch: int, commands: int) -> tuple[float, float]:
    """(µs per command on the send path, share of commands rejected as UNKNOWN_ORDER)."""
    engine = Engine()
    for instrument in DEFAULT_INSTRUMENTS:
        engine.handle(AddInstrument(instrument))
    flows = [OrderFlow(42, f"trader-cost-0-{i}", DEFAULT_INSTRUMENTS, f"trader-0-{i}") for i in range(4)]
    rounds = max(1, commands // (4 * batch))
    plans = [[Planned.of(flow, batch) for _ in range(rounds)] for flow in flows]
    spent = 0.0
    sent = unknown = 0
    for k in range(rounds):
        for flow, planned in zip(flows, plans, strict=True):
            started = time.perf_counter()
            prepared, targets = planned[k].resolve(flow)
            spent += time.perf_counter() - started
            orders = decode_orders(parse_orders(prepared.data), flow.trader, 1_000_000)
            outcomes = decode_outcomes(encode_outcomes(orders, [engine.handle(c) for c in orders]))
            started = time.perf_counter()
            planned[k].settle(flow, targets, outcomes)
            spent += time.perf_counter() - started
            sent += prepared.count
            unknown += outcomes.rejected_by_reason().get("UNKNOWN_ORDER", 0)
    return spent / sent * 1e6, unknown / sent


def whole_batch_us(batch: int, commands: int) -> float:
    """µs per command to write and encode whole batches (generation at send time)."""
    flow = OrderFlow(42, "trader-cost-0-0", DEFAULT_INSTRUMENTS)
    rounds = max(1, commands // batch)
    started = time.perf_counter()
    for _ in range(rounds):
        Prepared.of(flow.batch(batch))
    return (time.perf_counter() - started) / (rounds * batch) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,100,1000", help="batch sizes (default: 1,100,1000)")
    parser.add_argument("--commands", type=int, default=200_000, help="commands per measurement (default: 200,000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    for size in (int(b) for b in args.batches.split(",")):
        runs = [send_path_us(size, args.commands) for _ in range(args.repeats)]
        whole = statistics.median(whole_batch_us(size, args.commands // 4) for _ in range(args.repeats))
        cost = statistics.median(r[0] for r in runs)
        share = statistics.median(r[1] for r in runs)
        print(
            f"batch {size:>5}: live workload {cost:.2f} µs/command on the send path, UNKNOWN_ORDER {share:.2%}; "
            f"writing whole batches at send time would cost {whole:.2f} µs/command"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
