"""kill -9 of a real gateway process that snapshots every few batches: every restart rebuilds a state the command stream went through.

A child process trades one seeded stream (batches of ``PER_BATCH``) through a
journaled gateway that snapshots and truncates every ``EVERY`` commands, and
prints each batch's number once the gateway answered it (durable: fsync per
batch). The test SIGKILLs it (by PID) a few batches in, at varying points of
the snapshot cycle, restarts a gateway on the same files, and checks that the
recovered ``state_hash()`` is the reference engine's after some whole batch
``j`` with ``j`` at least the last answered one: nothing acknowledged is
lost, nothing half-applied. The next child continues the stream from ``j``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine import AddInstrument, Engine, Instrument
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import snapshot_path
from transports.core.workload import OrderFlow

INSTRUMENT = Instrument.create("BTC-USD", "0.01", "0.001")
PER_BATCH = 100
EVERY = 250  # commands between snapshots: one every 2-3 batches, so kills land inside or near one
SEED = 5

CHILD = f"""
import asyncio, sys
from engine import Instrument
from transports.core.workload import OrderFlow
from transports.core.gateway import Gateway, GatewayConfig

async def main() -> None:
    instrument = Instrument.create("BTC-USD", "0.01", "0.001")
    gateway = Gateway(config=GatewayConfig(journal=sys.argv[1], snapshot_every={EVERY}, snapshot_interval_s=0))
    await gateway.start([instrument])
    flow = OrderFlow({SEED}, "killed", [instrument])
    done = int(sys.argv[2])
    for _ in range(done):
        flow.batch({PER_BATCH})
    while True:
        await gateway.submit(flow.batch({PER_BATCH}))
        done += 1
        print(done, flush=True)

asyncio.run(main())
"""


def _run_until_killed(journal: Path, start: int, batches: int) -> int:
    """Start the child at batch ``start``; SIGKILL it once ``batches`` more were answered; the last answered batch."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(journal), str(start)], stdout=subprocess.PIPE, text=True, cwd=root)
    answered = start
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            answered = int(line)
            if answered >= start + batches:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return answered


async def _recovered_hash(journal: Path) -> str:
    gateway = Gateway(config=GatewayConfig(journal=str(journal), snapshot_every=0, snapshot_interval_s=0))
    await gateway.start()
    state = gateway.engine.state_hash()
    assert gateway.journal is not None
    gateway.journal.close()  # leave the files as the kill left them (no checkpoint)
    gateway._running = False
    for task in gateway._tasks:
        task.cancel()
    return state


def test_kill_9_during_snapshots_recovers_a_state_the_stream_went_through(tmp_path: Path) -> None:
    journal = tmp_path / "dex.journal"
    reference = Engine()
    reference.handle(AddInstrument(INSTRUMENT))
    flow = OrderFlow(SEED, "killed", [INSTRUMENT])
    applied = 0  # batches in the reference
    for cycle, batches in enumerate((4, 7, 3, 9, 5, 6)):
        answered = _run_until_killed(journal, applied, batches)
        recovered = asyncio.run(_recovered_hash(journal))
        while applied < answered:  # everything answered must be there
            reference.handle_all(flow.batch(PER_BATCH))
            applied += 1
        for _ in range(3):  # at most a few more batches were written but not yet answered
            if reference.state_hash() == recovered:
                break
            reference.handle_all(flow.batch(PER_BATCH))
            applied += 1
        assert reference.state_hash() == recovered, f"cycle {cycle}: the recovered state is no state the stream went through"
    assert snapshot_path(journal).exists()
    assert journal.stat().st_size < 60 * PER_BATCH * 40  # truncated: a few batches at most, never the whole stream
