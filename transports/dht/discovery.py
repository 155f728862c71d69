"""Finding the exchange's nodes: an embedded Kademlia DHT, or a network of Grenache ``grenache-grape`` nodes.

Both announce the same thing: "the service ``dex:exchange`` is served at
host:port (the node's API)". Invariants:

* Announcements expire. Kademlia: the value under the service key is a JSON
  map ``{api "host:port": {"raft": "host:port", "expires": unix seconds}}``
  that every node merges into (get, merge, set) every ``period`` seconds,
  dropping expired entries; concurrent merges may drop a peer for one period,
  never forever, because every live node re-announces. Grape: ``POST
  /announce ["dex:exchange", port]`` every ``period`` (Grape forgets a peer
  after about two minutes) and ``POST /lookup "dex:exchange"``.
* Discovery only finds; it never decides. Who owns a book is Raft's
  decision among the configured members (``replica.py``).
* Kademlia (``kademlia`` 2.2.3, over ``rpcudp``) speaks msgpack, not pickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

log = logging.getLogger("dex-node.discovery")

SERVICE = "dex:exchange"
TTL_S = 60.0


class _UnansweredRequest(logging.Filter):
    """Logs ``rpcudp``'s "Did not receive reply ... within 5 seconds" as what it is: information, not an error.

    rpcudp logs every UDP request that went unanswered at ``error``. Here that is
    expected: nodes of a cluster start together, so a node's bootstrap ping
    often reaches the first node before its UDP port is open (the "[error] at
    every start"), and a node that left answers nothing until Kademlia drops
    it. Discovery recovers by itself (``announce`` bootstraps again every
    period), and it never decides ownership (Raft does).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and str(record.msg).startswith("Did not receive reply"):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "kademlia: a UDP request got no reply within %ss (a peer not up yet, e.g. the bootstrap node, or gone); retried"
            record.args = record.args[-1:] if isinstance(record.args, tuple) else ()
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


_RPCUDP_LOG = logging.getLogger("rpcudp.protocol")
_RPCUDP_LOG.addFilter(_UnansweredRequest())


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"expected host:port, got {item!r}")
        out.append((host.strip("[]") or "127.0.0.1", int(port)))
    return out


class KademliaDiscovery:
    """A Kademlia node in this process (UDP), announcing this node's API and Raft endpoints."""

    def __init__(self, host: str, port: int, bootstrap: Sequence[tuple[str, int]], api: str, raft: str, period: float = 5.0) -> None:
        from kademlia.network import Server  # type: ignore[import-untyped]

        self.server = Server()
        self.host, self.port, self.bootstrap = host, port, list(bootstrap)
        self.api, self.raft, self.period = api, raft, period
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.listen(self.port, interface=self.host)
        transport = getattr(self.server, "transport", None)
        if self.port == 0 and transport is not None:
            self.port = int(transport.get_extra_info("sockname")[1])
        if self.bootstrap:
            await self.server.bootstrap(self.bootstrap)
        self._task = asyncio.get_running_loop().create_task(self._announce_forever(), name="kademlia-announce")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self.server.stop()

    async def lookup(self) -> dict[str, dict[str, Any]]:
        """Live announcements: API endpoint -> {"raft": ..., "expires": ...}."""
        raw = await self.server.get(SERVICE)
        try:
            value = orjson.loads(raw) if isinstance(raw, str | bytes) else {}
        except orjson.JSONDecodeError:
            value = {}
        now = time.time()
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if isinstance(v, dict) and float(v.get("expires", 0)) > now}

    async def peers(self) -> list[str]:
        return list(await self.lookup())

    async def announce(self) -> None:
        if self.bootstrap and not self.server.bootstrappable_neighbors():
            await self.server.bootstrap(self.bootstrap)  # the bootstrap node was not up yet
        live = await self.lookup()
        live[self.api] = {"raft": self.raft, "expires": time.time() + TTL_S}
        await self.server.set(SERVICE, orjson.dumps(live).decode())

    async def _announce_forever(self) -> None:
        while True:
            try:
                await self.announce()
            except Exception as exc:  # a lost UDP exchange: next period
                log.warning("kademlia announce failed: %s", exc)
            await asyncio.sleep(self.period)


class GrapeDiscovery:
    """Announce to and look up in a ``grenache-grape`` network through one Grape's HTTP API."""

    def __init__(self, grape_url: str, api_port: int, period: float = 30.0) -> None:
        self.grape_url = grape_url.rstrip("/")
        self.api_port = api_port
        self.period = period
        self._client = httpx.AsyncClient(timeout=5.0)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await self.announce()
        except Exception as exc:  # the Grape may start after us: the loop below keeps trying
            log.warning("grape announce failed: %s", exc)
        self._task = asyncio.get_running_loop().create_task(self._announce_forever(), name="grape-announce")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self._client.aclose()

    async def announce(self) -> None:
        response = await self._client.post(f"{self.grape_url}/announce", json={"data": [SERVICE, self.api_port]})
        response.raise_for_status()

    async def peers(self) -> list[str]:
        return await grape_lookup(self.grape_url, self._client)

    async def _announce_forever(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.announce()
            except Exception as exc:
                log.warning("grape announce failed: %s", exc)


async def grape_lookup(grape_url: str, client: httpx.AsyncClient | None = None, service: str = SERVICE) -> list[str]:
    """The ``host:port`` endpoints a Grape knows for ``service``."""
    own = client is None
    http = client if client is not None else httpx.AsyncClient(timeout=5.0)
    try:
        response = await http.post(f"{grape_url.rstrip('/')}/lookup", json={"data": service})
        response.raise_for_status()
        peers = response.json()
        return [str(p) for p in peers] if isinstance(peers, list) else []
    finally:
        if own:
            await http.aclose()
