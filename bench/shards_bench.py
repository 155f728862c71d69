"""Shards and fronts on this machine (``make bench-shards``; docs/shards.md).

Run ``python -m bench.shards_bench --out reports/bench-shards.json``.

What is measured, for each configuration (shards, fronts) in ``CONFIGS``,
``--runs`` times (the report quotes medians):

* **Throughput.** ``turbo-dex --transports zmq`` (shards 0: the single
  process, no ``--shards``; otherwise ``--shards N --fronts F``) listing the
  16 catalogue symbols, driven by two ``dex-trader`` processes (``--workers``
  traders each, lean batches of ``--batch``, closed loop), one per front when
  there are two fronts, both at the one front otherwise: the same harness in
  every configuration. Commands per second is the sum of both harnesses'
  measured figures.
* **CPU per process.** utime + stime from ``/proc`` of every process of the
  exchange (the single process; or each shard and each front) from just
  before the harnesses start to just after they end, and the commands the
  exchange applied in that window (from the harnesses' totals, warm-up
  included). Orders per CPU-second of the shards and CPU microseconds per
  command of the fronts stay comparable when the 2 cores are shared, which
  throughput does not.
* **Failover.** With a journal (``fsync=batch``), ``--kills`` times: a shard
  is killed with SIGKILL while a trader sends to it, and the time from the
  kill to the first order on its symbol accepted again is recorded (turbo-dex
  restarts it; it recovers from its journal). Acknowledged orders before each
  kill must still be there after (counted, never assumed).

The scaling model (``model`` in the output) is fitted to the CPU figures:
each command costs ``shard_us`` on a shard and ``front_us`` on a front, and
``harness_us`` in the load generator; N shards and F fronts on M machines of
C cores each run at most ``min(N / shard_us, F / front_us, M*C / (shard_us +
front_us))`` commands per second (each process one core at most, every core
busy at best; the load generators run elsewhere). It predicts; the many-core
machine measures (when one is lent: the developers' guide says when).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.engine_bench import machine
from engine import ExchangeError, OrderAccepted, PlaceOrder, Side
from transports.instruments import CATALOGUE
from transports.registry import make_client
from transports.sharding.shard_map import ShardMap

CONFIGS: tuple[tuple[int, int], ...] = ((0, 1), (1, 1), (2, 1), (4, 1), (1, 2), (2, 2), (4, 2))
SYMBOLS = ",".join(i.symbol for i in CATALOGUE)
BIN = Path(sys.executable).parent
TICK_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) ``pid`` has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK_S


def children(pid: int) -> list[tuple[int, str]]:
    """``pid``'s children as (pid, role): "shard" or "front"."""
    out: list[tuple[int, str]] = []
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in listed:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        out.append((int(child), "shard" if b"transports.sharding.shard" in cmdline else "front"))
    return out


class Exchange:
    """One turbo-dex (with its shards and fronts), stopped by PID."""

    def __init__(self, workdir: Path, shards: int, fronts: int, port: int, journal: bool) -> None:
        cmd = [str(BIN / "turbo-dex"), "--transports", "zmq", "--zmq-port", str(port), "--zmq-pub-port", str(port + 1)]
        cmd += ["--symbols", SYMBOLS, "--state-dir", str(workdir), "--log-level", "warning"]
        cmd += ["--fsync", "batch"] if journal else ["--no-journal"]
        if shards:
            cmd += ["--shards", str(shards), "--fronts", str(fronts)]
        self.out = workdir / "turbo-dex.out"
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.urls = [f"zmq://127.0.0.1:{port + 2 * k}" for k in range(fronts)]
        deadline = time.monotonic() + 120
        while "listening on" not in self.out.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"turbo-dex did not start: {self.out.read_text()[-600:]}")
            time.sleep(0.05)

    def processes(self) -> list[tuple[int, str]]:
        return [(self.proc.pid, "front"), *children(self.proc.pid)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def harness(url: str, args: argparse.Namespace, out: Path, prefix: str) -> subprocess.Popen[bytes]:
    cmd = [str(BIN / "dex-trader"), "--transport", "zmq", "--server", url, "--workers", str(args.workers), "--batch", str(args.batch)]
    cmd += ["--duration", f"{args.duration}s", "--warmup", f"{args.warmup}s", "--quiet", "--json", str(out), "--trader-prefix", prefix]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def measure(shards: int, fronts: int, args: argparse.Namespace, port: int) -> dict[str, Any]:
    """One run of one configuration: throughput, and CPU by process role per command."""
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        work = Path(tmp)
        exchange = Exchange(work, shards, fronts, port, journal=False)
        try:
            roles = exchange.processes()
            before = {pid: cpu_s(pid) for pid, _ in roles}
            urls = [exchange.urls[k % fronts] for k in range(2)]
            runs = [harness(url, args, work / f"h{k}.json", f"h{k}-") for k, url in enumerate(urls)]
            for run in runs:
                _, err = run.communicate(timeout=args.duration + args.warmup + 120)
                if run.returncode != 0:
                    raise RuntimeError(f"dex-trader failed: {err.decode()[-600:]}")
            used = {pid: cpu_s(pid) - before[pid] for pid, _ in roles}
            results = [json.loads((work / f"h{k}.json").read_text()) for k in range(2)]
        finally:
            exchange.stop()
    commands = sum(r["total"]["sent"] for r in results)
    by_role = {role: sum(used[pid] for pid, r in roles if r == role) for role in ("shard", "front")}
    matching = by_role["shard"] if shards else by_role["front"]  # the single process matches and fronts at once
    return {
        "commands_per_s": round(sum(r["throughput_per_s"] for r in results)),
        "commands": commands,
        "errors": sum(r["errors"] for r in results),
        "cpu_s": {role: round(value, 3) for role, value in by_role.items()},
        "cpu_s_per_process": [{"pid_role": role, "cpu_s": round(used[pid], 3)} for pid, role in roles],
        "matching_commands_per_cpu_s": round(commands / matching) if matching else None,
        "front_cpu_us_per_command": round(by_role["front"] / commands * 1e6, 2) if shards and commands else None,
        "harness_cpu_us_per_command": round(sum(r["cost"]["client_cpu_s"] for r in results) / commands * 1e6, 2),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "commands_per_s": median("commands_per_s"),
        "matching_commands_per_cpu_s": median("matching_commands_per_cpu_s"),
        "front_cpu_us_per_command": median("front_cpu_us_per_command"),
        "harness_cpu_us_per_command": median("harness_cpu_us_per_command"),
        "runs": runs,
    }


async def failover(args: argparse.Namespace, port: int) -> dict[str, Any]:
    """Kill a shard ``args.kills`` times under a trader's orders; seconds from each kill to its symbol trading again."""
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        exchange = Exchange(Path(tmp), 2, 1, port, journal=True)
        try:
            return await _kill_loop(exchange, args.kills)
        finally:
            exchange.stop()


async def _kill_loop(exchange: Exchange, kills: int) -> dict[str, Any]:
    shard_map = ShardMap(2)
    symbol = next(i for i in CATALOGUE if shard_map.owner(i.symbol) == 0)
    times: list[float] = []
    acknowledged = 0
    async with make_client("zmq", "failover", exchange.urls[0]) as client:
        for kill in range(kills):
            for k in range(20):  # resting orders acknowledged before the kill: all must survive it
                price = symbol.reference_price - 100 - k
                events = (await client.submit([PlaceOrder("", f"k{kill}-{k}", symbol.symbol, Side.BUY, symbol.min_qty, price)]))[0]
                acknowledged += any(isinstance(e, OrderAccepted) for e in events)
            victim = next(pid for pid, role in exchange.processes() if role == "shard" and b"--index\x000" in _cmdline(pid))
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            times.append(await _until_accepted(client, symbol.symbol, symbol.min_qty, symbol.reference_price - 5000, killed))
        depth = await client.book(symbol.symbol, 1000)
    # The acknowledged orders rest 100 to 119 ticks under the reference; probes (some answered "unknown" as the shard
    # died, then applied by it all the same: its journal decides) rest 5,000 under and are not counted.
    resting = sum(level.order_count for level in depth.bids if level.price > symbol.reference_price - 1000)
    return {
        "kills": kills,
        "seconds": [round(t, 3) for t in times],
        "min_s": round(min(times), 3),
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "acknowledged_resting": acknowledged,
        "resting_after": resting,
        "lost_or_doubled": acknowledged - resting,
    }


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def _until_accepted(client: Any, symbol: str, qty: int, price: int, since: float) -> float:
    """Seconds from ``since`` until a resting order on ``symbol`` is accepted (retried while the shard is down)."""
    deadline = since + 60
    attempt = 0
    last: BaseException | None = None
    while time.monotonic() < deadline:
        attempt += 1
        try:
            async with asyncio.timeout(2):
                events = (await client.submit([PlaceOrder("", f"probe-{since}-{attempt}", symbol, Side.BUY, qty, price)]))[0]
            if any(isinstance(e, OrderAccepted) for e in events):
                elapsed = time.monotonic() - since
                return elapsed
        except (TimeoutError, ExchangeError) as exc:  # the shard is down: not yet
            last = exc
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{symbol} did not trade again within 60 s of the kill (last: {last!r})")


_ECHO = """
import sys, zmq
sock = zmq.Context().socket(zmq.ROUTER)
sock.bind(sys.argv[1])
print(sock.last_endpoint.decode(), flush=True)
while True:
    frames = sock.recv_multipart()
    if frames[-1] == b"stop":
        break
    sock.send_multipart(frames)
"""


def link_candidates(seconds: float = 2.0, in_flight: int = 8, payload: int = 2_600) -> dict[str, Any]:
    """Round trips per second of the link's own pattern (DEALER to a ROUTER echo in another process, ``in_flight``
    requests outstanding, a ``payload`` of about a 100-order lean batch) over ``ipc://`` and over TCP loopback."""
    import zmq

    out: dict[str, Any] = {"seconds": seconds, "in_flight": in_flight, "payload_bytes": payload}
    with tempfile.TemporaryDirectory(prefix="bench-link-") as tmp:
        for name, endpoint in (("ipc", f"ipc://{tmp}/echo"), ("tcp_loopback", "tcp://127.0.0.1:*")):
            echo = subprocess.Popen([sys.executable, "-c", _ECHO, endpoint], stdout=subprocess.PIPE)
            assert echo.stdout is not None
            endpoint = echo.stdout.readline().decode().strip()  # the bound one (tcp: the port it picked)
            sock: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.DEALER)
            sock.connect(endpoint)
            body = b"x" * payload
            for _ in range(in_flight):
                sock.send_multipart([b"orders", body])
            done = 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                sock.recv_multipart()
                sock.send_multipart([b"orders", body])
                done += 1
            sock.send_multipart([b"stop"])
            echo.wait(10)
            sock.close(linger=0)
            out[name] = round(done / seconds)
    return out


def fit(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-command costs the model uses, from the sharded configurations' medians."""
    sharded = [c for c in configs if c["shards"]]
    shard_us = statistics.median(1e6 / c["matching_commands_per_cpu_s"] for c in sharded if c["matching_commands_per_cpu_s"])
    front_us = statistics.median(c["front_cpu_us_per_command"] for c in sharded if c["front_cpu_us_per_command"])
    return {"shard_us": round(shard_us, 2), "front_us": round(front_us, 2)}


def predict(model: dict[str, Any], shards: int, fronts: int, machines: int, cores: int) -> float:
    shard_us, front_us = float(model["shard_us"]), float(model["front_us"])
    return min(shards / shard_us, fronts / front_us, machines * cores / (shard_us + front_us)) * 1e6


def chart(result: dict[str, Any], path: Path) -> None:
    """The model's prediction for 1 to 64 shards (fronts = shards / 2) on 1, 2 and 4 machines of 16 cores, beside this
    machine's measured points (a different machine: the points are what the model was fitted to, not a check of it)."""
    from bench.chart_style import plt

    model = result["model"]
    shards = list(range(1, 65))
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for machines in (1, 2, 4):
        predicted = [predict(model, n, max(1, n // 2), machines, 16) / 1000 for n in shards]
        axes.plot(shards, predicted, label=f"model: {machines} machine(s) x 16 cores, fronts = shards / 2")
    measured = [c for c in result["configs"] if c["shards"]]
    for fronts, marker in ((1, "o"), (2, "s")):
        points = [(c["shards"], c["commands_per_s"] / 1000) for c in measured if c["fronts"] == fronts]
        axes.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, label=f"measured here (2 cores), {fronts} front(s)")
    single = next(c for c in result["configs"] if not c["shards"])
    axes.axhline(single["commands_per_s"] / 1000, linestyle=":", color="grey", label="measured here: one process, no shards")
    axes.set_xlabel("shards")
    axes.set_ylabel("thousand commands/s")
    axes.set_title(f"Shards: fitted model (shard {model['shard_us']} us, front {model['front_us']} us per command)")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.shards_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/bench-shards.json")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=4, help="traders per harness process (two harness processes)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--port", type=int, default=25555, help="first ZeroMQ port (fronts take it and the next three)")
    parser.add_argument("--configs", default="", metavar="NxF,...", help="only these (shards x fronts; 0x1 = the single process)")
    parser.add_argument("--no-failover", action="store_true", help="skip the kills")
    args = parser.parse_args(argv)
    chosen = [tuple(int(n) for n in c.split("x")) for c in args.configs.split(",") if c] or list(CONFIGS)
    started = time.monotonic()
    configs = []
    for shards, fronts in chosen:
        runs = []
        for run in range(args.runs):
            runs.append(measure(shards, fronts, args, args.port))
            print(f"shards {shards} fronts {fronts} run {run + 1}: {runs[-1]['commands_per_s']:,} commands/s", flush=True)
        configs.append({"shards": shards, "fronts": fronts, **summarise(runs)})
    if args.no_failover or chosen != list(CONFIGS):
        for config in configs:
            print(f"{config['shards']}x{config['fronts']}: {json.dumps({k: v for k, v in config.items() if k != 'runs'})}")
        return 0
    link = link_candidates()
    print(f"link: ipc {link['ipc']:,} round trips/s, tcp loopback {link['tcp_loopback']:,}", flush=True)
    failed_over = asyncio.run(failover(args, args.port))
    print(f"failover: median {failed_over['median_s']} s over {failed_over['kills']} kills", flush=True)
    model = fit(configs)
    one = next(c for c in configs if (c["shards"], c["fronts"]) == (1, 1))
    two = next(c for c in configs if (c["shards"], c["fronts"]) == (2, 1))
    result = {
        "machine": machine(),
        "settings": {k: getattr(args, k) for k in ("runs", "duration", "warmup", "workers", "batch", "kills")},
        "symbols": SYMBOLS.split(","),
        "configs": configs,
        "failover": failed_over,
        "link_candidates": link,
        "model": {
            **model,
            "predicted_commands_per_s": {
                f"{n} shards, {max(1, n // 2)} fronts, {m} machines of 16 cores": round(predict(model, n, max(1, n // 2), m, 16))
                for n in (1, 2, 4, 8, 16, 32, 64)
                for m in (1, 2, 4)
            },
        },
        "targets": {
            "two_shards_per_cpu_s_within_10pct_of_one": round(two["matching_commands_per_cpu_s"] / one["matching_commands_per_cpu_s"], 3),
            "failover_median_s_at_most_5": failed_over["median_s"],
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    chart(result, out.with_name(out.stem + "-model.png"))
    print(f"wrote {out} and {out.stem}-model.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
