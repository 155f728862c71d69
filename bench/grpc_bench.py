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

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from bench.e2e import ROOT, Benchmark, main

TARGET_BATCH_PER_S = 150_000
TARGET_SINGLE_P99_US = 800
_LISTENING = re.compile(r"dex-grpc listening on (grpc://\S+)")


class ServerStartError(RuntimeError):
    """dex-grpc exited, or did not say it listens in time."""


class LocalGrpcServer:
    """One ``dex-grpc`` subprocess on 127.0.0.1 and a port it picks, journaling into ``workdir``; stopped by PID.

    Ready once its start-up line names the URL: it prints the line after the
    port listens and the gateway has recovered the journal.
    """

    def __init__(self, workdir: str | Path, extra_args: tuple[str, ...] = (), host: str = "127.0.0.1") -> None:
        self.workdir = Path(workdir)
        self.extra_args = extra_args
        self.host = host
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "dex-grpc.log"
        self.journal_path = self.workdir / "journal.log"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def start(self, timeout: float = 30.0) -> LocalGrpcServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "transports.grpc.server", "--host", self.host, "--port", "0"]
        command += ["--journal", str(self.journal_path), "--log-level", "warning", *self.extra_args]
        with self.log_path.open("ab") as log:
            start = log.tell()  # a restart in the same directory appends to the log: read only this start's lines
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            match = _LISTENING.search(self._log_since(start))
            if match:
                self.url = match.group(1)
                return self
            if self.process.poll() is not None:
                raise ServerStartError(f"dex-grpc exited with code {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"dex-grpc did not start within {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code (None if it was never started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(5.0)
        return process.returncode

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> LocalGrpcServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


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
