"""Snapshots and journal truncation: a restart rebuilds the state a full replay would, whatever step a crash interrupts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import AddInstrument, Command, Engine, Instrument
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import (
    BASE,
    CLOCK,
    MAGIC,
    SNAPSHOT_MAGIC,
    JournalCorrupt,
    JournalInUse,
    frame,
    read_records,
    snapshot_path,
)
from transports.core.workload import OrderFlow

INSTRUMENT = Instrument.create("BTC-USD", "0.01", "0.001")


class Crash(Exception):
    """Stands for the process dying at this point."""


def flows() -> list[OrderFlow]:
    return [OrderFlow(11, f"t{i}", [INSTRUMENT]) for i in range(3)]


async def start(path: Path, **config: Any) -> Gateway:
    gateway = Gateway(config=GatewayConfig(journal=str(path), **config))
    await gateway.start([INSTRUMENT])
    return gateway


async def trade(gateway: Gateway, reference: Engine, traders: list[OrderFlow], rounds: int, size: int = 100) -> None:
    """Submit the same commands to the gateway and to a reference engine (a full replay from nothing)."""
    for _ in range(rounds):
        for flow in traders:
            commands: list[Command] = flow.batch(size)
            await gateway.submit(commands)
            for command in commands:
                reference.handle(command)


def reference_engine() -> Engine:
    engine = Engine()
    engine.handle(AddInstrument(INSTRUMENT))
    return engine


def die(gateway: Gateway) -> None:
    """What the kernel does for a killed process: tasks gone, descriptors (and their locks) closed; no checkpoint."""
    for task in gateway._tasks:
        task.cancel()
    gateway._running = False
    assert gateway.journal is not None
    gateway.journal.close()


def test_snapshots_truncate_the_journal_and_a_restart_matches_a_full_replay(tmp_path: Path) -> None:
    path = tmp_path / "dex.journal"

    async def scenario() -> None:
        reference, traders = reference_engine(), flows()
        gateway = await start(path, snapshot_every=1000)
        await trade(gateway, reference, traders, rounds=12)
        assert gateway.snapshots >= 3
        assert gateway.engine.state_hash() == reference.state_hash()
        await gateway.stop()
        records = read_records(path).records
        assert records[0][0] == BASE  # the journal now starts after a snapshot
        submissions = [r for r in records if r[0] != CLOCK]  # a clock record times each group that traded
        assert len(submissions) < 1000 // 100 + 3  # only the tail: at most one snapshot period of submissions
        assert snapshot_path(path).read_bytes().startswith(SNAPSHOT_MAGIC)

        again = await start(path, snapshot_every=1000)
        assert again.engine.state_hash() == reference.state_hash()
        assert again.recovered_commands < 1000
        await trade(again, reference, traders, rounds=5)  # a second life keeps working and snapshotting
        await again.stop()
        third = await start(path, snapshot_every=0, snapshot_interval_s=0)
        assert third.engine.state_hash() == reference.state_hash()
        await third.stop()

    asyncio.run(scenario())


def test_the_journal_stays_bounded_under_a_steady_flow(tmp_path: Path) -> None:
    on, off = tmp_path / "on.journal", tmp_path / "off.journal"

    async def scenario() -> tuple[list[int], list[int]]:
        sizes: dict[Path, list[int]] = {on: [], off: []}
        for path, every in ((on, 600), (off, 0)):
            gateway = await start(path, snapshot_every=every, snapshot_interval_s=0)
            traders, reference = flows(), reference_engine()
            for _ in range(20):
                await trade(gateway, reference, traders, rounds=1)
                sizes[path].append(path.stat().st_size)
            await gateway.stop()
        return sizes[on], sizes[off]

    bounded, growing = asyncio.run(scenario())
    assert growing[-1] > 10 * growing[0]
    assert max(bounded[5:]) <= 2 * max(bounded[:5])  # after the first periods it never grows past two periods' worth
    assert bounded[-1] < growing[-1] / 4


def test_a_snapshot_is_taken_every_interval_too(tmp_path: Path) -> None:
    async def scenario() -> int:
        gateway = await start(tmp_path / "dex.journal", snapshot_every=0, snapshot_interval_s=0.05)
        reference, traders = reference_engine(), flows()
        for _ in range(4):
            await trade(gateway, reference, traders, rounds=1)
            await asyncio.sleep(0.06)
        await trade(gateway, reference, traders, rounds=1)
        await gateway.stop()
        return gateway.snapshots

    assert asyncio.run(scenario()) >= 3


# The durable steps of Journal.rotate, in order (journal.py's module docstring):
# 1 fsync journal, 2 fsync snapshot.tmp, 3 rename snapshot, 4 fsync dir, 5 fsync next, 6 rename next, 7 fsync dir.
STEPS = 7


def crash_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Make the ``step``-th fsync-or-rename of the snapshot procedure die before it happens."""
    calls = [0]
    real: dict[str, Callable[..., Any]] = {"fsync": os.fsync, "replace": os.replace}

    def wrap(name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            calls[0] += 1
            if calls[0] == step:
                raise Crash(f"died before step {step} ({name})")
            return real[name](*args)

        return call

    monkeypatch.setattr(os, "fsync", wrap("fsync"))
    monkeypatch.setattr(os, "replace", wrap("replace"))


@pytest.mark.parametrize("step", range(1, STEPS + 2))  # STEPS + 1: every step done, died before closing anything
def test_a_crash_at_any_step_of_a_snapshot_recovers_the_same_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    path = tmp_path / "dex.journal"

    async def scenario() -> None:
        reference, traders = reference_engine(), flows()
        gateway = await start(path, snapshot_every=0, snapshot_interval_s=0)
        await trade(gateway, reference, traders, rounds=3)
        gateway.write_snapshot()  # one completed snapshot first: the crash is in the second, from a segment with a base
        await trade(gateway, reference, traders, rounds=3)
        with monkeypatch.context() as patch:
            crash_at(patch, step)
            if step <= STEPS:
                with pytest.raises(Crash):
                    gateway.write_snapshot()
            else:
                gateway.write_snapshot()
        die(gateway)

        again = await start(path, snapshot_every=0, snapshot_interval_s=0)
        assert again.engine.state_hash() == reference.state_hash()
        assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.next"))
        await trade(again, reference, traders, rounds=2)
        again.write_snapshot()
        await trade(again, reference, traders, rounds=1)
        await again.stop()
        third = await start(path)
        assert third.engine.state_hash() == reference.state_hash()
        await third.stop()

    asyncio.run(scenario())


def test_a_torn_snapshot_write_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dex.journal"

    async def scenario() -> None:
        reference, traders = reference_engine(), flows()
        gateway = await start(path, snapshot_every=0, snapshot_interval_s=0)
        await trade(gateway, reference, traders, rounds=3)
        real_write = os.write

        def half_write(fd: int, data: Any) -> int:
            if bytes(data[:8]) == SNAPSHOT_MAGIC:
                real_write(fd, bytes(data[: len(data) // 2]))
                raise Crash("died mid-write of the snapshot")
            return real_write(fd, data)

        with monkeypatch.context() as patch:
            patch.setattr(os, "write", half_write)
            with pytest.raises(Crash):
                gateway.write_snapshot()
        die(gateway)
        again = await start(path)
        assert again.engine.state_hash() == reference.state_hash()
        await again.stop()

    asyncio.run(scenario())


def _snapshot_then_crash_before_truncating(path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A full journal (from an empty engine) beside a new snapshot: the state after a crash at step 5."""

    async def scenario() -> Engine:
        reference, traders = reference_engine(), flows()
        gateway = await start(path, snapshot_every=0, snapshot_interval_s=0)
        await trade(gateway, reference, traders, rounds=3)
        with monkeypatch.context() as patch:
            crash_at(patch, 5)
            with pytest.raises(Crash):
                gateway.write_snapshot()
        die(gateway)
        return reference

    return asyncio.run(scenario())


def test_a_damaged_snapshot_beside_a_complete_journal_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dex.journal"
    reference = _snapshot_then_crash_before_truncating(path, monkeypatch)
    snap = snapshot_path(path)
    data = bytearray(snap.read_bytes())
    header_length = int.from_bytes(data[len(SNAPSHOT_MAGIC) : len(SNAPSHOT_MAGIC) + 4], "big")
    body_at = len(SNAPSHOT_MAGIC) + 8 + header_length + 8  # after the header frame and the body's frame header
    data[body_at + 10] ^= 0xFF  # a flipped bit in the body: its frame's checksum no longer matches
    snap.write_bytes(bytes(data))

    async def scenario() -> None:
        gateway = await start(path)
        assert gateway.engine.state_hash() == reference.state_hash()
        assert gateway.recovered_commands == 1 + 3 * 3 * 100  # the whole journal was replayed
        await gateway.stop()

    asyncio.run(scenario())


def test_a_snapshot_whose_content_does_not_match_its_state_hash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dex.journal"
    _snapshot_then_crash_before_truncating(path, monkeypatch)
    header = b'{"seq":1,"state_hash":"' + b"0" * 64 + b'","journal_base":0,"journal_records":1,"journal_tail_crc":0}'
    snapshot_path(path).write_bytes(SNAPSHOT_MAGIC + frame(header) + frame(b'{"version":1}'))

    async def scenario() -> None:
        with pytest.raises(JournalCorrupt, match="state hash"):
            await start(path)

    asyncio.run(scenario())


def test_a_truncated_journal_without_its_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dex.journal"

    async def scenario() -> None:
        gateway = await start(path, snapshot_every=0, snapshot_interval_s=0)
        await trade(gateway, reference_engine(), flows(), rounds=2)
        gateway.write_snapshot()
        await gateway.stop()
        snapshot_path(path).unlink()
        with pytest.raises(JournalCorrupt, match="starts after the snapshot"):
            await start(path)

    asyncio.run(scenario())


def test_a_snapshot_from_another_journal_is_not_applied(tmp_path: Path) -> None:
    path = tmp_path / "dex.journal"

    async def scenario() -> None:
        gateway = await start(path, snapshot_every=0, snapshot_interval_s=0)
        await trade(gateway, reference_engine(), flows(), rounds=2)
        gateway.write_snapshot()
        await gateway.stop()
        path.write_bytes(MAGIC)  # someone removed the journal (and kept the snapshot)
        reference, traders = reference_engine(), flows()
        fresh = await start(path, snapshot_every=0, snapshot_interval_s=0)
        await trade(fresh, reference, traders, rounds=1)
        await fresh.stop()
        again = await start(path)
        assert again.engine.state_hash() == reference.state_hash()
        await again.stop()

    asyncio.run(scenario())


def test_the_lock_follows_the_journal_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "dex.journal"

    async def scenario() -> None:
        gateway = await start(path, snapshot_every=0, snapshot_interval_s=0)
        await trade(gateway, reference_engine(), flows(), rounds=1)
        gateway.write_snapshot()
        with pytest.raises(JournalInUse):
            await start(path)
        await gateway.stop()

    asyncio.run(scenario())


def test_dex_engine_replay_checks_a_journal_and_its_snapshot_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transports.replay import main

    path = tmp_path / "dex.journal"

    async def scenario() -> Engine:
        reference, traders = reference_engine(), flows()
        gateway = await start(path, snapshot_every=500)
        await trade(gateway, reference, traders, rounds=4)
        assert gateway.snapshots >= 2
        await gateway.stop()
        return reference

    reference = asyncio.run(scenario())
    before = path.read_bytes(), snapshot_path(path).read_bytes()
    assert main(["replay", "--journal", str(path)]) == 0
    out = capsys.readouterr().out.split()
    assert out == ["engine_seq", str(reference.seq), "state_hash", reference.state_hash()]
    assert (path.read_bytes(), snapshot_path(path).read_bytes()) == before  # read only


def test_dex_engine_replay_names_a_refused_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from transports.replay import main

    path = tmp_path / "dex.journal"
    _snapshot_then_crash_before_truncating(path, monkeypatch)
    header = b'{"seq":1,"state_hash":"' + b"0" * 64 + b'","journal_base":0,"journal_records":1,"journal_tail_crc":0}'
    snapshot_path(path).write_bytes(SNAPSHOT_MAGIC + frame(header) + frame(b"{}"))
    assert main(["replay", "--journal", str(path)]) == 1
    assert "state hash" in capsys.readouterr().err


def test_a_long_replay_logs_its_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import time

    path = tmp_path / "dex.journal"

    async def write() -> None:
        gateway = await start(path, snapshot_every=0, snapshot_interval_s=0)
        await trade(gateway, reference_engine(), flows(), rounds=100, size=10)  # 300 records: one progress check at record 256
        await gateway.stop()

    asyncio.run(write())
    clock = iter(range(0, 10**6, 2))  # every clock read is two seconds later
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))

    async def restart() -> None:
        gateway = await start(path)
        await gateway.stop()

    with caplog.at_level(logging.INFO, logger="dex.gateway"):
        asyncio.run(restart())
    lines = [r for r in caplog.records if r.getMessage() == "journal_replay"]
    assert lines and lines[0].__dict__["records"].startswith("256/")
    assert any(r.getMessage() == "journal_recovered" for r in caplog.records)
