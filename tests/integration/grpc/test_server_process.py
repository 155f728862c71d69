"""``python -m transports.grpc.server`` (``dex-grpc``) as a process: options, start-up line, SIGTERM, kill -9.

The crash test is the durability promise seen through a pipelined stream:
with ``--fsync batch`` a ``ReplyBatch`` is written only after its commands
are on disk, so every order a client saw accepted is there, exactly once,
after ``kill -9`` and a restart on the same journal.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.grpc_bench import LocalGrpcServer, ServerStartError
from engine import NotConnected, OrderAccepted, PlaceOrder, Side
from transports.grpc.client import GrpcClient
from transports.instruments import DEFAULT_INSTRUMENTS

BTC = DEFAULT_INSTRUMENTS[0]
SERVER = [sys.executable, "-m", "transports.grpc.server"]
ROOT = Path(__file__).resolve().parents[3]


def test_the_command_line_has_the_options_of_turbo_dex_and_refuses_bad_ones() -> None:
    out = subprocess.run([*SERVER, "--help"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    for flag in ("--host", "--port", "--buffer", "--journal", "--no-journal", "--fsync", "--symbols", "--allow-admin", "--log-level"):
        assert flag in out
    assert "50051" in out and "127.0.0.1" in out
    for args, message in (
        (["--symbols", "BTC-USD,NOPE"], "unknown symbol(s) NOPE"),
        (["--port", "70000"], "--port"),
        (["--buffer", "0"], "--buffer"),
    ):
        bad = subprocess.run([*SERVER, *args], capture_output=True, text=True, check=False, cwd=ROOT)
        assert bad.returncode == 2 and message in bad.stderr
    console = Path(sys.executable).with_name("dex-grpc")
    assert console.exists(), "the dex-grpc console script is installed by `make setup`"


def test_a_journal_it_cannot_replay_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    journal.write_bytes(b"not a journal at all")
    result = subprocess.run(
        [*SERVER, "--port", "0", "--journal", str(journal)], capture_output=True, text=True, check=False, timeout=60, cwd=ROOT
    )
    assert result.returncode == 1 and "dex-grpc: cannot start:" in result.stderr
    assert "listening" not in result.stdout


def test_a_port_in_use_is_a_clear_start_failure(tmp_path: Path) -> None:
    with LocalGrpcServer(tmp_path / "first") as first:
        port = first.url.rsplit(":", 1)[1]
        result = subprocess.run(
            [*SERVER, "--port", port, "--no-journal"], capture_output=True, text=True, check=False, timeout=60, cwd=ROOT
        )
        assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    with pytest.raises(ServerStartError):
        LocalGrpcServer(tmp_path / "bad", ("--symbols", "NOPE")).start()


def test_start_up_line_and_a_clean_sigterm_with_open_streams(tmp_path: Path) -> None:
    server = LocalGrpcServer(tmp_path, ("--symbols", "ETH-USD")).start()
    try:
        assert server.url.startswith("grpc://127.0.0.1:")

        async def scenario() -> None:
            async with GrpcClient("alice", server.url) as alice:
                assert [i.symbol for i in await alice.instruments()] == ["ETH-USD"]
                placed = await alice.submit([PlaceOrder("alice", "", "ETH-USD", Side.BUY, 1000, 190_000)])
                assert isinstance(placed[0][0], OrderAccepted)
                stream = alice.market_data(["ETH-USD"])
                await anext(stream)
                assert server.process is not None
                server.process.send_signal(signal.SIGTERM)
                with pytest.raises(NotConnected):
                    while True:
                        await asyncio.wait_for(anext(stream), 20)

        asyncio.run(scenario())
        assert server.process is not None and server.process.wait(30) == 0
    finally:
        server.stop()
    lines = server.log_path.read_text().splitlines()
    assert lines[0].startswith("authentication is off: any local client may act as any trader (loopback only")
    assert lines[1].startswith(
        f"dex-grpc listening on {server.url} (journal {server.journal_path} (fsync batch, 0 commands recovered); symbols ETH-USD;"
    )
    assert lines[-1].startswith("dex-grpc stopped (engine seq ")


def _order(trader: str, n: int) -> PlaceOrder:
    """A resting order that never crosses: buys below 30000, sells above (all inside the 10% band)."""
    side = Side.BUY if n % 2 else Side.SELL
    ticks = BTC.parse_price("29000.00" if side is Side.BUY else "31000.00") + (n % 997) * (-1 if side is Side.BUY else 1)
    return PlaceOrder(trader, f"{trader}-{n}", BTC.symbol, side, BTC.parse_qty("0.0001") * (1 + n % 7), ticks)


async def _load_until_killed(server: LocalGrpcServer, kill_after: int) -> dict[int, tuple[str, str]]:
    """Three traders pipeline batches (4 in flight each) until ``kill_after`` orders were accepted; then kill -9."""
    accepted: dict[int, tuple[str, str]] = {}

    async def pipeline(client: GrpcClient, first: int) -> None:
        n = first
        while True:
            batch = [_order(client.trader, n + k) for k in range(25)]
            n += 4 * len(batch)
            try:
                replies = await client.submit(batch)
            except NotConnected:
                return
            for events in replies:
                for event in events:
                    if isinstance(event, OrderAccepted):
                        assert event.order_id not in accepted, "the engine gave out one order id twice"
                        accepted[event.order_id] = (event.trader, event.client_order_id)

    async def trader_loop(trader: str) -> None:
        async with GrpcClient(trader, server.url) as client:
            await asyncio.gather(*(pipeline(client, 25 * i) for i in range(4)))

    async def killer() -> None:
        while len(accepted) < kill_after:
            await asyncio.sleep(0.001)
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)  # mid-load: other batches are in flight

    await asyncio.gather(killer(), *(trader_loop(t) for t in ("alice", "bob", "carol")))
    return accepted


@pytest.mark.slow
def test_every_accepted_order_survives_kill_9_exactly_once(tmp_path: Path) -> None:
    server = LocalGrpcServer(tmp_path).start()
    try:
        accepted = asyncio.run(_load_until_killed(server, kill_after=1500))
        server.stop()
    finally:
        server.stop()
    assert len(accepted) >= 1500

    restarted = LocalGrpcServer(tmp_path).start()
    try:

        async def check() -> None:
            clients = {t: GrpcClient(t, restarted.url) for t in ("alice", "bob", "carol")}
            for client in clients.values():
                await client.connect()
            stats = await clients["alice"].stats()
            assert stats["recovered_commands"] >= len(accepted)
            for order_id, (trader, client_order_id) in accepted.items():
                view = await clients[trader].order(order_id)
                assert view is not None and view.client_order_id == client_order_id
            for client in clients.values():
                await client.close()

        asyncio.run(check())
    finally:
        restarted.stop()
    assert "commands recovered" in restarted.log_tail(50)
