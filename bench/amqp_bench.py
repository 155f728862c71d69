"""End-to-end AMQP benchmark: a real RabbitMQ, a real ``dex-amqp`` and the ``dex-trader`` harness on this machine.

Run ``python -m bench.amqp_bench --out reports/bench-amqp.json`` (that is
``make bench-amqp``); ``--quick`` is a smoke test of a few seconds.

The benchmark starts ONE RabbitMQ node of its own (``LocalRabbitMQ``: free
ports, a temporary directory, stopped by PID at the end; ~7 s), then runs the
shared harness driver (``bench/e2e.py``): two modes, each repeated
``--repeat`` times, each run on a freshly started ``dex-amqp`` (its own queue
and exchange names on that broker, journal in a temporary directory, default
fsync policy) driven by ``dex-trader --transport amqp`` in its own process:

* ``batch``: batches of ``--batch`` commands, each one persistent message
  published with a publisher confirm, closed loop → commands/s end to end.
* ``single``: one command per submit, open loop at ``--rate`` commands/s →
  p50/p99 latency (coordinated omission corrected).

Targets: batch >= 50,000 commands/s; single p99 <= 5 ms at 1,000/s (a
broker hop, a confirm and a journal fsync per request). Broker, server and
harness share this machine's cores: the figures are what this machine does.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.e2e import benchmark_of, main

__all__ = ["BENCHMARK", "run"]

BENCHMARK = benchmark_of("amqp")  # server, broker, targets and notes: transports/amqp/descriptor.py
TARGET_BATCH_PER_S = BENCHMARK.target_batch_per_s
TARGET_SINGLE_P99_US = BENCHMARK.target_single_p99_us


def run(argv: Sequence[str] | None = None) -> int:
    assert BENCHMARK.broker is not None
    with BENCHMARK.broker():  # one RabbitMQ node for every run, named in $DEX_AMQP_URL
        return main(BENCHMARK, argv, __doc__.split("\n\n")[0] if __doc__ else None)


if __name__ == "__main__":
    raise SystemExit(run())
