"""The journal in the lean format: the bytes a client sent, one record per submission, and older journals still read."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine import AddInstrument, CancelOrder, Engine, Instrument, MassCancel, PlaceOrder, ReplaceOrder, Side
from transports.codec import lean
from transports.codec.compact import encode_compact
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import MAGIC, TRADER_BATCH, frame, journal_commands, read_records
from transports.core.requests import RequestHandler
from transports.core.workload import OrderFlow

INSTRUMENT = Instrument.create("BTC-USD", "0.01", "0.001")


async def _gateway(path: Path) -> Gateway:
    gateway = Gateway(config=GatewayConfig(journal=str(path)))
    await gateway.start([INSTRUMENT])
    return gateway


def test_a_lean_batch_is_journaled_as_sent_and_a_restart_rebuilds_the_same_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"

    async def scenario() -> tuple[str, int]:
        gateway = await _gateway(path)
        requests = RequestHandler(gateway, "zmq")
        for trader in ("alice", "bob"):
            data = lean.encode_orders(OrderFlow(7, trader, [INSTRUMENT]).batch(500))
            assert len(lean.decode_outcomes(await requests.orders(data, trader))) == 500
        await gateway.submit([CancelOrder("alice", 0, "alice-3"), MassCancel("bob", "BTC-USD")], "grpc")  # no record held
        state = gateway.engine.state_hash(), gateway.engine.seq
        await gateway.stop()
        records = read_records(path).records
        assert sum(1 for r in records if r[0] == TRADER_BATCH) == 2  # one record per lean submission, not per command
        again = await _gateway(path)
        restarted = again.engine.state_hash(), again.engine.seq
        assert again.recovered_commands == 1 + 1000 + 2
        await again.stop()
        assert restarted == state
        return state

    asyncio.run(scenario())


def test_a_journal_written_before_the_lean_format_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    commands = [
        AddInstrument(INSTRUMENT),
        PlaceOrder("alice", "a1", "BTC-USD", Side.SELL, 5, 100),
        PlaceOrder("bob", "b1", "BTC-USD", Side.BUY, 3, 100),
        ReplaceOrder("alice", 1, 101, 0, "BTC-USD"),
        CancelOrder("bob", 0, "b1"),
    ]
    path.write_bytes(MAGIC + b"".join(frame(b"C" + encode_compact(c)) for c in commands))
    expected = Engine()
    for command in commands:
        expected.handle(command)

    async def scenario() -> None:
        gateway = await _gateway(path)
        assert gateway.recovered_commands == len(commands)
        assert gateway.engine.state_hash() == expected.state_hash()
        await gateway.submit([PlaceOrder("carol", "c1", "BTC-USD", Side.BUY, 2, 101)], "http")
        await gateway.stop()
        assert list(journal_commands(read_records(path).records))[: len(commands)] == commands

    asyncio.run(scenario())
