"""Wire ceilings: each transport library's trivial echo server, with our payloads, in the same run as the report.

A transport's figure means little alone: ``make bench`` sets it beside what
its own wire does with no exchange behind it. For each wire, a server process
answers every request at once with a canned reply (no parsing, no engine), and
a client process (this one) sends the same bytes our clients send:

* ``batch``: 4 clients in a closed loop, each request a lean ``OrderBatch`` of
  ``--batch`` orders and each reply an ``OutcomeBatch`` of the size our server
  answers with: throughput in orders/s (requests/s x batch);
* ``single``: 1 client, one order per request: the round-trip p50/p99 in µs.

Wires: raw asyncio TCP (length-prefixed frames), ZeroMQ ROUTER/DEALER, a gRPC
bidirectional stream, FastAPI on uvicorn (POST, the same HTTP/1.1 client as
ours), a NATS request (through a nats-server), a RabbitMQ RPC (persistent
message with a publisher confirm, as ours). The brokered ones need their
broker running: ``nats`` starts its own nats-server; ``amqp`` uses the broker
at ``$DEX_AMQP_URL`` (``dex-bench`` starts one).

``python -m bench.wire_ceiling --wire zmq`` prints one JSON result;
``serve WIRE`` is the server side (a subprocess, stopped by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi import Request as HttpRequest
from starlette.responses import Response

from bench.e2e import ROOT
from engine import AddInstrument, Engine
from transports.codec import lean
from transports.core.histogram import Histogram
from transports.core.workload import OrderFlow
from transports.instruments import DEFAULT_INSTRUMENTS

WIRES = ("tcp", "zmq", "grpc", "http", "nats", "amqp")
_FRAME = struct.Struct(">I")
_READY = "READY "
Request = Callable[[bytes], Awaitable[bytes]]
Close = Callable[[], Awaitable[object]]
_ALIVE: list[object] = []  # servers, sockets and connections the serve process keeps (a collected gRPC server stops)


def payloads(batch: int) -> tuple[bytes, bytes]:
    """A lean request of ``batch`` orders and the size-faithful reply our server gives it."""
    commands = OrderFlow(42, "ceiling", DEFAULT_INSTRUMENTS).batch(batch)
    engine = Engine()
    for instrument in DEFAULT_INSTRUMENTS:
        engine.handle(AddInstrument(instrument))
    replies = [engine.handle(c) for c in commands]
    return lean.encode_orders(commands), lean.encode_outcomes(commands, replies)


# ------------------------------------------------------------------ servers
async def _serve_tcp(reply: bytes) -> str:
    framed = _FRAME.pack(len(reply)) + reply

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = _FRAME.unpack(await reader.readexactly(4))
                await reader.readexactly(size)
                writer.write(framed)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    _ALIVE.append(server)
    return f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _serve_zmq(reply: bytes) -> str:
    import zmq

    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    loop = asyncio.get_running_loop()

    def readable() -> None:
        while True:
            try:
                peer, _ = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            sock.send_multipart([peer, reply])

    _ALIVE.append(sock)
    loop.add_reader(int(sock.getsockopt(zmq.FD)), readable)
    loop.call_soon(readable)
    return f"tcp://127.0.0.1:{port}"


async def _serve_grpc(reply: bytes) -> str:
    import grpc
    import grpc.aio

    async def echo(requests: Any, context: Any) -> Any:
        async for _ in requests:
            yield reply

    handler = grpc.method_handlers_generic_handler("ceiling.Echo", {"Echo": grpc.stream_stream_rpc_method_handler(echo)})
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    _ALIVE.append(server)
    return f"127.0.0.1:{port}"


async def _serve_http(reply: bytes) -> str:
    import uvicorn
    from starlette.responses import Response

    app = FastAPI()

    @app.post("/echo")
    async def echo(request: HttpRequest) -> Response:
        await request.body()
        return Response(reply, media_type="application/x-protobuf")

    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, loop="uvloop", http="httptools", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    _ALIVE.append(asyncio.get_running_loop().create_task(server.serve(sockets=[sock])))
    await asyncio.sleep(0.5)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _serve_nats(reply: bytes, url: str) -> str:
    import nats

    nc = await nats.connect(url)

    async def echo(msg: Any) -> None:
        await nc.publish(msg.reply, reply)

    await nc.subscribe("ceiling.echo", cb=echo, pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)
    await nc.flush()
    _ALIVE.append(nc)
    return url


async def _serve_amqp(reply: bytes, url: str) -> str:
    import aio_pika

    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=False)
    await channel.set_qos(prefetch_count=256)
    queue = await channel.declare_queue("ceiling-echo", durable=True, auto_delete=False)
    await queue.purge()

    async def echo(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await channel.default_exchange.publish(
            aio_pika.Message(reply, correlation_id=message.correlation_id, delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT),
            routing_key=message.reply_to or "",
        )
        await message.ack()

    await queue.consume(echo)
    _ALIVE.append(connection)
    return url


async def serve(wire: str, batch: int, broker: str) -> None:
    _, reply = payloads(batch)
    starters: dict[str, Callable[[], Awaitable[str]]] = {
        "tcp": lambda: _serve_tcp(reply),
        "zmq": lambda: _serve_zmq(reply),
        "grpc": lambda: _serve_grpc(reply),
        "http": lambda: _serve_http(reply),
        "nats": lambda: _serve_nats(reply, broker),
        "amqp": lambda: _serve_amqp(reply, broker),
    }
    address = await starters[wire]()
    print(_READY + address, flush=True)
    await asyncio.Event().wait()


# ------------------------------------------------------------------ clients
async def _tcp_client(address: str) -> tuple[Request, Close]:
    host, port = address.removeprefix("tcp://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def request(data: bytes) -> bytes:
        writer.write(_FRAME.pack(len(data)) + data)
        (size,) = _FRAME.unpack(await reader.readexactly(4))
        return await reader.readexactly(size)

    async def close() -> None:
        writer.close()

    return request, close


async def _zmq_client(address: str) -> tuple[Request, Close]:
    import zmq
    import zmq.asyncio

    sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
    sock.connect(address)

    async def request(data: bytes) -> bytes:
        await sock.send(data)
        return bytes(await sock.recv())

    async def close() -> None:
        sock.close(0)

    return request, close


async def _grpc_client(address: str) -> tuple[Request, Close]:
    import grpc.aio

    channel = grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
    call: Any = channel.stream_stream("/ceiling.Echo/Echo")()

    async def request(data: bytes) -> bytes:
        await call.write(data)
        reply: bytes = await call.read()
        return reply

    return request, channel.close


async def _http_client(address: str) -> tuple[Request, Close]:
    from transports.core.http_wire import HttpEndpoint

    host, port = address.removeprefix("http://").split(":")
    endpoint = HttpEndpoint(host, int(port))
    headers = {"content-type": "application/x-protobuf"}

    async def request(data: bytes) -> bytes:
        _, body = await endpoint.request("POST", "/echo", headers=headers, body=data)
        return body

    async def close() -> None:
        endpoint.close()

    return request, close


async def _nats_client(address: str) -> tuple[Request, Close]:
    import nats

    nc = await nats.connect(address)

    async def request(data: bytes) -> bytes:
        return bytes((await nc.request("ceiling.echo", data, timeout=30)).data)

    return request, nc.close


async def _amqp_client(address: str) -> tuple[Request, Close]:
    import aio_pika

    connection = await aio_pika.connect_robust(address)
    channel = await connection.channel(publisher_confirms=True)
    replies = await channel.declare_queue(exclusive=True, auto_delete=True)
    waiting: dict[str, asyncio.Future[bytes]] = {}

    async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = waiting.pop(message.correlation_id or "", None)
        if future is not None:
            future.set_result(message.body)

    await replies.consume(on_reply, no_ack=True)
    counter = iter(range(1 << 62))

    async def request(data: bytes) -> bytes:
        corr = str(next(counter))
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        waiting[corr] = future
        message = aio_pika.Message(data, correlation_id=corr, reply_to=replies.name, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key="ceiling-echo")
        return await future

    return request, connection.close


CLIENTS: dict[str, Callable[[str], Awaitable[tuple[Request, Close]]]] = {
    "tcp": _tcp_client,
    "zmq": _zmq_client,
    "grpc": _grpc_client,
    "http": _http_client,
    "nats": _nats_client,
    "amqp": _amqp_client,
}


async def drive(wire: str, address: str, data: bytes, clients: int, seconds: float, warmup: float) -> dict[str, Any]:
    """``clients`` closed loops for ``warmup + seconds``; requests/s and latency over the measured part."""
    opened = [await CLIENTS[wire](address) for _ in range(clients)]
    latency = Histogram()
    done = 0
    start = time.monotonic()
    measure_from = start + warmup
    end = measure_from + seconds

    async def loop(request: Request) -> None:
        nonlocal done
        while (sent := time.monotonic()) < end:
            await request(data)
            if sent >= measure_from:
                latency.record(int((time.monotonic() - sent) * 1e6))
                done += 1

    await asyncio.gather(*(loop(request) for request, _ in opened))
    for _, close in opened:
        await close()
    return {"requests_per_s": done / seconds, "latency_us": latency.summary(), "requests": done}


# --------------------------------------------------------------------- main
class EchoServer:
    """``python -m bench.wire_ceiling serve WIRE`` as a subprocess, stopped by PID."""

    def __init__(self, wire: str, batch: int, broker: str) -> None:
        command = [sys.executable, "-m", "bench.wire_ceiling", "serve", wire, "--batch", str(batch), "--broker", broker]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(_READY):
            self.stop()
            raise RuntimeError(f"the {wire} echo server did not start (exit {self.process.poll()})")
        self.address = line[len(_READY) :].strip()

    def stop(self) -> None:
        from transports.core.local_server import terminate

        terminate(self.process)  # type: ignore[arg-type]


def measure(wire: str, batch: int, seconds: float, warmup: float, broker: str = "") -> dict[str, Any]:
    """Batch throughput (4 clients) and single-order round trip (1 client) of ``wire``'s echo."""
    result: dict[str, Any] = {"wire": wire, "batch": batch}
    for mode, size, clients in (("batch", batch, 4), ("single", 1, 1)):
        request, _ = payloads(size)
        server = EchoServer(wire, size, broker)
        try:
            point = asyncio.run(drive(wire, server.address, request, clients, seconds, warmup))
        finally:
            server.stop()
        point["orders_per_s"] = point["requests_per_s"] * size
        point["request_bytes"] = len(request)
        result[mode] = point
    return result


def _nats_broker(workdir: Path) -> Any:
    from transports.nats.local import NatsServerProcess

    return NatsServerProcess(workdir / "nats")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wire-ceiling", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("command", nargs="?", default="measure", choices=("measure", "serve"))
    p.add_argument("wire_name", nargs="?", default="")
    p.add_argument("--wire", default="", help=f"one of {', '.join(WIRES)}")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--broker", default="")
    args = p.parse_args(argv)
    wire = args.wire_name or args.wire
    if wire not in WIRES:
        p.error(f"--wire must be one of {', '.join(WIRES)}")
    if args.command == "serve":
        if wire == "grpc":
            asyncio.run(serve(wire, args.batch, args.broker))  # grpc.aio runs on the default loop, as dex-grpc does
        else:
            import uvloop

            uvloop.run(serve(wire, args.batch, args.broker))
        return 0
    broker = args.broker or (os.environ.get("DEX_AMQP_URL", "") if wire == "amqp" else "")
    if wire == "nats" and not broker:
        with tempfile.TemporaryDirectory(prefix="wire-ceiling-") as tmp, _nats_broker(Path(tmp)) as nats_server:
            print(json.dumps(measure(wire, args.batch, args.duration, args.warmup, nats_server.url)))
        return 0
    print(json.dumps(measure(wire, args.batch, args.duration, args.warmup, broker)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
