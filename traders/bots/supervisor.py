"""``dex-bots run``: start ``--workers`` worker processes, keep them running, and speak for them.

The workers run quiet; each writes its counters as JSON once a second into a
folder of the supervisor's (one file per process started, so a restarted
worker's earlier counters stay in the totals). The supervisor reads them and
prints ONE status line a second for the whole run, a line when the
partitions change hands, and a summary when it stops. The folder is removed
at exit unless ``--stats-out`` named where the files go.

Restarts: a worker that exits (killed, or its RabbitMQ connection lost when
the broker restarts) is reported and started again after a growing back-off;
meanwhile the broker hands its partitions to the live workers (single active
consumer), and the restarted worker joins as a standby. Nothing is lost
across the gap: updates wait in the durable partition queues, and an update a
dead worker had taken but not acknowledged is redelivered (its orders' client
ids make a second placement a refused duplicate).

A first start that cannot work is not retried: when a worker exits with 2
(it cannot reach the exchange or the broker) before any worker has ever
reported, the supervisor stops the others and exits with 2 and a hint, instead
of restarting them forever.

Stopping (SIGINT/SIGTERM, e.g. Ctrl-C): from then on nothing is restarted;
every worker is asked to stop (SIGTERM, SIGKILL after ``STOP_TIMEOUT_S``) and
the summary is printed once all are gone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traders.bots.status import BotActivity, Totals, ownership_line, status_line, summary_lines, totals
from traders.bots.store import BotStore
from transports.amqp.settings import redact
from transports.core.local_server import terminate

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # a worker that keeps dying is restarted ever more slowly
STEADY_S = 30.0  # a worker that lived this long restarts from the first step again
STOP_TIMEOUT_S = 15.0
POLL_S = 0.2
START_FAILED = 2  # a worker's exit code when it cannot reach the exchange or the broker at start
START_HINT = (
    "dex-bots: the workers cannot start (the reason is above); not retrying. The default setup is "
    "`make rabbitmq-start && make amqp-server` (RabbitMQ for the prices, dex-amqp on it for the orders); "
    "elsewhere, point --amqp-url / --transport / --server at yours"
)


@dataclass
class Slot:
    """Worker ``index``: its current process and its restart bookkeeping."""

    index: int
    process: subprocess.Popen[bytes]
    started: float
    failures: int = 0
    restart_at: float | None = None


def _ignore_sigint() -> None:
    """In a worker, until it installs its own handler: a Ctrl-C while it is still importing would end it with a
    KeyboardInterrupt traceback. The supervisor stops it with SIGTERM anyway; once running, it handles SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The options after ``run`` that the workers get too, less those the supervisor sets itself."""
    rest = list(argv[list(argv).index("run") + 1 :])
    out: list[str] = []
    skip = False
    for arg in rest:
        if skip:
            skip = False
        elif arg == "--stats-out":
            skip = True
        elif not arg.startswith("--stats-out=") and arg != "--quiet":
            out.append(arg)
    return out


class Supervisor:
    def __init__(self, args: argparse.Namespace, argv: Sequence[str]) -> None:
        self.args = args
        self.passthrough = worker_argv(argv)
        self.stats_dir = Path(tempfile.mkdtemp(prefix="dex-bots-run-")) if not args.stats_out else None
        self.paths: list[Path] = []  # every process's stats file, in start order (with --stats-out: one per worker)
        self.current: dict[int, Path] = {}
        self.slots: list[Slot] = []
        self.stopping = False
        self.restarts = 0
        self.partitions = 0
        self.failed_start = False

    def stats_path(self, index: int) -> Path:
        if self.stats_dir is not None:
            return self.stats_dir / f"w{index}.{len(self.paths)}.json"
        pattern = str(self.args.stats_out)
        if "{worker}" in pattern:
            return Path(pattern.replace("{worker}", str(index)))
        path = Path(pattern)
        return path.with_name(f"{path.stem}.w{index}{path.suffix}")

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        path = self.stats_path(index)
        path.unlink(missing_ok=True)  # a file left by an earlier run is not this run's (and would hide a failed start)
        if path not in self.paths:
            self.paths.append(path)
        self.current[index] = path
        out = [a.replace("{worker}", str(index)) for a in self.passthrough]
        command = [sys.executable, "-m", "traders.bots.cli", "worker", "--worker", str(index), *out, "--quiet", "--stats-out", str(path)]
        child = subprocess.Popen(command, preexec_fn=_ignore_sigint)  # noqa: PLW1509 (no threads here)
        print(f"dex-bots: worker {index} pid {child.pid}", flush=True)
        return child

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.partitions, bots, before = _bots_at_start(self.args.db)
        a = self.args
        print(
            f"dex-bots run: {bots} bots in {self.partitions} partitions on {a.workers} workers; prices from {redact(a.amqp_url)} "
            f"exchange {a.exchange}; orders over {a.transport} to {redact(a.server) if a.server else 'its default'}; "
            "Ctrl-C stops and prints a summary",
            flush=True,
        )
        began = time.monotonic()
        self.slots = [Slot(i, self.spawn(i), began) for i in range(self.args.workers)]
        reporter = Reporter(self)
        try:
            while not self.stopping:
                self._supervise(time.monotonic())
                reporter.tick(time.monotonic())
                time.sleep(POLL_S)
            self._stop_all()
            if self.failed_start:
                print(START_HINT, file=sys.stderr, flush=True)
                return 2
            for line in reporter.summary(time.monotonic() - began, before):
                print(line, flush=True)
        finally:
            if self.stats_dir is not None:
                shutil.rmtree(self.stats_dir, ignore_errors=True)
        return 0

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True  # the loop ends; nothing is restarted from here on

    def _stop_all(self) -> None:
        live = [s.process for s in self.slots if s.process.poll() is None]
        print("dex-bots: stopping the workers", flush=True)
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in live:
            terminate(process, max(0.1, deadline - time.monotonic()))

    def _supervise(self, now: float) -> None:
        for slot in self.slots:
            if slot.process.poll() is None:
                continue
            if slot.process.returncode == START_FAILED and not any(path.exists() for path in self.paths):
                self.failed_start = self.stopping = True  # nothing ever ran: retrying would only repeat the error
                return
            if slot.restart_at is None:
                slot.failures = 0 if now - slot.started >= STEADY_S else slot.failures + 1
                delay = RESTART_BACKOFF_S[min(slot.failures, len(RESTART_BACKOFF_S) - 1)]
                slot.restart_at = now + delay
                print(
                    f"dex-bots: worker {slot.index} (pid {slot.process.pid}) exited with {slot.process.returncode}; "
                    f"its partitions move to the others; restarting it in {delay:g} s",
                    flush=True,
                )
            elif now >= slot.restart_at:
                slot.restart_at = None
                slot.process = self.spawn(slot.index)
                slot.started = now
                self.restarts += 1

    def live(self) -> list[Slot]:
        return [s for s in self.slots if s.process.poll() is None]


class Reporter:
    """The status line every second, the ownership line on change, the summary at the end."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor
        self.next_at = time.monotonic() + 1.0
        self.last_orders = 0
        self.last_at = time.monotonic()
        self.seen_tick: dict[Path, int] = {}  # per stats file: the last second whose latency samples were taken
        self.shown_owners: dict[int, list[int]] = {}
        self.previous_owners: dict[int, list[int]] = {}

    def tick(self, now: float) -> None:
        if now < self.next_at:
            return
        self.next_at = now + 1.0
        sup = self.sup
        stats = {path: _read(path) for path in sup.paths}
        if not any(stats.values()):
            return  # no worker has reported yet (still connecting): a line of zeros would say nothing
        total = totals(stats.values())
        total.queue_depth = sum(int(stats[sup.current[s.index]].get("queue_depth", 0)) for s in sup.live())
        owners = {s.index: list(stats[sup.current[s.index]].get("partitions", [])) for s in sup.live()}
        if all(stats[sup.current[s.index]] for s in sup.live()):  # a worker still starting would show as owning nothing
            self._show_owners(owners)
        if sup.args.quiet:
            return
        orders = total.counts["orders"]
        rate = (orders - self.last_orders) / max(now - self.last_at, 1e-9)
        self.last_orders, self.last_at = orders, now
        owned = len({p for ps in owners.values() for p in ps})
        window = self._new_samples(stats)
        print(status_line(total, len(owners), len(sup.slots), owned, sup.partitions, rate, window), flush=True)

    def _show_owners(self, owners: dict[int, list[int]]) -> None:
        """Print the ownership once it has settled (unchanged for a second) and differs from what was shown."""
        settled = owners == self.previous_owners
        self.previous_owners = owners
        if settled and owners != self.shown_owners and any(owners.values()):
            self.shown_owners = owners
            print(ownership_line(owners), flush=True)

    def _new_samples(self, stats: dict[Path, dict[str, Any]]) -> list[int]:
        """Latency samples of the seconds not taken yet, from every live worker."""
        out: list[int] = []
        for path, data in stats.items():
            seen = self.seen_tick.get(path, 0)
            for tick, samples in data.get("windows", []):
                if tick > seen:
                    out.extend(samples)
            self.seen_tick[path] = max(seen, int(data.get("tick", 0)))
        return out

    def summary(self, seconds: float, before: dict[str, int]) -> list[str]:
        stats = [_read(path) for path in self.sup.paths]
        total: Totals = totals(stats)
        latencies = [v for s in stats for v in s.get("latencies_us", [])]
        return summary_lines(total, seconds, len(self.sup.slots), self.sup.restarts, latencies, _activity(self.sup.args.db, before))


def _bots_at_start(db: str) -> tuple[int, int, dict[str, int]]:
    """Partitions, enabled bots, and each bot's orders so far (the summary counts this run's)."""
    store = BotStore(db)
    try:
        bots = store.bots()
        return store.partitions, len(bots), {bot_id: p.orders for bot_id, p in store.positions(b.bot_id for b in bots).items()}
    finally:
        store.close()


def _activity(db: str, before: dict[str, int]) -> BotActivity | None:
    try:
        store = BotStore(db)
    except Exception:  # the summary is printed even when the database went away
        return None
    try:
        bots = store.bots()
        after = store.positions(b.bot_id for b in bots)
    finally:
        store.close()
    traded = {bot_id: p.orders - before.get(bot_id, 0) for bot_id, p in after.items() if p.orders > before.get(bot_id, 0)}
    return BotActivity(len(bots), traded, {b.bot_id: b.strategy for b in bots})


def run_workers(args: argparse.Namespace, argv: Sequence[str]) -> int:
    return Supervisor(args, argv).run()
