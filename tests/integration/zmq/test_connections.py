"""Connections: no server means NotConnected quickly; a client that vanishes mid-stream disturbs nobody."""

from __future__ import annotations

import asyncio
import time

import pytest
import zmq

from engine import NotConnected, OrderAccepted, Side
from tests.integration.zmq.conftest import LiveZmqServer, StartServer, run
from tests.integration.zmq.helpers import BTC, dealer, hello, order
from traders.harness.server import free_port
from transports.codec.proto_codec import encode_commands, pb
from transports.registry import make_client
from transports.zmq.client import ZmqClient


def test_no_server_is_not_connected_quickly() -> None:
    client = ZmqClient("alice", f"zmq://127.0.0.1:{free_port()}", connect_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(NotConnected) as caught:
        run(client.connect)
    assert time.monotonic() - started < 3
    assert "not connected to the ZeroMQ server at zmq://127.0.0.1:" in caught.value.message


def test_an_url_of_another_transport_is_not_connected() -> None:
    with pytest.raises(NotConnected) as caught:
        run(make_client("zmq", "alice", "http://127.0.0.1:8080").connect)
    assert "not a ZeroMQ URL" in caught.value.message


def test_the_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, server: LiveZmqServer) -> None:
    monkeypatch.setenv("DEX_ZMQ_SERVER", server.url)

    async def scenario() -> None:
        async with make_client("zmq", "alice", None) as alice:
            assert isinstance(alice, ZmqClient) and alice.url == server.url
            assert alice.pub_endpoint == server.pub_endpoint

    run(scenario)


def test_a_client_that_disappears_mid_stream_does_not_disturb_another(server: LiveZmqServer) -> None:
    lookup = {BTC.symbol: BTC}.get

    async def scenario() -> None:
        async with make_client("zmq", "steady", server.url) as steady:

            async def keep_trading() -> int:
                done = 0
                for i in range(100):
                    replies = await steady.submit([order("steady", f"s{i}-{j}", Side.BUY, "0.01", "29000.00") for j in range(20)])
                    assert all(isinstance(r[0], OrderAccepted) for r in replies)
                    done += len(replies)
                return done

            async def vanish(k: int) -> None:
                # Many batches in flight, then gone before reading a single reply.
                sock = dealer(server.orders_endpoint)
                hello(sock, f"ghost-{k}")
                for b in range(50):
                    commands = [order("ghost", f"g{k}-{b}-{j}", Side.SELL, "0.01", "31000.00") for j in range(100)]
                    sock.send(encode_commands(commands, lookup, b + 1).SerializeToString())
                sock.close(linger=0)
                await asyncio.sleep(0)

            trading = asyncio.create_task(keep_trading())
            for k in range(5):
                await vanish(k)
                await asyncio.sleep(0.01)
            assert await asyncio.wait_for(trading, 60) == 2000
            stats = await steady.stats()
            assert stats["orders"] <= 2000 + 5 * 50 * 100

    run(scenario)
    # and the server still answers a newcomer
    sock = dealer(server.orders_endpoint)
    try:
        sock.send_multipart([b"ping", b"p"])
        assert sock.recv_multipart() == [b"ping", b"p"]
    finally:
        sock.close()


def test_a_client_that_does_not_read_does_not_block_another(start_server: StartServer) -> None:
    # Small queues and kernel buffers on both ends, so that TCP cannot absorb the replies the lazy client leaves unread.
    server = start_server(router_sndhwm=2, router_sndbuf=4096, max_outbox=5)
    lookup = {BTC.symbol: BTC}.get
    # (RCVBUF is set before connect: the kernel sizes the TCP window then.)
    lazy = dealer(server.orders_endpoint, options={zmq.RCVHWM: 1, zmq.RCVBUF: 4096})
    try:
        hello(lazy, "lazy")
        for b in range(200):
            lazy.send(
                encode_commands(
                    [order("lazy", f"l{b}-{j}", Side.SELL, "0.01", "31000.00") for j in range(50)], lookup, b + 1
                ).SerializeToString()
            )

        async def scenario() -> None:
            async with make_client("zmq", "busy", server.url) as busy:
                for i in range(50):
                    (events,) = await busy.submit([order("busy", f"b{i}", Side.BUY, "0.01", "29000.00")])
                    assert isinstance(events[0], OrderAccepted)

        run(scenario)
        # The lazy client's 200 batches may still be in the server's queue when busy is done (a loaded machine):
        # wait, bounded, until the server has had to drop some of their replies.
        deadline = time.monotonic() + 15
        while server.server is not None and server.server.dropped_replies == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.server is not None and server.server.dropped_replies > 0  # its queue, outbox and kernel buffers were full
        # the lazy client still gets its first replies, in order
        first = pb.ReplyBatch.FromString(lazy.recv())
        assert first.batch_id == 1
        # nor does it hold up the server's shutdown: unsent replies get close_linger_ms, then are dropped
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
    finally:
        lazy.close()


def test_closing_the_client_fails_what_is_in_flight(start_server: StartServer) -> None:
    server = start_server()

    async def scenario() -> None:
        client = ZmqClient("alice", server.url)
        await client.connect()
        pending = asyncio.ensure_future(client.submit([order("alice", f"a{i}", Side.BUY, "0.01", "29000.00") for i in range(5000)]))
        await asyncio.sleep(0)
        await client.close()
        with pytest.raises(NotConnected):
            await pending

    run(scenario)


def test_a_server_gone_mid_session_is_not_connected(start_server: StartServer) -> None:
    server = start_server()

    async def scenario() -> None:
        client = ZmqClient("alice", server.url, timeout=0.5)
        async with client:
            (events,) = await client.submit([order("alice", "a1", Side.BUY, "0.01", "29000.00")])
            assert isinstance(events[0], OrderAccepted)
            await asyncio.get_running_loop().run_in_executor(None, server.stop)
            with pytest.raises(NotConnected):
                await client.submit([order("alice", "a2", Side.BUY, "0.01", "29000.00")])

    run(scenario)


def test_ipv6_loopback(start_server: StartServer) -> None:
    server = start_server(host="::1")
    assert server.url.startswith("zmq://[::1]:")

    async def scenario() -> None:
        async with make_client("zmq", "alice", server.url) as alice:
            (events,) = await alice.submit([order("alice", "a1", Side.BUY, "0.01", "29000.00")])
            assert isinstance(events[0], OrderAccepted)
            stream = alice.market_data(["BTC-USD"])
            assert (await stream.__anext__()).symbol == "BTC-USD"

    run(scenario)
