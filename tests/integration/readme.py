"""The README's command lines, parsed from README.md itself, and how a test runs each one, bounded in time.

``commands()`` reads the fenced ``bash`` blocks of the "Quick start" and
"Commands" sections: one command per line, the ``#`` comment dropped, a line
that is only a comment skipped (a continuation of the line above), and
``make a / make b`` or ``make a / b`` split into its commands.

Every command is in exactly one of ``RUN`` (how to run it) or ``NOT_RUN``
(why not); ``test_readme_commands`` fails on a README command in neither,
and on an entry that is no longer in the README. So a new README line
cannot be skipped silently, and the two cannot drift.

How a command is run (``Run.kind``):

* ``once``: run as written (``shorten`` appends options, e.g. a shorter
  ``--duration``, where the README's line runs long), ``copies`` of it at
  once where the README says to run it in several terminals; exit status 0
  and, if given, ``expect`` in the output.
* ``server``: started in its own session, ready once ``ports`` accept TCP
  connections (all of them must be free before: the README's defaults), its
  ``clients`` (other README commands) then run against it, and the session
  is stopped: SIGTERM, then SIGKILL, to that process group only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTIONS = ("Quick start", "Commands")

_FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _split_alternatives(line: str) -> list[str]:
    """``make a / make b`` -> both; ``make x / y / z`` -> ``make x``, ``make y``, ``make z``."""
    parts = [p.strip() for p in line.split(" / ")]
    if len(parts) == 1 or not parts[0].startswith("make "):
        return [line]
    return [p if p.startswith("make ") else f"make {p}" for p in parts]


def commands(readme: Path = README) -> list[str]:
    """Every command line of the README's Quick start and Commands sections, in order."""
    text = readme.read_text(encoding="utf-8")
    found: list[str] = []
    for title in SECTIONS:
        for block in _FENCE.findall(_section(text, title)):
            for raw in block.splitlines():
                line = raw.split("  #", 1)[0].split(" # ", 1)[0].strip()
                if not line or line.startswith("#"):
                    continue
                found.extend(_split_alternatives(line))
    return found


@dataclass(frozen=True)
class Run:
    kind: str  # "once" or "server"
    timeout_s: float = 120.0
    shorten: str = ""  # appended to the command (inside ARGS="..." for a make line that has one)
    replace: tuple[str, str] = ("", "")  # or: this text of the command replaced (DURATION=30 -> DURATION=5)
    expect: str = ""  # a text the output must hold (a server's: once stopped)
    ports: tuple[int, ...] = ()  # server: ready when all accept connections ...
    ready_text: str = ""  # ... and its output holds this
    clients: tuple[str, ...] = field(default=())  # server: README commands run while it is up
    run_for_s: float = 0.0  # server: how long it runs after ready (after its clients)
    stop_signal: signal.Signals = signal.SIGTERM  # SIGINT: what Ctrl-C sends
    cleanup: str = ""  # a command run after the server stopped (what the README's user would type next)
    slow: bool = False  # run by tests/faults (make test-faults), not by make test
    copies: int = 1  # once: this many run at the same time, as in that many terminals (the README says so)


def typed(command: str, run: Run) -> str:
    """The command as the test types it: shortened where the README's line runs long."""
    old, new = run.replace
    if old:
        assert old in command, (command, old)
        command = command.replace(old, new)
    return shortened(command, run.shorten)


def shortened(command: str, extra: str) -> str:
    """``command`` with ``extra`` options appended; into ``ARGS="..."`` when the line has one (argparse: the last wins)."""
    if not extra:
        return command
    match = re.search(r'ARGS="([^"]*)"', command)
    if match:
        return command[: match.end(1)] + " " + extra + command[match.end(1) :]
    if command.startswith("make "):
        return f'{command} ARGS="{extra}"'
    return f"{command} {extra}"


_SHORT = "--duration 2s --warmup 500ms"

RUN: dict[str, Run] = {
    "make demo": Run("once", timeout_s=300, expect="reconciled with the server"),
    "make turbo-server": Run("server", ports=(8080,), clients=('make dex-trader ARGS="--workers 8 --batch 1000 --duration 30s"',)),
    'make dex-trader ARGS="--workers 8 --batch 1000 --duration 30s"': Run("once", shorten=_SHORT, expect="reconciled with the server"),
    ".venv/bin/turbo-dex --transports http,grpc,zmq": Run("server", ports=(8080, 50051, 5555, 5556)),
    ".venv/bin/turbo-dex --shards 2 --fronts 2 --transports http,zmq": Run("server", ports=(8080, 5555, 5556, 5557, 5558)),
    "make grpc-server": Run("server", ports=(50051,), clients=(".venv/bin/dex-trader --transport grpc --batch 1000 --duration 10s",)),
    ".venv/bin/dex-trader --transport grpc --batch 1000 --duration 10s": Run("once", shorten=_SHORT, expect="reconciled with the server"),
    "make zmq-server": Run(
        "server",
        ports=(5555, 5556),
        clients=(
            'make zmq-trader ARGS="--batch 1000"',
            ".venv/bin/zmq-trader -server tcp://localhost:5555 -traders 100 -rate 100 -duration 30s",
        ),
    ),
    'make zmq-trader ARGS="--batch 1000"': Run("once", shorten=_SHORT, expect="reconciled with the server"),
    ".venv/bin/zmq-trader -server tcp://localhost:5555 -traders 100 -rate 100 -duration 30s": Run(
        "once", shorten="-duration 2s --warmup 500ms", expect="reconciled with the server"
    ),
    ".venv/bin/dex-engine replay docs/examples/commands.jsonl --state-hash": Run("once", timeout_s=60, expect="state_hash"),
    "make nats-server": Run("server", ports=(4222,), clients=("make nats-trader",), timeout_s=180),
    "make nats-trader": Run("once", shorten=_SHORT, expect="reconciled with the server"),
    "make compose-check": Run("once", timeout_s=180, expect="passed"),
    "make test-screen": Run("once", timeout_s=300, expect="passed"),
    "make nats-auto": Run("once", shorten="--duration 6s", expect="is the leader", timeout_s=180, copies=2),
    "make auto-cluster N=5 DURATION=30": Run("once", replace=("DURATION=30", "DURATION=5"), expect="audit ok", timeout_s=240),
    "make rabbitmq-start && make amqp-server": Run(
        "server",
        ports=(5672,),
        ready_text="dex-amqp listening",
        clients=("make pricefeed & make bots-init && make bots",),
        cleanup="make rabbitmq-stop",
        timeout_s=180,
        slow=True,
    ),
    "make pricefeed & make bots-init && make bots": Run(
        "server",
        ready_text="dex-bots: 4/4 workers",
        run_for_s=5.0,
        stop_signal=signal.SIGINT,
        expect="dex-bots summary",
        timeout_s=180,
        slow=True,
    ),
    "make dht-cluster N=3": Run("server", ports=(7700, 7701, 7702), run_for_s=2.0, timeout_s=180, slow=True),
}

NOT_RUN: dict[str, str] = {
    "make test": "it is the suite this test is part of (lint and every test)",
    "make test-faults": "the fault suite: minutes of kill -9 / SIGSTOP runs; CI runs it after make test",
    "make bench-engine": "minutes of engine benchmark, and it rewrites the committed reports/bench-engine.json",
    "make bench-http": "minutes of benchmark, and it rewrites the committed reports/bench-http.json",
    "make bench-grpc": "minutes of benchmark, and it rewrites the committed reports/bench-grpc.json",
    "make bench-zmq": "minutes of benchmark, and it rewrites the committed reports/bench-zmq.json",
    "make bench-shards": (
        "about 6 minutes, and it rewrites the committed reports/bench-shards.json; tests/bench/test_shards_bench.py runs a short one"
    ),
    "make bench-restart": "about 5 minutes of restarts, and it rewrites the committed reports/bench-restart.json",
    "make soak": "10 minutes of steady flow, and it rewrites the committed reports/soak.json; tests/bench/test_soak.py runs a short one",
    "make bench-hostile": "the hostile-input suite, which make test runs anyway (tests/hostile); it rewrites reports/hostile.json",
    "make bench": "about 30 minutes, and it rewrites the committed reports/transport-comparison.*; tests/bench runs its --quick form",
    "make bench WORKLOAD=bench/workloads/fanout.yaml": (
        "minutes of fan-out benchmark; tests/bench/test_workload_files.py runs make bench WORKLOAD=<file> ARGS=--quick, "
        "and tests/bench/test_fanout.py the fan-out's quick form"
    ),
    "make bench-nats": "minutes of benchmark (with leader failovers), and it rewrites the committed reports/bench-nats.json",
    "make bench-amqp": "minutes of benchmark, and it rewrites the committed reports/bench-amqp.json",
    "make bench-dht": "minutes of benchmark (with owner failovers), and it rewrites the committed reports/bench-dht.json",
    "make bench-bots": "minutes of benchmark, and it rewrites the committed reports/bench-bots.json",
    "make screen-timings": "about 40 s of load and browser runs; it rewrites the committed reports/screen-timings.json and a screenshot",
    "make clean-state": "deletes var/ and data/ of this checkout; test_clean_state runs it in a temporary copy instead",
}


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def ports_ready(ports: Sequence[int]) -> bool:
    return all(not port_free(p) for p in ports)


def run_once(command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``command`` in bash at the repository root; its own session, killed as a group if it outlives ``timeout_s``."""
    return run_together(command, 1, timeout_s)[0]


def run_together(command: str, copies: int, timeout_s: float) -> list[subprocess.CompletedProcess[str]]:
    """``copies`` of ``command`` at once, each in its own session (a terminal each); all killed if any outlives ``timeout_s``."""
    processes = [
        subprocess.Popen(
            ["bash", "-c", command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        for _ in range(copies)
    ]
    deadline = time.monotonic() + timeout_s
    done = []
    try:
        for process in processes:
            out, _ = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            done.append(subprocess.CompletedProcess(command, process.returncode, out, ""))
    except subprocess.TimeoutExpired:
        outputs = []
        for process in processes:
            stop_group(process)
            outputs.append(process.communicate()[0] or "")
        shown = "\n".join(out[-3000:] for out in outputs)
        raise AssertionError(f"{command!r} ({copies} at once) did not finish within {timeout_s:.0f} s:\n{shown}") from None
    return done


def start_server(command: str, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    try:
        return subprocess.Popen(["bash", "-c", command], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        handle.close()


def stop_group(
    process: subprocess.Popen[str] | subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM, grace_s: float = 15.0
) -> None:
    """``first`` to the session this test started (the command and its children), SIGKILL after ``grace_s``."""
    if process.poll() is not None and not _group_alive(process.pid):
        return
    _signal_group(process.pid, first)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(process.pid):
        time.sleep(0.1)
        process.poll()
    if _group_alive(process.pid):
        _signal_group(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def top_level(slow: bool) -> list[str]:
    """README commands a test runs directly (a server's clients run inside its test)."""
    clients = {client for run in RUN.values() for client in run.clients}
    return [c for c, run in RUN.items() if c not in clients and run.slow == slow]


def run_command(command: str, tmp_path: Path) -> None:
    """Run one README command as its ``Run`` says; assert what a user would see."""
    run = RUN[command]
    if run.kind == "server":
        _run_server(command, run, tmp_path)
        return
    line = typed(command, run)
    runs = run_together(line, run.copies, run.timeout_s)
    for done in runs:
        assert done.returncode == 0, f"{line!r} exited {done.returncode}:\n{done.stdout[-4000:]}"
    if run.expect:
        outputs = "\n".join(done.stdout for done in runs)
        assert run.expect in outputs, f"{line!r}: no {run.expect!r} in its output:\n{outputs[-4000:]}"


def _run_server(command: str, run: Run, tmp_path: Path) -> None:
    busy = [p for p in run.ports if not port_free(p)]
    if busy:
        pytest.fail(
            f"{command!r} serves on 127.0.0.1 port(s) {busy}, which another process holds: the README's commands use "
            "their default ports, so stop that process (or run this test on a quiet machine, as CI does)"
        )
    log = tmp_path / f"server-{len(list(tmp_path.glob('server-*.log')))}.log"
    server = start_server(typed(command, run), log)
    try:
        _await_ready(command, run, server, log)
        for client in run.clients:
            run_command(client, tmp_path)
        time.sleep(run.run_for_s)
        assert server.poll() is None, f"{command!r} stopped by itself:\n{_tail(log)}"
    finally:
        stop_group(server, run.stop_signal)
        if run.cleanup:
            done = run_once(run.cleanup, 120)
            assert done.returncode == 0, f"{run.cleanup!r} exited {done.returncode}:\n{done.stdout[-2000:]}"
    if run.expect:
        assert run.expect in log.read_text(errors="replace"), f"{command!r}: no {run.expect!r} in its output:\n{_tail(log)}"
    assert all(port_free(p) for p in run.ports), f"{command!r} left a process on {run.ports}"


def _await_ready(command: str, run: Run, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + run.timeout_s
    while not (ports_ready(run.ports) and run.ready_text in log.read_text(errors="replace")):
        if server.poll() is not None:
            pytest.fail(f"{command!r} exited {server.returncode} before it was ready:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{command!r} was not ready ({run.ports} {run.ready_text!r}) within {run.timeout_s:.0f} s:\n{_tail(log)}")
        time.sleep(0.2)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]
