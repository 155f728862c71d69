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

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.e2e import Benchmark, main
from transports.amqp.broker import LocalRabbitMQ
from transports.amqp.local import LocalAmqpServer
from transports.amqp.settings import URL_ENV

__all__ = ["BENCHMARK", "run"]

TARGET_BATCH_PER_S = 50_000
TARGET_SINGLE_P99_US = 5_000


@contextlib.contextmanager
def rabbitmq_broker() -> Iterator[LocalRabbitMQ]:
    """One RabbitMQ node for every run, named to ``dex-amqp`` and the harness by ``$DEX_AMQP_URL``; stopped by PID."""
    with LocalRabbitMQ() as broker:
        previous = os.environ.get(URL_ENV)
        os.environ[URL_ENV] = broker.url  # LocalAmqpServer and the harness's AMQP client read it
        try:
            yield broker
        finally:
            if previous is None:
                os.environ.pop(URL_ENV, None)
            else:
                os.environ[URL_ENV] = previous


BENCHMARK = Benchmark(
    name="amqp",
    transport="amqp",
    server=LocalAmqpServer,  # on the broker named by $DEX_AMQP_URL, which rabbitmq_broker() sets
    target_batch_per_s=TARGET_BATCH_PER_S,
    target_single_p99_us=TARGET_SINGLE_P99_US,
    default_out=Path("reports/bench-amqp.json"),
    notes=(
        "One RabbitMQ 3.10 node (Debian package) on this machine, started once for the whole benchmark.",
        "Each harness trader has its own AMQP connection; a batch is one persistent message with a publisher confirm,"
        " answered on the trader's reply queue.",
    ),
    broker=rabbitmq_broker,
)


def run(argv: Sequence[str] | None = None) -> int:
    with rabbitmq_broker():
        return main(BENCHMARK, argv, __doc__.split("\n\n")[0] if __doc__ else None)


if __name__ == "__main__":
    raise SystemExit(run())
