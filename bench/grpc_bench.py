"""End-to-end gRPC benchmark: a real ``dex-grpc`` and the ``dex-trader`` harness on this machine.

Run ``python -m bench.grpc_bench --out reports/bench-grpc.json`` (that is
``make bench-grpc``); ``--quick`` is a smoke test of a few seconds.

Two modes, each repeated ``--repeat`` times (interleaved, so that noise on this
shared machine hits both alike), each run on a freshly started server
(``python -m transports.grpc.server``, journal in a temporary directory,
default fsync policy: every reply waits for its group's fsync) driven by
``dex-trader --transport grpc`` in its own process(es):

* ``batch``: batches of ``--batch`` commands over each trader's ``Trade``
  stream, closed loop → commands/s matched end to end.
* ``single``: one command per submit, open loop at ``--rate`` commands/s with
  intended start times (latency corrected for coordinated omission) →
  p50/p99 latency.

Each run's full harness JSON is kept in the report, with the medians and the
targets (batch >= 150,000 commands/s; single p99 <= 800 µs at 1,000/s). Server
and client share this machine's cores: the figures are what this machine
does, nothing is extrapolated. The server is stopped by its PID after each run.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.e2e import benchmark_of, main
from transports.grpc.local import LocalGrpcServer, ServerStartError

__all__ = ["BENCHMARK", "LocalGrpcServer", "ServerStartError", "run"]

BENCHMARK = benchmark_of("grpc")  # server, targets and notes: transports/grpc/descriptor.py
TARGET_BATCH_PER_S = BENCHMARK.target_batch_per_s
TARGET_SINGLE_P99_US = BENCHMARK.target_single_p99_us


def run(argv: Sequence[str] | None = None) -> int:
    return main(BENCHMARK, argv, __doc__.split("\n\n")[0] if __doc__ else None)


if __name__ == "__main__":
    raise SystemExit(run())
