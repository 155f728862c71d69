"""What every hostile case shares: the server process, its memory, the steady client, the verdict.

A case is one attack (an async function) against one wire's server, run in
a process of its own (``venue.py``). While it runs:

* the server's peak resident memory is measured from ``/proc/<pid>/status``
  (``VmHWM``, reset to the current size just before the attack through
  ``/proc/<pid>/clear_refs``), and its growth over the resident size before
  the attack must stay under ``RSS_BOUND_MB``;
* a well-behaved client on its own connection, in its own process
  (``steady.py``), keeps sending small orders, and the 99th percentile of
  its round trips over the attack must stay under ``P99_BOUND_MS`` (a
  percentile is the one bound that load from elsewhere on a small machine
  can break alone, so a case over it runs twice more and is judged on the
  median of its three p99s; every other promise holds in every run);
* afterwards the server must still accept a normal order from a new client.

What each case measured is kept (``RESULTS``); with ``$HOSTILE_REPORT`` set
the suite writes them there as JSON (``make bench-hostile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import ExchangeError, OrderAccepted, PlaceOrder, RejectReason, Side, TimeInForce
from transports.core.local_server import LocalServerProcess, terminate
from transports.registry import make_client

RSS_BOUND_MB = 50.0  # growth of the server's peak resident memory over its size before the attack
P99_BOUND_MS = 50.0  # the steady client's 99th percentile round trip during the attack
LATENCY_RUNS = 3  # runs of a case whose first p99 is over the bound; the bound is judged on their median
SETTLE_S = 0.3  # the steady client keeps timing this long after the attack returns
# ... and at least this long since the attack began: with one round trip every ~5 ms, 1% of the window is 4 or more
# round trips, so the p99 is not simply the single slowest round trip of a short window.
MIN_WINDOW_S = 2.0
REPORT_ENV = "HOSTILE_REPORT"
EARLY_S = 0.3  # how long a request's body waits for an answer to its head (send_and_close)

Attack = Callable[["Wire"], Awaitable["RejectReason | None"]]


# ------------------------------------------------------------------ processes
class Venue(LocalServerProcess):
    """``python -m tests.hostile.venue <wire>``: one wire of the registry in a process of its own."""

    def __init__(self, wire: str, workdir: Path) -> None:
        self.name = f"hostile-{wire}"
        super().__init__(workdir)
        self.wire = wire

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tests.hostile.venue", self.wire]

    def ready(self, output: str) -> bool:
        match = re.search(r"hostile venue listening on (\S+)", output)
        if match:
            self.url = match.group(1)
        return match is not None


def status_kb(pid: int, key: str) -> int:
    """A ``VmRSS``/``VmHWM``-style line of ``/proc/<pid>/status``, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak(pid: int) -> None:
    """Reset the process's ``VmHWM`` to its current resident size (Linux: ``clear_refs`` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class Steady:
    """The steady client's process (``steady.py``), driven line by line."""

    def __init__(self, wire: str, url: str, log: Path) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile.steady", wire, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the steady client exited with code {self.process.wait(5)}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the steady client stopped: {answer['error']}")
        return answer

    def warmed_up(self, timeout: float = 20.0) -> None:
        """Wait until it has completed round trips without errors (the wire is up end to end)."""
        deadline = time.monotonic() + timeout
        self.ask("mark")
        while time.monotonic() < deadline:
            time.sleep(0.2)
            report = self.ask("report")
            if report["count"] >= 5 and report["errors"] == 0:
                return
            if report["errors"]:
                self.ask("mark")
        raise RuntimeError(f"the steady client never got going: {report}")

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            terminate(self.process)
        self._log.close()


# ------------------------------------------------------------------ cases
@dataclass
class Outcome:
    wire: str
    case: str
    rss_before_mb: float
    peak_growth_mb: float
    steady: dict[str, Any]
    reason: str | None  # what the wire answered the attack, when it can carry a reason
    attack_s: float
    after_ok: bool = False
    notes: list[str] = field(default_factory=list)


RESULTS: list[Outcome] = []


class Wire:
    """One wire's server process, its steady client, and how to run a case against them."""

    def __init__(self, wire: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.wire = wire
        self.workdir = workdir
        self.env = env or {}
        self.venue = Venue(wire, workdir)
        self.steady: Steady | None = None

    @property
    def url(self) -> str:
        return self.venue.url

    @property
    def pid(self) -> int:
        return self.venue.pid

    def host_port(self) -> tuple[str, int]:
        """The server's listening TCP address from its URL (``scheme://host:port...``)."""
        match = re.match(r"^\w+://(?:[^@/]*@)?([^:/]+):(\d+)", self.url)
        assert match, self.url
        return match.group(1), int(match.group(2))

    def start(self) -> None:
        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            self.venue.start(timeout=60)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.steady = Steady(self.wire, self.url, self.workdir / "steady.log")
        self.steady.warmed_up()

    def stop(self) -> None:
        if self.steady is not None:
            self.steady.stop()
        self.venue.stop()

    def alive(self) -> bool:
        return self.venue.process is not None and self.venue.process.poll() is None

    async def run(self, case: str, attack: Attack) -> Outcome:
        """Run ``attack`` and measure it; restart the server first if a previous case killed it."""
        if not self.alive():
            self.stop()
            self.venue = Venue(self.wire, self.workdir)
            self.start()
        assert self.steady is not None
        pid = self.pid
        reset_peak(pid)
        before = status_kb(pid, "VmRSS")
        self.steady.ask("mark")
        started = time.perf_counter()
        reason = await attack(self)
        attack_s = time.perf_counter() - started
        await asyncio.sleep(max(SETTLE_S, MIN_WINDOW_S - attack_s))
        steady = self.steady.ask("report")
        peak = status_kb(pid, "VmHWM") if self.alive() else before
        outcome = Outcome(self.wire, case, before / 1024, (peak - before) / 1024, steady, reason.name if reason else None, attack_s)
        outcome.after_ok = self.alive() and await normal_order(self.wire, self.url)
        RESULTS.append(outcome)
        return outcome


async def normal_order(wire: str, url: str) -> bool:
    """Whether a new client's small IOC order is accepted (the server answers normally)."""
    try:
        async with asyncio.timeout(15):
            async with make_client(wire, "afterwards", url) as client:
                order = PlaceOrder("afterwards", "", "BTC-USD", Side.BUY, 10, 2_800_000, tif=TimeInForce.IOC)
                events = (await client.submit([order]))[0]
        return any(type(e) is OrderAccepted for e in events)
    except (ExchangeError, OSError, TimeoutError):
        return False


def check(outcome: Outcome, *, reason: RejectReason | None = None, latency: bool = True) -> None:
    """The three promises of every case (and the refusal's reason, where the wire carries one)."""
    steady = outcome.steady
    problems = []
    if outcome.peak_growth_mb > RSS_BOUND_MB:
        problems.append(f"peak RSS grew {outcome.peak_growth_mb:.0f} MB (bound {RSS_BOUND_MB:.0f} MB)")
    if latency and steady["p99_ms"] > P99_BOUND_MS:
        problems.append(f"the steady client's p99 was {steady['p99_ms']} ms (bound {P99_BOUND_MS:.0f} ms; max {steady['max_ms']} ms)")
    if steady["errors"]:
        problems.append(f"the steady client had {steady['errors']} errors ({steady['last_error']})")
    if steady["count"] < 3:
        problems.append(f"the steady client completed only {steady['count']} round trips")
    if not outcome.after_ok:
        problems.append("afterwards the server did not accept a normal order")
    if reason is not None and outcome.reason != reason.name:
        problems.append(f"refused with {outcome.reason}, expected {reason.name}")
    assert not problems, f"{outcome.wire} {outcome.case} ({outcome.attack_s:.1f} s): " + "; ".join(problems)


def write_report(path: Path) -> None:
    """Per wire: every case, and the worst peak growth and worst p99 among them."""
    wires: dict[str, Any] = {}
    for outcome in RESULTS:
        entry = wires.setdefault(outcome.wire, {"cases": []})
        entry["cases"].append(asdict(outcome))
    for entry in wires.values():
        cases = entry["cases"]
        worst_rss = max(cases, key=lambda c: c["peak_growth_mb"])
        worst_p99 = max(cases, key=lambda c: c["steady"]["p99_ms"])
        entry["worst_peak_growth_mb"] = {"case": worst_rss["case"], "mb": round(worst_rss["peak_growth_mb"], 1)}
        entry["worst_steady_p99_ms"] = {"case": worst_p99["case"], "ms": worst_p99["steady"]["p99_ms"]}
    report = {
        "bounds": {"peak_rss_growth_mb": RSS_BOUND_MB, "steady_p99_ms": P99_BOUND_MS},
        "machine": {"cpus": os.cpu_count()},
        "wires": wires,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


# ------------------------------------------------------------------ attack tools
def http_complete(received: bytes) -> bool:
    """Whether ``received`` holds a whole HTTP response (headers and its ``Content-Length`` of body)."""
    headers, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)", headers)
    return match is not None and len(body) >= int(match.group(1))


async def send_and_close(
    host: str,
    port: int,
    data: bytes,
    *,
    read_s: float = 2.0,
    complete: Callable[[bytes], bool] | None = None,
    early: int = 0,
) -> bytes:
    """Write ``data`` on a new TCP connection while reading what comes back, close; what came back.

    Reading starts before writing, and writing stops once the answer is whole
    (``complete``) or the server closed: a server that refuses a request
    before reading all of it answers and closes early, and its answer must be
    read before the reset that closing an unread connection causes. After the
    first ``early`` bytes (a request's head) it waits ``EARLY_S`` for such an
    answer, as a client sending ``Expect: 100-continue`` would. Reading ends
    ``read_s`` seconds after the last byte is written.
    """
    reader, writer = await asyncio.open_connection(host, port)
    received = bytearray()

    async def read() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.extend(chunk)
                if complete is not None and complete(bytes(received)):
                    return

    reading = asyncio.get_running_loop().create_task(read())
    try:
        with contextlib.suppress(ConnectionError):
            view = memoryview(data)
            if early:
                writer.write(view[:early])
                await writer.drain()
                await asyncio.wait([reading], timeout=EARLY_S)
            for offset in range(early, len(data), 256 * 1024):
                if reading.done():
                    break
                writer.write(view[offset : offset + 256 * 1024])
                await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), read_s)
        return bytes(received)
    finally:
        reading.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def head(method: str, path: str, length: int | None = None, extra: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "X-Trader: mallory"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def status_of(response: bytes) -> int:
    parts = response.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def exchange(w: Wire, request: bytes, read_s: float = 10.0) -> bytes:
    """Send one raw request on a connection of its own; the response (as far as it came)."""
    host, port = w.host_port()
    return await send_and_close(host, port, request, read_s=read_s, complete=http_complete, early=request.find(b"\r\n\r\n") + 4)


@contextlib.asynccontextmanager
async def held_connections(
    host: str, port: int, count: int, first: bytes = b""
) -> AsyncIterator[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """``count`` TCP connections that send ``first`` and then hold still; closed on exit."""
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(count):
            reader, writer = await asyncio.open_connection(host, port)
            held.append((reader, writer))
            if first:
                writer.write(first)
        yield held
    finally:
        for _, writer in held:
            writer.close()
        for _, writer in held:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def closed_by_peer(pairs: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> int:
    """How many of ``pairs`` the server has closed (end of stream seen)."""
    return sum(1 for reader, _ in pairs if reader.at_eof())


def run(wire: Wire, case: str, attack: Attack, reason: RejectReason | None = None) -> None:
    """Run ``attack`` as ``case`` against ``wire``'s server and check every bound (``check``).

    A first run whose steady p99 is over ``P99_BOUND_MS`` is followed by ``LATENCY_RUNS - 1`` more, and the p99
    bound is judged on their median; memory, errors, the order afterwards and the reason are checked in every run.
    """
    outcomes = [asyncio.run(wire.run(case, attack))]
    if outcomes[0].steady["p99_ms"] > P99_BOUND_MS:
        outcomes += [asyncio.run(wire.run(case, attack)) for _ in range(LATENCY_RUNS - 1)]
    for outcome in outcomes:
        check(outcome, reason=reason, latency=False)
    median = sorted(outcomes, key=lambda o: float(o.steady["p99_ms"]))[len(outcomes) // 2]
    if len(outcomes) > 1:
        median.notes.append(f"p99 judged on the median of {len(outcomes)} runs: {[o.steady['p99_ms'] for o in outcomes]} ms")
    check(median, reason=reason)


# ------------------------------------------------------------------ attacks below the wire's protocol (any TCP server)
def slowloris(head: bytes, count: int = 500, lines: int = 6, every_s: float = 0.5) -> Attack:
    """``count`` connections that send ``head`` and then one more header line every ``every_s``, never ending it."""

    async def attack(w: Wire) -> RejectReason | None:
        host, port = w.host_port()
        async with held_connections(host, port, count, head) as held:
            for i in range(lines):
                for _, writer in held:
                    if not writer.is_closing():
                        writer.write(f"X-Slow-{i}: {'a' * 20}\r\n".encode())
                await asyncio.sleep(every_s)
        return None

    return attack


def idle(count: int, hold_s: float, first: bytes = b"", count_after_first: int = 0) -> Attack:
    """``count`` connections that send nothing (and ``count_after_first`` that send ``first``), held ``hold_s``."""

    async def attack(w: Wire) -> RejectReason | None:
        host, port = w.host_port()
        async with held_connections(host, port, count), held_connections(host, port, count_after_first, first):
            await asyncio.sleep(hold_s)
        return None

    return attack


def partial_bodies(path: str, size: int, count: int = 100, hold_s: float = 1.0) -> Attack:
    """``count`` connections that declare a body of ``size`` bytes, send all of it but the last byte, and wait."""

    async def attack(w: Wire) -> RejectReason | None:
        host, port = w.host_port()
        part = bytes(size - 1)
        async with held_connections(host, port, count, head("POST", path, size)) as held:
            for _, writer in held:
                writer.write(part)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            await asyncio.sleep(hold_s)
        return None

    return attack


def random_connections(count: int, size: int, *prefixes: bytes, read_s: float = 0.3) -> Attack:
    """``count`` connections (for each of ``prefixes``, default none) that send ``prefix`` and ``size`` random bytes."""

    async def attack(w: Wire) -> RejectReason | None:
        host, port = w.host_port()
        for seed in range(count):
            for prefix in prefixes or (b"",):
                await send_and_close(host, port, prefix + random_bytes(size, seed), read_s=read_s)
        return None

    return attack


def random_bytes(size: int, seed: int = 14) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ payloads (bytes built by hand: no parse on our side)
def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


EMPTY_PLACE = b"\x0a\x02\x0a\x00"  # CommandBatch.commands[i] = Command{place: PlaceOrder{}}: 4 bytes a command


def empty_command_batch(size: int) -> bytes:
    """A ``CommandBatch`` of about ``size`` bytes: ``size // 4`` commands, each an empty place."""
    return EMPTY_PLACE * (size // len(EMPTY_PLACE))


def lean_order_batch(size: int) -> bytes:
    """A lean ``OrderBatch`` of about ``size`` bytes: one packed ``kind`` column of ``size`` zero kinds."""
    count = max(1, size - 16)
    return b"\x1a" + varint(count) + bytes(count)


def json_empty_list(size: int) -> bytes:
    """A JSON list of about ``size`` bytes of empty objects (``[{},{},...]``)."""
    count = max(1, size // 3)
    return b"[" + b"{}," * (count - 1) + b"{}]"


def snapshot_request(symbol: str, times: int) -> bytes:
    """A ``MarketDataRequest`` naming ``symbol`` ``times`` times."""
    one = symbol.encode()
    return (b"\x0a" + varint(len(one)) + one) * times


def book_request(symbol: str, depth: int) -> bytes:
    one = symbol.encode()
    return b"\x0a" + varint(len(one)) + one + b"\x10" + varint(depth)
