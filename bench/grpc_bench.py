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

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.e2e import Benchmark, main
from transports.core.local_server import LocalServerProcess, ServerStartError

__all__ = ["BENCHMARK", "LocalGrpcServer", "ServerStartError", "run"]

TARGET_BATCH_PER_S = 150_000
TARGET_SINGLE_P99_US = 800
_LISTENING = re.compile(r"dex-grpc listening on (grpc://\S+)")


class LocalGrpcServer(LocalServerProcess):
    """One ``dex-grpc`` subprocess on 127.0.0.1 and a port it picks, journaling into ``workdir``; stopped by PID.

    Ready once its start-up line names the URL: it prints the line after the
    port listens and the gateway has recovered the journal.
    """

    name = "dex-grpc"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "transports.grpc.server", "--host", self.host, "--port", "0"]
        return [*command, "--journal", str(self.journal_path), "--log-level", "warning", *self.extra_args]

    def ready(self, output: str) -> bool:
        match = _LISTENING.search(output)
        if match:
            self.url = match.group(1)
        return match is not None


BENCHMARK = Benchmark(
    name="grpc",
    transport="grpc",
    server=LocalGrpcServer,
    target_batch_per_s=TARGET_BATCH_PER_S,
    target_single_p99_us=TARGET_SINGLE_P99_US,
    default_out=Path("reports/bench-grpc.json"),
    notes=("Each harness trader has its own channel (one TCP connection) and submits over one long-lived Trade stream.",),
)


def run(argv: Sequence[str] | None = None) -> int:
    return main(BENCHMARK, argv, __doc__.split("\n\n")[0] if __doc__ else None)


if __name__ == "__main__":
    raise SystemExit(run())
