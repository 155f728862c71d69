"""Zero-configuration NATS cluster membership for ``nats-auto``: one nats-server per node, found by beacons.

Every ``nats-auto`` node runs its own nats-server (JetStream, clustered) and
routes it to the servers of the nodes it finds. On one machine they find
each other through a **directory of beacons** (default
``$XDG_RUNTIME_DIR/dex-nats-auto``, else ``<tmp>/dex-nats-auto-<uid>``,
mode 0700; ``--beacon-dir``); ``--peers host:port,...`` adds cluster
addresses by hand (other machines). A directory rather than a UDP beacon
because it works on loopback with no network set-up at all: Linux's ``lo``
carries no multicast by default, and a broadcast or ``SO_REUSEPORT`` UDP
port hands each datagram to one socket, not all; a file is seen by every
process of the user at once, and a dead node's file is recognised by its
PID.

Invariants:

* **A slot is a stable identity.** A node claims the lowest free slot N by
  an exclusive ``flock`` on ``slot-N.lock``, held for its whole life and
  released by the kernel when it dies (``kill -9`` included). Slot N gives
  the server name ``dex-<host>-N`` and the store ``<data-dir>/nN``: a node
  that comes back takes the same slot and rejoins JetStream's metadata group
  as the same peer, with its own data.
* **Joining is serialised.** ``join.lock`` is held from reading the beacons
  until this node's server is ready and its beacon is written, so two nodes
  started at the same instant never both start alone (two clusters).
* **A beacon is live while its node's PID is.** ``slot-N.json`` names the
  node, its PID, its nats-server's PID, client URL, cluster URL and
  monitoring URL; it is written atomically (temp file + rename).
* **Leaving keeps the rest alive.** A node stopped cleanly whose departure
  would leave the others short of a quorum of JetStream's metadata group (two
  nodes, one stops) removes its server from that group first
  (``$JS.API.SERVER.REMOVE`` as the system user): the group shrinks, its
  streams' replicas move to the servers that stay. A removed server name may
  not rejoin JetStream, so the slot's next server starts with a new
  generation (``dex-<host>-N-gG``) and an empty store; it catches up from
  the others.
* A node alone routes its server to itself: nats-server refuses a
  clustered JetStream with no route, and a JetStream cluster elects its
  metadata leader only once a second server is routed (its bootstrap
  expects at least two): one node waits for a second one before it trades.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from transports.core.pids import pid_alive


@dataclass(frozen=True, slots=True)
class Beacon:
    slot: int
    name: str  # the nats-auto node's name
    pid: int  # the node's PID
    server_name: str
    server_pid: int
    client_url: str
    cluster_url: str
    monitor_url: str


def default_beacon_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "dex-nats-auto"
    return Path(tempfile.gettempdir()) / f"dex-nats-auto-{os.getuid()}"


def server_name(slot: int, generation: int = 0) -> str:
    return f"dex-{socket.gethostname()}-{slot}" + (f"-g{generation}" if generation else "")


def generation(slot_dir: Path) -> int:
    """How many times this slot's server was removed from JetStream's metadata group (its name's suffix)."""
    try:
        return int((slot_dir / "generation").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def retire(slot_dir: Path, store_dir: Path) -> None:
    """After a removal: the next server of this slot takes a new name and an empty store."""
    import shutil

    (slot_dir / "generation").write_text(str(generation(slot_dir) + 1))
    shutil.rmtree(store_dir, ignore_errors=True)


def meta_group(monitor_url: str, timeout: float = 2.0) -> tuple[int, str]:
    """JetStream's metadata group as this server sees it (``/jsz``): its size and its leader's name."""
    with urllib.request.urlopen(f"{monitor_url}/jsz", timeout=timeout) as answer:
        meta = json.loads(answer.read()).get("meta_cluster") or {}
    return int(meta.get("cluster_size") or 0), str(meta.get("leader") or "")


class Membership:
    """This node's slot and beacon in the beacon directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_beacon_dir()
        self.slot = 0
        self._slot_lock: IO[bytes] | None = None

    def _prepare(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def joining(self, timeout: float = 60.0) -> Iterator[None]:
        """Hold ``join.lock`` (one joiner at a time on this machine)."""
        self._prepare()
        with (self.directory / "join.lock").open("ab") as lock:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"another nats-auto held {self.directory / 'join.lock'} for {timeout:g}s") from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def claim_slot(self) -> int:
        """The lowest slot no live node holds; held until ``release`` or this process dies."""
        self._prepare()
        slot = 1
        while True:
            lock = (self.directory / f"slot-{slot}.lock").open("ab")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                slot += 1
                continue
            self.slot, self._slot_lock = slot, lock
            return slot

    def publish(self, beacon: Beacon) -> None:
        path = self.directory / f"slot-{beacon.slot}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(asdict(beacon)), encoding="utf-8")
        tmp.replace(path)

    def peers(self) -> list[Beacon]:
        """The live beacons of other nodes, by slot."""
        return [b for b in live_beacons(self.directory) if b.slot != self.slot]

    def release(self) -> None:
        """Remove our beacon and give the slot up (a clean exit; a killed node's are ignored by PID)."""
        if self._slot_lock is None:
            return
        with contextlib.suppress(OSError):
            (self.directory / f"slot-{self.slot}.json").unlink()
        fcntl.flock(self._slot_lock, fcntl.LOCK_UN)
        self._slot_lock.close()
        self._slot_lock = None


def live_beacons(directory: Path) -> list[Beacon]:
    found: list[Beacon] = []
    for path in sorted(Path(directory).glob("slot-*.json")):
        try:
            beacon = Beacon(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue  # being replaced right now, or not ours
        if pid_alive(beacon.pid):
            found.append(beacon)
    return sorted(found, key=lambda b: b.slot)


def routed_servers(monitor_url: str, timeout: float = 2.0) -> set[str]:
    """The server names this nats-server has routes to (its ``/routez``; a route pool counts once)."""
    with urllib.request.urlopen(f"{monitor_url}/routez", timeout=timeout) as answer:
        routez = json.loads(answer.read())
    return {str(r.get("remote_name") or r.get("remote_id")) for r in routez.get("routes") or []}


def parse_peers(text: str) -> list[str]:
    """``--peers host:port,...`` (cluster ports) as route URLs."""
    urls = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        if "://" not in item:
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"--peers: {item!r} is not host:clusterport")
            item = f"nats-route://{item}"
        urls.append(item)
    return urls
