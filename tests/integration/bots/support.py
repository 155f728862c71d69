"""What the bot integration and fault tests share: a real exchange process, worker processes, the exchange's ledger.

The ledger is read from the exchange's own journal (every command it
accepted for processing, in order) and replayed through a fresh engine: it is
what the exchange did, not what the bots believe they did.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine import Engine, OrderAccepted, OrderRejected, RejectReason
from traders.bots.model import BotConfig
from traders.bots.store import BotStore
from transports.core.journal import journal_commands, read_records
from transports.core.local_server import terminate
from transports.zmq.local import LocalZmqServer

ROOT = Path(__file__).resolve().parents[3]


def exchange(workdir: Path) -> LocalZmqServer:
    return LocalZmqServer(workdir, ("--log-level", "warning", "--fsync", "interval")).start()


@dataclass
class Ledger:
    accepted: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))  # (trader, coid) -> order ids
    duplicates: int = 0

    @property
    def orders(self) -> int:
        return sum(len(v) for v in self.accepted.values())

    def doubled(self) -> dict[str, list[int]]:
        """Client order ids with more than one accepted order, across all traders (must be empty)."""
        by_coid: dict[str, list[int]] = defaultdict(list)
        for (_, coid), ids in self.accepted.items():
            by_coid[coid].extend(ids)
        return {coid: ids for coid, ids in by_coid.items() if len(ids) > 1}


def ledger(journal: Path) -> Ledger:
    out = Ledger()
    if not journal.exists():
        return out
    engine = Engine()
    for command in journal_commands(read_records(journal).records):
        for event in engine.handle(command):
            if isinstance(event, OrderAccepted) and event.trader.startswith("bots"):
                out.accepted[(event.trader, event.client_order_id)].append(event.order_id)
            elif isinstance(event, OrderRejected) and event.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID:
                out.duplicates += 1
    return out


def eager_momentum_bots(count: int, pairs: Iterable[str]) -> list[BotConfig]:
    """Momentum bots that buy every rise of 1 bp, with no cooldown and generous limits."""
    pairs = list(pairs)
    return [
        BotConfig(
            f"m{n:04d}",
            pairs[n % len(pairs)],
            "momentum",
            Decimal("0.01") if pairs[n % len(pairs)] == "BTC-USD" else Decimal("0.1"),
            Decimal(1000),
            Decimal(100_000_000),
            10_000,
            10_000,
            0,
            100_000,
            {"lookback": "1", "threshold_bps": "1"},
        )
        for n in range(count)
    ]


def make_db(path: Path, bots: list[BotConfig], partitions: int) -> Path:
    store = BotStore(path, partitions)
    store.add(bots)
    store.close()
    return path


def start_worker(
    workdir: Path, index: int, workers: int, db: Path, amqp_url: str, server_url: str, prefix: str, *extra: str
) -> subprocess.Popen[bytes]:
    log = (workdir / f"worker{index}.log").open("ab")
    command = [
        sys.executable, "-m", "traders.bots.cli", "worker", "--db", str(db), "--worker", str(index), "--workers", str(workers),
        "--amqp-url", amqp_url, "--exchange", f"{prefix}price_updates", "--queue-prefix", prefix,
        "--transport", "zmq", "--server", server_url, "--stats-out", str(workdir / f"worker{index}.json"),
        "--max-age-ms", "30000",  # the machine is shared: a slow second must not turn into "stale price" and no order
        *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def start_feed(workdir: Path, amqp_url: str, prefix: str, *args: str) -> subprocess.Popen[bytes]:
    log = (workdir / "feed.log").open("ab")
    command = [sys.executable, "-m", "pricefeed.cli", "--amqp-url", amqp_url, "--exchange", f"{prefix}price_updates", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int | None:
    return terminate(process, timeout)


def worker_stats(workdir: Path, index: int) -> dict[str, Any]:
    path = workdir / f"worker{index}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.2, *, detail: Callable[[], str] | None = None
) -> None:
    """Wait for ``condition``; on timeout fail naming ``what`` and, if given, what ``detail`` shows (a log tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    shown = f":\n{detail()}" if detail is not None else ""
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{shown}")


def log_of(workdir: Path, name: str) -> str:
    try:
        return (workdir / name).read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def ready(workdir: Path, index: int) -> bool:
    """Whether worker ``index`` has declared every queue and subscribed to its own partitions."""
    try:
        return " ready:" in (workdir / f"worker{index}.log").read_text(errors="replace")
    except OSError:
        return False


def rising_prices(path: Path, pairs: Iterable[str], steps: int) -> Path:
    """A replay file where every pair rises 2 bp per step (each update triggers every eager momentum bot)."""
    start = {"BTC-USD": Decimal("30000.00"), "ETH-USD": Decimal("2000.00"), "SOL-USD": Decimal("150.000")}
    lines = ["pair,price,bid,ask"]
    for step in range(steps):
        for pair in pairs:
            price = (start[pair] * (1 + Decimal(2 * step) / 10_000)).quantize(Decimal("0.01"))
            lines.append(f"{pair},{price},{price - Decimal('0.01')},{price + Decimal('0.01')}")
    path.write_text("\n".join(lines) + "\n")
    return path
