"""``turbo-dex --shards N``: N shard processes behind one front, on the same ports and the same client API.

The launcher (``transports.launcher``) hands over here when ``--shards`` is
given (also spelled ``-shards``, as the system this replaces was run). This
module starts each shard (``transports.sharding.shard``) as a child process,
waits for its ready line, and returns the ``FrontGateway`` the launcher then
serves over every ``--transports`` wire. Invariants:

* The symbols are split by ``ShardMap`` (rendezvous hashing, ``--pin
  SYMBOL=K`` first); each shard lists only its own and journals to
  ``STATE_DIR/turbo-dex-shards/shard-K.journal`` (none with ``--no-journal``).
* Shards are stopped by PID, the ones this process started and no other:
  SIGTERM (each applies what is queued, fsyncs, checkpoints), SIGKILL after
  a timeout. A shard that exits early fails the start with its log's tail.
* No shard outlives turbo-dex: each asks to receive SIGTERM when its
  parent dies, however it dies (``kill -9`` included), so none is orphaned
  (``transports.core.pids.die_with``).
* A shard that dies while serving (``kill -9``, a crash) is started again by
  ``watch`` within ``WATCH_EVERY_S``; it recovers its books from its own
  journal and snapshot, and the front's link reconnects by itself. Meanwhile
  only its symbols are unavailable: the others keep trading.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from transports.core.gateway import GatewayConfig
from transports.core.local_server import terminate
from transports.core.state_dir import state_dir
from transports.instruments import select_instruments
from transports.sharding.front import FrontGateway
from transports.sharding.link import private_dir, socket_dir
from transports.sharding.shard_map import ShardMap, parse_pins

READY_TIMEOUT_S = 60.0
WATCH_EVERY_S = 0.1
_log = logging.getLogger("dex.shards")


def add_shard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", type=int, default=0, metavar="N", help="run N shard processes behind the fronts (docs/shards.md)")
    parser.add_argument(
        "--fronts",
        "--workers",
        dest="fronts",
        type=int,
        default=1,
        metavar="F",
        help="with --shards: F front processes on the same ports (HTTP, gRPC: SO_REUSEPORT; ZeroMQ: front K on the ports 2K above)",
    )
    parser.add_argument("--pin", action="append", default=[], metavar="SYMBOL=K", help="with --shards: put SYMBOL on shard K")
    parser.add_argument("--front-index", type=int, default=0, help=argparse.SUPPRESS)  # a front started by the first
    parser.add_argument("--front-parent", type=int, default=0, help=argparse.SUPPRESS)


def check_shard_options(args: argparse.Namespace) -> str | None:
    """Why these options cannot run, or None."""
    if args.fronts < 1:
        return f"--fronts must be at least 1, got {args.fronts}"
    if args.fronts > 1 and not args.shards:
        return "--fronts needs --shards: without shards one process holds every book, and a second front would have none to reach"
    if args.shards < 0:
        return f"--shards must be 1 or more, got {args.shards}"
    return None


class ShardProcesses:
    """The shard children of one ``turbo-dex --shards N``."""

    def __init__(self, args: argparse.Namespace) -> None:
        symbols = [i.symbol for i in select_instruments(args.symbols)]
        self.shard_map = ShardMap(args.shards, parse_pins(args.pin))
        self.assignment = self.shard_map.assign(symbols)
        self.run_dir = private_dir(Path(state_dir(args.state_dir)).resolve() / "turbo-dex-shards")  # journals, logs
        self.socket_dir = socket_dir(self.run_dir)
        self.args = args
        self.processes: list[subprocess.Popen[bytes]] = []
        self.fronts: list[subprocess.Popen[bytes]] = []  # fronts 1..F-1; front 0 is this process
        self._front_argv: list[str] = []
        self.restarts = 0

    def command(self, index: int) -> list[str]:
        args = self.args
        cmd = [sys.executable, "-m", "transports.sharding.shard", "--index", str(index), "--run-dir", str(self.socket_dir)]
        cmd += ["--parent", str(os.getpid())]
        cmd += ["--symbols", ",".join(self.assignment[index]), "--buffer", str(args.buffer), "--fsync", args.fsync]
        return cmd + (["--no-journal"] if args.no_journal else ["--journal", str(self.run_dir / f"shard-{index}.journal")])

    def start(self) -> None:
        """Start every shard and wait until each is ready; ``RuntimeError`` (the others stopped) if one is not."""
        try:
            self.processes = [self._spawn(index) for index in range(self.shard_map.shards)]
            for index in range(len(self.processes)):
                self._wait_ready(index)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        return self._popen(self.command(index), f"shard-{index}")

    def _popen(self, command: list[str], name: str) -> subprocess.Popen[bytes]:
        with open(self.run_dir / f"{name}.log", "wb") as log:  # the child keeps its own descriptor
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def _ready(self, name: str, process: subprocess.Popen[bytes], line: str) -> bool:
        """Whether ``name`` logged ``line``; ``RuntimeError`` with its log's tail if it exited first."""
        text = (self.run_dir / f"{name}.log").read_text(errors="replace")
        if line in text:
            return True
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {text[-400:].strip()}")
        return False

    def _shard_ready(self, index: int) -> bool:
        return self._ready(f"shard-{index}", self.processes[index], f"dex-shard {index} ready")

    def _front_ready(self, index: int) -> bool:
        return self._ready(f"front-{index}", self.fronts[index - 1], "turbo-dex listening")

    def _wait_ready(self, index: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._shard_ready(index):
            if time.monotonic() > deadline:
                raise RuntimeError(f"shard {index} not ready after {READY_TIMEOUT_S:g} s (see {self.run_dir}/shard-{index}.log)")
            time.sleep(0.05)

    def start_fronts(self, argv: list[str]) -> None:
        """Start fronts 1..F-1: this command again, as a front of the shards already running (``--front-index K``)."""
        self._front_argv = [sys.executable, "-m", "transports.launcher", *argv, "--front-parent", str(os.getpid())]
        try:
            self.fronts = [self._spawn_front(index) for index in range(1, self.args.fronts)]
            deadline = time.monotonic() + READY_TIMEOUT_S
            for index in range(1, self.args.fronts):
                while not self._front_ready(index):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"front {index} not ready after {READY_TIMEOUT_S:g} s (see {self.run_dir}/front-{index}.log)")
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def _spawn_front(self, index: int) -> subprocess.Popen[bytes]:
        return self._popen([*self._front_argv, "--front-index", str(index)], f"front-{index}")

    async def watch(self) -> None:
        """Start again every shard (from its journal) and every front that dies; runs until cancelled."""
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                await self._replace_dead()
            except Exception:  # the watch must outlive any one failure: the next round tries again
                _log.exception("watch_failed")

    async def _replace_dead(self) -> None:
        """One round of ``watch``."""
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                self.processes[index] = self._spawn(index)
                await self._restarted(f"shard-{index}", process, functools.partial(self._shard_ready, index))
        for index, process in enumerate(self.fronts, start=1):
            if process.poll() is not None:
                self.fronts[index - 1] = self._spawn_front(index)
                await self._restarted(f"front-{index}", process, functools.partial(self._front_ready, index))

    async def _restarted(self, name: str, dead: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
        """Log ``name``'s death and wait until its replacement is ready."""
        _log.warning("process_died", extra={"child": name, "exit": dead.returncode})
        started = time.monotonic()
        self.restarts += 1
        try:
            while not ready():
                await asyncio.sleep(0.02)
        except RuntimeError as exc:  # it died again at once: the next round starts it again
            _log.error("process_restart_failed", extra={"child": name, "error": str(exc)})
            return
        _log.info("process_restarted", extra={"child": name, "seconds": round(time.monotonic() - started, 3)})

    def stop(self) -> None:
        for process in [*self.fronts, *self.processes]:  # fronts first: nothing is sent to a shard that is stopping
            terminate(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def describe(self) -> str:
        parts = [f"shard {k}: {','.join(symbols) or '-'}" for k, symbols in enumerate(self.assignment)]
        fronts = f" (front {self.args.front_index + 1} of {self.args.fronts})" if self.args.fronts > 1 else ""
        return f"{self.shard_map.shards} shards{fronts}: {'; '.join(parts)}"

    def front(self, buffer: int) -> FrontGateway:
        return FrontGateway(self.shard_map, self.socket_dir, GatewayConfig(buffer=buffer), self.args.fronts)
