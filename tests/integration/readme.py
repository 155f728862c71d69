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
  ``--duration``, where the README's line runs long); exit status 0 and, if
  given, ``expect`` in its output.
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
    expect: str = ""  # a text the output must hold
    ports: tuple[int, ...] = ()  # server: ready when all accept connections
    clients: tuple[str, ...] = field(default=())  # server: README commands run while it is up
    slow: bool = False  # run by tests/faults (make test-faults), not by make test


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
}

NOT_RUN: dict[str, str] = {
    "make test": "it is the suite this test is part of (lint and every test)",
    "make test-faults": "the fault suite: minutes of kill -9 / SIGSTOP runs; CI runs it after make test",
    "make bench-engine": "minutes of engine benchmark, and it rewrites the committed reports/bench-engine.json",
    "make bench-http": "minutes of benchmark, and it rewrites the committed reports/bench-http.json",
    "make bench-grpc": "minutes of benchmark, and it rewrites the committed reports/bench-grpc.json",
    "make bench-zmq": "minutes of benchmark, and it rewrites the committed reports/bench-zmq.json",
    "make bench": "up to 15 minutes, and it rewrites the committed reports/transport-comparison.*; tests/bench runs its --quick form",
    "make bench-nats": "minutes of benchmark (with leader failovers), and it rewrites the committed reports/bench-nats.json",
    "make bench-amqp": "minutes of benchmark, and it rewrites the committed reports/bench-amqp.json",
    "make bench-dht": "minutes of benchmark (with owner failovers), and it rewrites the committed reports/bench-dht.json",
    "make bench-bots": "minutes of benchmark, and it rewrites the committed reports/bench-bots.json",
    "make clean-state": "deletes var/ and data/ of this checkout; test_clean_state runs it in a temporary copy instead",
    "make nats-auto": "not driven yet: a node that starts its own nats-server and runs until Ctrl-C "
    "(tests/integration/nats covers nats-auto)",
    "make auto-cluster N=5 DURATION=30": "not driven yet: five nodes for 30 s plus start-up and audit, over a minute "
    "(tests/integration/nats covers the cluster)",
    "make rabbitmq-start && make amqp-server": "not driven yet: starts and leaves running the checkout's own RabbitMQ "
    "in var/rabbitmq, which a developer's running broker would share (tests/plugins/rabbitmq.py starts a private one)",
    "make pricefeed & make bots-init && make bots": "not driven yet: needs the RabbitMQ and dex-amqp of the line above and "
    "rewrites var/bots.db (tests/integration/bots covers the flow)",
    "make dht-cluster N=3": "not driven yet: three dex-node peers until Ctrl-C (tests/integration/dht covers them)",
}


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def ports_ready(ports: Sequence[int]) -> bool:
    return all(not port_free(p) for p in ports)


def run_once(command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``command`` in bash at the repository root; its own session, killed as a group if it outlives ``timeout_s``."""
    process = subprocess.Popen(
        ["bash", "-c", command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_group(process)
        out, _ = process.communicate()
        raise AssertionError(f"{command!r} did not finish within {timeout_s:.0f} s:\n{out[-3000:]}") from None
    return subprocess.CompletedProcess(command, process.returncode, out, "")


def start_server(command: str, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    try:
        return subprocess.Popen(["bash", "-c", command], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        handle.close()


def stop_group(process: subprocess.Popen[str] | subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM to the session this test started (the command and its children), SIGKILL after ``grace_s``."""
    if process.poll() is not None and not _group_alive(process.pid):
        return
    _signal_group(process.pid, signal.SIGTERM)
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
