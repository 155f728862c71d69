"""End-to-end ZeroMQ benchmark: a real ``dex-zmq`` and the ``dex-trader`` harness on this machine.

Run ``python -m bench.zmq_bench --out reports/bench-zmq.json`` (that is
``make bench-zmq``); ``--quick`` is a smoke test of a few seconds.

Two modes, each repeated ``--repeat`` times (interleaved, so that noise on this
shared machine hits both alike), each run on a freshly started server
(``dex-zmq --port 0 --pub-port 0``, journal in a temporary directory, default
fsync policy: every reply waits for its group's fsync; ``--server-arg
--fsync=interval`` measures without that wait) driven by
``dex-trader --transport zmq`` in its own process(es):

* ``batch``: batches of ``--batch`` commands, closed loop, several traders,
  each with its own DEALER → commands/s acknowledged end to end (every
  command's reply is matched by batch id; nothing counts a bare send).
* ``single``: one command per submit, open loop at ``--rate`` commands/s with
  intended start times (latency corrected for coordinated omission) →
  p50/p99 round trip.

Each run's full harness JSON is kept in the report, with the medians and the
targets (batch >= 250,000 commands/s; single p99 <= 400 µs at 1,000/s).

``--mechanics`` (on by default; ``--no-mechanics`` skips it) first measures the
socket mechanics the transport chose, on an echo of 64-byte frames between two
processes: a sync socket drained from ``loop.add_reader`` (``LoopSocket``, what
the server and client use) against ``zmq.asyncio``, once on the server side
(against a plain blocking client) and once on the client side (against a sync
server) → round-trip p50/p99 one at a time, and messages/s with 64 in flight.
Server and client share this machine's cores: the figures are what this
machine does, nothing is extrapolated. The server is stopped by its PID after
each run (the harness process exits by itself).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import uvloop
import zmq
import zmq.asyncio

from bench.e2e import benchmark_of, main
from transports.core.loop_socket import LoopSocket

BENCHMARK = benchmark_of("zmq")  # server, targets and notes: transports/zmq/descriptor.py
TARGET_BATCH_PER_S = BENCHMARK.target_batch_per_s
TARGET_SINGLE_P99_US = BENCHMARK.target_single_p99_us


# -------------------------------------------------------------- mechanics
_MESSAGE = b"x" * 64
_ROUND_TRIPS = 20_000
_PIPELINED = 100_000
_WINDOW = 64
_STOP = b"stop"


async def _echo_asyncio(endpoint: str, ready: EventType) -> None:
    context = zmq.asyncio.Context()
    router = context.socket(zmq.ROUTER)
    router.bind(endpoint)
    ready.set()
    while True:
        frames = await router.recv_multipart()
        if frames[1] == _STOP:
            break
        await router.send_multipart(frames)
    router.close(0)
    context.term()


async def _echo_sync(endpoint: str, ready: EventType) -> None:
    context: zmq.Context[Any] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.bind(endpoint)
    done = asyncio.get_running_loop().create_future()

    def drain() -> None:
        while True:
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if frames[1] == _STOP:
                if not done.done():
                    done.set_result(None)
                return
            router.send_multipart(frames, zmq.NOBLOCK)
            reader.rearm()

    reader = LoopSocket(router, drain)
    ready.set()
    await done
    reader.close(0)
    context.term()


def _echo_server(kind: str, endpoint: str, ready: EventType) -> None:
    uvloop.run(_echo_asyncio(endpoint, ready) if kind == "zmq.asyncio" else _echo_sync(endpoint, ready))


def _summary(latencies_ns: list[int], pipelined_s: float) -> dict[str, float]:
    latencies_ns.sort()
    return {
        "p50_us": round(latencies_ns[len(latencies_ns) // 2] / 1000, 1),
        "p99_us": round(latencies_ns[int(len(latencies_ns) * 0.99)] / 1000, 1),
        "pipelined_msgs_per_s": round(_PIPELINED / pipelined_s),
    }


def _blocking_client(endpoint: str) -> dict[str, float]:
    context: zmq.Context[Any] = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.connect(endpoint)
    for _ in range(1000):
        dealer.send(_MESSAGE)
        dealer.recv()
    latencies = []
    for _ in range(_ROUND_TRIPS):
        started = time.perf_counter_ns()
        dealer.send(_MESSAGE)
        dealer.recv()
        latencies.append(time.perf_counter_ns() - started)
    started_s = time.perf_counter()
    sent = received = 0
    while received < _PIPELINED:
        while sent < _PIPELINED and sent - received < _WINDOW:
            dealer.send(_MESSAGE)
            sent += 1
        dealer.recv()
        received += 1
    elapsed = time.perf_counter() - started_s
    dealer.send(_STOP)
    dealer.close(0)
    context.term()
    return _summary(latencies, elapsed)


async def _loop_client(endpoint: str, kind: str) -> dict[str, float]:
    """The client side in an event loop: the same echo, through ``zmq.asyncio`` or a ``LoopSocket``."""
    waiting: deque[asyncio.Future[bytes]] = deque()
    loop = asyncio.get_running_loop()
    if kind == "zmq.asyncio":
        acontext = zmq.asyncio.Context()
        adealer = acontext.socket(zmq.DEALER)
        adealer.connect(endpoint)

        async def read_forever() -> None:
            while True:
                message = await adealer.recv()
                waiting.popleft().set_result(message)

        reading = asyncio.create_task(read_forever())

        async def send(message: bytes) -> Awaitable[bytes]:
            future = loop.create_future()
            waiting.append(future)
            await adealer.send(message)
            return future

        def close() -> None:
            reading.cancel()
            adealer.close(0)
            acontext.term()
    else:
        context: zmq.Context[Any] = zmq.Context()
        dealer = context.socket(zmq.DEALER)
        dealer.connect(endpoint)

        def drain() -> None:
            while True:
                try:
                    message = dealer.recv(zmq.NOBLOCK)
                except zmq.Again:
                    return
                waiting.popleft().set_result(message)

        reader = LoopSocket(dealer, drain)

        async def send(message: bytes) -> Awaitable[bytes]:
            future = loop.create_future()
            waiting.append(future)
            dealer.send(message, zmq.NOBLOCK)
            reader.rearm()
            return future

        def close() -> None:
            reader.close(0)
            context.term()

    for _ in range(1000):
        await (await send(_MESSAGE))
    latencies = []
    for _ in range(_ROUND_TRIPS):
        started = time.perf_counter_ns()
        await (await send(_MESSAGE))
        latencies.append(time.perf_counter_ns() - started)
    started_s = time.perf_counter()
    in_flight: deque[Awaitable[bytes]] = deque()
    for _ in range(_PIPELINED):
        if len(in_flight) >= _WINDOW:
            await in_flight.popleft()
        in_flight.append(await send(_MESSAGE))
    while in_flight:
        await in_flight.popleft()
    elapsed = time.perf_counter() - started_s
    await send(_STOP)
    await asyncio.sleep(0.05)
    close()
    return _summary(latencies, elapsed)


def _echo(server_kind: str, client: Callable[[str], dict[str, float]]) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    server = context.Process(target=_echo_server, args=(server_kind, endpoint, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the echo server did not start")
        return client(endpoint)
    finally:
        server.join(10)
        if server.is_alive():
            server.kill()


def mechanics() -> dict[str, Any]:
    """Sync sockets on ``loop.add_reader`` against ``zmq.asyncio``, on each side of an echo."""
    out: dict[str, Any] = {"message_bytes": len(_MESSAGE), "round_trips": _ROUND_TRIPS, "pipelined": _PIPELINED, "window": _WINDOW}
    for kind in ("sync add_reader", "zmq.asyncio"):
        out[f"server: {kind}"] = _echo(kind, _blocking_client)
        out[f"client: {kind}"] = _echo("sync add_reader", lambda endpoint, kind=kind: uvloop.run(_loop_client(endpoint, kind)))  # type: ignore[misc]
    for side in ("server", "client"):
        fast, slow = out[f"{side}: sync add_reader"], out[f"{side}: zmq.asyncio"]
        out[f"{side}: pipelined speed-up"] = round(fast["pipelined_msgs_per_s"] / slow["pipelined_msgs_per_s"], 2)
    return out


def run(argv: Sequence[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    measure_mechanics = "--no-mechanics" not in args
    args = [a for a in args if a not in ("--mechanics", "--no-mechanics")]
    found = mechanics() if measure_mechanics else None
    if found is not None:
        for name, value in found.items():
            if isinstance(value, dict):
                rate = value["pipelined_msgs_per_s"]
                print(f"{name:<26} p50 {value['p50_us']:>7,.1f} µs  p99 {value['p99_us']:>8,.1f} µs  {rate:>9,} msgs/s")
        server, client = found["server: pipelined speed-up"], found["client: pipelined speed-up"]
        print(f"pipelined speed-up of sync add_reader: server {server}x, client {client}x")
    code = main(BENCHMARK, args, __doc__.split("\n\n")[0] if __doc__ else None)
    if found is not None:
        out = _out_path(args)
        report = json.loads(out.read_text(encoding="utf-8"))
        report["mechanics"] = found
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return code


def _out_path(args: Sequence[str]) -> Path:
    for i, arg in enumerate(args):
        if arg == "--out" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--out="):
            return Path(arg.split("=", 1)[1])
    return BENCHMARK.default_out


if __name__ == "__main__":
    raise SystemExit(run())
