"""dex-node processes on this machine: one node, or a whole replica group, for tests, benchmarks and demos.

Every port is chosen free at run time (loopback). Nodes are stopped by PID
(SIGTERM, then SIGKILL); faults are injected by PID too (``kill``,
``pause``/``resume`` = SIGSTOP/SIGCONT). Nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from transports.core.local_server import LocalServerProcess
from transports.dht.node import free_tcp_port

_LISTENING = re.compile(r"dex-node listening on (dht://\S+) .*?(?:kademlia udp \S+:(\d+))?;")


class DexNodeProcess(LocalServerProcess):
    name = "dex-node"

    def __init__(self, workdir: str | Path, args: list[str], label: str = "node") -> None:
        super().__init__(workdir, tuple(args))
        self.name = f"dex-node-{label}"
        self.log_path = self.workdir / f"{self.name}.log"
        self.dht_port = 0

    def command(self) -> list[str]:
        return [sys.executable, "-m", "transports.dht.node", *self.extra_args]

    def ready(self, output: str) -> bool:
        match = _LISTENING.search(output)
        if match is None:
            return False
        self.url = match.group(1)
        self.dht_port = int(match.group(2) or 0)
        return True

    @property
    def api(self) -> str:
        return "http://" + self.url.removeprefix("dht://")

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """``kill -9``: no goodbye, no flush."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cluster(self, timeout: float = 2.0) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(self.api + "/v1/cluster", timeout=timeout).json()
        return data


class LocalCluster:
    """``size`` dex-nodes forming one replica group; start any subset, add the rest later (late join)."""

    def __init__(self, workdir: str | Path, size: int, symbols: str = "", *, dht: bool = True, extra: tuple[str, ...] = ()) -> None:
        self.workdir = Path(workdir)
        self.size = size
        self.symbols = symbols
        self.dht = dht
        self.extra = extra
        self.secret = secrets.token_hex(16)
        self.raft = [f"127.0.0.1:{free_tcp_port()}" for _ in range(size)]
        self.nodes: list[DexNodeProcess | None] = [None] * size
        self.bootstrap = ""

    def args(self, index: int) -> list[str]:
        peers = [r for i, r in enumerate(self.raft) if i != index]
        args = ["--api-port", "0", "--raft-port", self.raft[index].rpartition(":")[2], "--peers", ",".join(peers)]
        args += ["--secret", self.secret, "--log-level", "warning"]
        args += ["--raft-journal", str(self.workdir / f"raft-n{index}.journal")]
        if self.symbols:
            args += ["--symbols", self.symbols]
        if self.dht:
            args += ["--dht-port", "0"]
            if self.bootstrap:
                args += ["--bootstrap", self.bootstrap]
        else:
            args += ["--no-dht"]
        return [*args, *self.extra]

    def start(self, index: int, timeout: float = 30.0) -> DexNodeProcess:
        node = DexNodeProcess(self.workdir, self.args(index), f"n{index}")
        node.start(timeout)
        self.nodes[index] = node
        if self.dht and not self.bootstrap and node.dht_port:
            self.bootstrap = f"127.0.0.1:{node.dht_port}"
        return node

    def start_all(self, count: int | None = None) -> Self:
        for index in range(self.size if count is None else count):
            self.start(index)
        return self

    def live(self) -> list[DexNodeProcess]:
        return [n for n in self.nodes if n is not None and n.alive()]

    @property
    def url(self) -> str:
        """A client URL naming every live node."""
        return "dht://" + ",".join(n.url.removeprefix("dht://") for n in self.live())

    def owner(self, timeout: float = 20.0, among: list[DexNodeProcess] | None = None) -> DexNodeProcess:
        """The node that says it owns the books (Raft leader) and that the others agree on."""
        deadline = time.monotonic() + timeout
        for _ in range(100_000):
            candidates = among if among is not None else self.live()
            views = {}
            for node in candidates:
                try:
                    views[node.url] = node.cluster()
                except httpx.HTTPError:
                    continue
            owners = [n for n in candidates if views.get(n.url, {}).get("is_owner")]
            if len(owners) == 1:
                address = views[owners[0].url]["self"]
                if sum(1 for v in views.values() if v.get("owner") == address) > len(candidates) // 2:
                    return owners[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no agreed owner within {timeout:g}s: {views}")
            time.sleep(0.1)
        raise TimeoutError("no agreed owner")

    def settled(self, timeout: float = 30.0) -> DexNodeProcess:
        """With every member live: wait until the rendezvous-preferred member owns the books (no hand-back pending)."""
        deadline = time.monotonic() + timeout
        for _ in range(100_000):
            owner = self.owner(max(1.0, deadline - time.monotonic()))
            view = owner.cluster()
            if view["self"] == view["preferred_owner"]:
                return owner
            if time.monotonic() > deadline:
                raise TimeoutError(f"the preferred member {view['preferred_owner']} did not take over within {timeout:g}s")
            time.sleep(0.1)
        raise TimeoutError("not settled")

    def converged(self, timeout: float = 30.0, among: list[DexNodeProcess] | None = None) -> dict[str, Any]:
        """Wait until every node reports the same engine seq and state hash; returns one view."""
        deadline = time.monotonic() + timeout
        views: dict[str, dict[str, Any]] = {}
        for _ in range(100_000):
            nodes = among if among is not None else self.live()
            views = {}
            for node in nodes:
                with contextlib.suppress(httpx.HTTPError):
                    views[node.url] = node.cluster()
            hashes = {(v["engine_seq"], v["state_hash"]) for v in views.values()}
            if len(views) == len(nodes) and len(hashes) == 1:
                return next(iter(views.values()))
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes did not converge within {timeout:g}s: {views}")
            time.sleep(0.1)
        raise TimeoutError("nodes did not converge")

    def stop(self) -> None:
        for node in self.nodes:
            if node is not None:
                node.resume()  # a paused node cannot handle SIGTERM
                node.stop(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


BENCH_NODES = 3  # one Raft replica group: the smallest that survives the loss of a node


class ClusterServer:
    """Three dex-nodes as one local "server": the URL names every node; the PID is the owner's.

    The transport's local starter (its descriptor's ``local_server``): started
    on ``__enter__``, every node stopped by PID on ``__exit__``.
    """

    def __init__(self, workdir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.cluster = LocalCluster(workdir, BENCH_NODES, extra=extra_args)
        self._pid = 0

    def __enter__(self) -> Self:
        try:
            self.cluster.start_all()
            self._pid = self.cluster.settled().pid  # the owner the group keeps: no hand-back during the run
        except BaseException:
            self.cluster.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.cluster.stop()

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def pid(self) -> int:
        return self._pid

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(n.log_tail(lines) for n in self.cluster.live())
