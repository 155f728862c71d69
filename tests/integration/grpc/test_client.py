"""``GrpcClient``: URLs, connection failures that never hang, and clients that cannot disturb each other."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import grpc.aio
import pytest

from engine import NotConnected, OrderAccepted, PlaceOrder, Side
from tests.integration.grpc.helpers import BTC, Exchange, place, run_exchange, trader
from transports.codec.proto_codec import encode_instruments, pb
from transports.core.client import TraderClient
from transports.core.gateway import Gateway, GatewayConfig
from transports.grpc.client import GrpcClient
from transports.grpc.server import serve_grpc
from transports.grpc.settings import DEFAULT_URL, SERVICE_NAME, GrpcServerSettings, channel_target, client_url
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import TRANSPORTS, make_client

ROOT = Path(__file__).resolve().parents[3]
p, q = BTC.parse_price, BTC.parse_qty


def test_urls_and_the_default_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEX_GRPC_SERVER", raising=False)
    assert client_url() == DEFAULT_URL == "grpc://127.0.0.1:50051"
    monkeypatch.setenv("DEX_GRPC_SERVER", "grpc://10.1.2.3:6000/")
    assert client_url() == "grpc://10.1.2.3:6000" and client_url("grpc://h:1") == "grpc://h:1"
    assert channel_target("grpc://127.0.0.1:50051") == "127.0.0.1:50051"
    assert channel_target("grpc://[::1]:50051") == "[::1]:50051"
    assert channel_target("localhost:7") == "localhost:7"
    for bad in ("http://127.0.0.1:8080", "grpc://127.0.0.1", "grpc://127.0.0.1:x", "grpc://h:1/path", "grpc://:1"):
        with pytest.raises(ValueError, match="not a gRPC URL"):
            channel_target(bad)


def test_the_registry_builds_grpc_clients() -> None:
    assert "grpc" in TRANSPORTS
    client = make_client("grpc", "alice", "grpc://127.0.0.1:1")
    assert isinstance(client, GrpcClient) and isinstance(client, TraderClient)
    assert (client.trader, client.url, client.transport) == ("alice", "grpc://127.0.0.1:1", "grpc")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(30)
def test_a_closed_port_or_a_wrong_url_is_not_connected() -> None:
    async def scenario() -> None:
        for url in (f"grpc://127.0.0.1:{closed_port()}", "http://127.0.0.1:8080"):
            client = GrpcClient("alice", url, connect_timeout=10)
            with pytest.raises(NotConnected, match=f"not connected to the gRPC server at {url}"):
                await client.connect()
            with pytest.raises(NotConnected):
                await client.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, 1, 1)])
            await client.close()

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_a_server_that_never_answers_is_not_connected_after_the_connect_timeout() -> None:
    async def scenario() -> None:
        with socket.socket() as silent:  # accepts TCP connections (backlog) and never speaks HTTP/2
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            client = GrpcClient("alice", f"grpc://127.0.0.1:{silent.getsockname()[1]}", connect_timeout=0.5)
            with pytest.raises(NotConnected, match=r"DEADLINE_EXCEEDED|UNAVAILABLE"):
                await client.connect()

    asyncio.run(scenario())


def test_pending_submits_fail_with_not_connected_when_the_server_goes_away() -> None:
    async def scenario() -> None:
        gateway = Gateway(config=GatewayConfig(journal=None))
        await gateway.start(DEFAULT_INSTRUMENTS)
        server = serve_grpc(gateway, GrpcServerSettings(port=0, graceful_shutdown_s=1.0))
        url = await server.__aenter__()
        try:
            async with GrpcClient("alice", url) as alice:
                assert isinstance(
                    (await alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, q("1"), p("29000.00"))]))[0][0], OrderAccepted
                )
                await server.__aexit__(None, None, None)
                with pytest.raises(NotConnected):
                    await alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, q("1"), p("29000.00"))])
                with pytest.raises(NotConnected):
                    await alice.stats()
        finally:
            await gateway.stop()

    asyncio.run(scenario())


def test_a_client_that_disconnects_mid_stream_does_not_disturb_another() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("bob") as bob:
            steady = asyncio.get_running_loop().create_task(submit_steadily(bob, 100))
            # alice pipelines 50 batches and hangs up without reading a single reply.
            channel = ex.channel()
            call = ex.trade(channel)(metadata=trader("alice"))
            for i in range(50):
                await call.write(pb.CommandBatch(batch_id=i + 1, commands=[place(price="28000.00") for _ in range(20)]))
            await channel.close()
            assert await steady == 100
            assert len(ex.gateway.open_orders("bob")) == 100
            # What alice's stream handed to the gateway was applied; the stream's server side is gone.
            await asyncio.sleep(0.2)
            assert ex.gateway.stats.by_transport["grpc"] == 100 + len(ex.gateway.open_orders("alice"))
            assert len(ex.gateway.open_orders("alice")) % 20 == 0
            assert not ex.gateway.queue_depth

    run_exchange(scenario)


async def submit_steadily(client: GrpcClient, count: int) -> int:
    done = 0
    for i in range(count):
        replies = await client.submit([PlaceOrder(client.trader, f"b{i}", "BTC-USD", Side.BUY, q("0.0001"), p("29000.00"))])
        assert isinstance(replies[0][0], OrderAccepted) and replies[0][0].client_order_id == f"b{i}"
        done += 1
        await asyncio.sleep(0)
    return done


KILLED_CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from engine import PlaceOrder, Side
    from transports.grpc.client import GrpcClient

    async def main():
        async with GrpcClient("alice", sys.argv[1]) as alice:
            await alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, 1, 2_900_000)])
            print("streaming", flush=True)
            while True:
                await asyncio.gather(*(alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, 1, 2_900_000)] * 10) for _ in range(8)))

    asyncio.run(main())
    """
)


def test_a_client_process_killed_mid_stream_does_not_disturb_another() -> None:
    async def scenario(ex: Exchange) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", KILLED_CLIENT, ex.url, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        try:
            assert process.stdout is not None
            assert (await asyncio.wait_for(process.stdout.readline(), 30)).strip() == b"streaming"
            async with ex.client("bob") as bob:
                steady = asyncio.get_running_loop().create_task(submit_steadily(bob, 200))
                await asyncio.sleep(0.05)
                process.kill()
                await process.wait()
                assert await steady == 200
                assert (await bob.stats())["orders"] >= 201
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    run_exchange(scenario)


@pytest.mark.timeout(30)
def test_a_stream_whose_replies_stop_coming_is_not_connected_after_the_timeout() -> None:
    async def scenario() -> None:
        async def get_instruments(request: bytes, context: object) -> pb.InstrumentList:
            return encode_instruments(DEFAULT_INSTRUMENTS)

        async def trade(requests: object, context: grpc.aio.ServicerContext[bytes, pb.ReplyBatch]) -> None:
            while await context.read() is not grpc.aio.EOF:
                pass  # reads everything, answers nothing

        mute = grpc.aio.server()
        mute.add_registered_method_handlers(
            SERVICE_NAME,
            {
                "GetInstruments": grpc.unary_unary_rpc_method_handler(get_instruments, None, pb.InstrumentList.SerializeToString),
                "Trade": grpc.stream_stream_rpc_method_handler(trade, None, pb.ReplyBatch.SerializeToString),
            },
        )
        port = mute.add_insecure_port("127.0.0.1:0")
        await mute.start()
        try:
            async with GrpcClient("alice", f"grpc://127.0.0.1:{port}", timeout=0.3) as alice:
                order = PlaceOrder("alice", "", "BTC-USD", Side.BUY, q("1"), p("29000.00"))
                results = await asyncio.gather(alice.submit([order]), alice.submit([order]), return_exceptions=True)
                assert all(isinstance(r, NotConnected) for r in results), results
                with pytest.raises(NotConnected, match="no reply"):
                    await alice.submit([order])  # a new stream, just as mute
        finally:
            await mute.stop(None)

    asyncio.run(scenario())
