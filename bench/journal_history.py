"""A journal with a long history (1 GiB by default) for the restart benchmark, generated once and cached.

``history(journal_bytes)`` returns a directory holding ``journal.log`` and ``journal.log.snapshot`` as
a ``turbo-dex`` started with ``--snapshot-every SNAPSHOT_EVERY`` would have left them after writing
``journal_bytes`` of journal records, at the moment of a ``kill -9`` (``at-target/``), and the same
history traded on to just before its next snapshot (``worst-tail/``: the longest tail a restart can
replay).

How it is written, fast and real:

* An in-process ``Gateway`` (the servers' own, with the journal in the servers' format) with
  ``fsync="off"`` (the bytes written are the same; a restart never waits for the writer's fsyncs) and
  a snapshot (``Journal.rotate``: snapshot, then truncate) every ``SNAPSHOT_EVERY`` commands.
* The order flow keeps the book bounded, so the snapshot stays small whatever the history: a maker
  places ``BATCH`` resting 1-5 lot buys over 200 price levels, then a taker sells the same total at
  the lowest of them, trading every lot (one ``T`` record each, as a client's lean batch). Client
  order ids are 36 characters (a UUID's length, as many clients send) and repeat after ``CYCLE``
  batch pairs, more than the engine's de-duplication window of finished ids, so every command is
  accepted. The batches are encoded once and sent again and again: the engine does the work, not
  the encoder.
* History bytes count every record appended (frame included). Generation stops at the first group
  past ``journal_bytes``; whatever tail follows the last snapshot then is what a restart replays.
  Where that moment falls in the snapshot cycle is chance, so the worst case is kept beside it.

The result is cached under ``build/bench-cache/<key>/`` (the key names every parameter and
``FORMAT``); a later call reuses it and says so (``cached``), with the generation cost measured when it
was written.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any

from bench.e2e import ROOT
from engine import PlaceOrder, Side
from transports.codec import lean
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import snapshot_path
from transports.core.requests import RequestHandler
from transports.instruments import select_instruments

CACHE = ROOT / "build" / "bench-cache"
FORMAT = 2  # bump when the flow below changes: a cached history of another flow must not be reused
BATCH = 1000
CYCLE = 64  # batch pairs before the ids repeat: 128,000 finished ids > the engine's window of 100,000
# Commands between snapshots (turbo-dex --snapshot-every): at most this many are replayed at a restart. Measured on the
# 2-core machine with 1 GiB of history: at 500,000 the longest tail restarted in 2.3 s, at 250,000 in 1.4 s (target 2 s);
# each snapshot pauses the writer about 0.2 s (a 12 MB snapshot: the de-duplication window's ids, the book is empty).
SNAPSHOT_EVERY = 250_000
LEVELS = 200
BASE_PRICE = 3_000_000  # ticks
SEED = 15


def _pairs(symbol: str) -> list[tuple[bytes, bytes]]:
    """``CYCLE`` (maker, taker) lean batches: resting buys, then sells that trade every lot of them."""
    ids = Random(SEED)
    pairs = []
    for k in range(CYCLE):
        buys = [
            PlaceOrder("maker", str(uuid.UUID(int=ids.getrandbits(128))), symbol, Side.BUY, 1 + i % 5, BASE_PRICE + (k + i) % LEVELS)
            for i in range(BATCH)
        ]
        total = sum(order.qty for order in buys)
        lots = [total // BATCH + (1 if i < total % BATCH else 0) for i in range(BATCH)]
        sells = [
            PlaceOrder("taker", str(uuid.UUID(int=ids.getrandbits(128))), symbol, Side.SELL, lots[i], BASE_PRICE) for i in range(BATCH)
        ]
        pairs.append((lean.encode_orders(buys), lean.encode_orders(sells)))
    return pairs


def _copy_state(journal: Path, into: Path) -> None:
    """The journal and its snapshot as they are now: what a ``kill -9`` at this moment would leave."""
    into.mkdir(parents=True)
    for source in (journal, snapshot_path(journal)):
        if source.exists():
            shutil.copyfile(source, into / source.name)


async def _generate(journal: Path, journal_bytes: int, snapshot_every: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Trade until ``journal_bytes`` are written (state ``at-target``), then on to the longest tail (``worst-tail``)."""
    instruments = select_instruments("")
    config = GatewayConfig(journal=str(journal), fsync="off", snapshot_every=snapshot_every, snapshot_interval_s=0)
    gateway = Gateway(config=config)
    await gateway.start(instruments)
    assert gateway.journal is not None
    requests = RequestHandler(gateway, "inproc")
    pairs = _pairs(instruments[0].symbol)
    written = [0]
    append = gateway.journal.append

    def counting(payloads: list[bytes]) -> None:  # every record appended, 8-byte frame included
        written[0] += sum(len(p) + 8 for p in payloads)
        append(payloads)

    gateway.journal.append = counting  # type: ignore[method-assign]
    started = time.monotonic()
    commands = tail = 0
    next_log = started + 10

    async def trade_pair() -> None:
        nonlocal commands, tail
        snapshots = gateway.snapshots
        maker, taker = pairs[(commands // (2 * BATCH)) % CYCLE]
        await requests.orders(maker, "maker")
        await requests.orders(taker, "taker")
        commands += 2 * BATCH
        tail = 0 if gateway.snapshots != snapshots else tail + 2 * BATCH

    while written[0] < journal_bytes:
        await trade_pair()
        if time.monotonic() >= next_log:
            next_log += 10
            log(f"  journal history: {written[0] / 2**20:,.0f} of {journal_bytes / 2**20:,.0f} MiB, {commands:,} commands")
    seconds = time.monotonic() - started
    result: dict[str, Any] = {
        "history_bytes": written[0],
        "commands": commands,
        "trades": gateway.stats.trades,
        "snapshots_written": gateway.snapshots,
        "last_snapshot_pause_ms": round(gateway.snapshot_pause_ms, 1),
        "tail_commands": tail,
        "engine_seq": gateway.engine.seq,
        "resting_orders": sum(len(level.live_orders()) for book in gateway.engine.books.values() for level in book.bids.levels.values()),
        "generate_s": round(seconds, 1),
        "generate_commands_per_s": round(commands / seconds),
        "journal_file_bytes": journal.stat().st_size,
        "snapshot_bytes": snapshot_path(journal).stat().st_size if snapshot_path(journal).exists() else 0,
    }
    _copy_state(journal, journal.parent / "at-target")
    if gateway.snapshots:  # the same history a moment before its next snapshot: the most a restart ever replays
        while tail + 2 * BATCH < snapshot_every:
            await trade_pair()
        result["worst_tail"] = {"tail_commands": tail, "history_bytes": written[0], "journal_file_bytes": journal.stat().st_size}
        _copy_state(journal, journal.parent / "worst-tail")
    gateway.journal.close()  # no stop(): its checkpoint is a clean shutdown's, and a kill -9 leaves none
    return result


def history(journal_bytes: int, *, snapshot_every: int = SNAPSHOT_EVERY, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The cached history of ``journal_bytes`` (generated now if absent): its facts and ``path``.

    ``path`` holds ``at-target/`` (the state when ``journal_bytes`` were written) and, once a snapshot
    was taken, ``worst-tail/`` (the same history traded on to just before the next snapshot).
    """
    key = f"history-v{FORMAT}-{journal_bytes}b-batch{BATCH}-cycle{CYCLE}-snap{snapshot_every}-seed{SEED}"
    where = CACHE / key
    meta_path = where / "meta.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        log(f"  journal history: reusing {where} (generated in {meta['generate_s']} s)")
        return {**meta, "cached": True, "path": str(where)}
    log(f"  journal history: generating {journal_bytes / 2**20:,.0f} MiB into {where}")
    building = where.with_name(key + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    meta = asyncio.run(_generate(building / "journal.log", journal_bytes, snapshot_every, log))
    for leftover in (building / "journal.log", snapshot_path(building / "journal.log")):
        leftover.unlink(missing_ok=True)  # the states kept are the copies
    meta.update(
        {
            "snapshot_every": snapshot_every,
            "client_order_id_chars": 36,
            "method": "in-process gateway, fsync off, maker/taker batch pairs that trade every lot (bounded book)",
        }
    )
    meta_path = building / "meta.json"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(where, ignore_errors=True)
    building.rename(where)
    log(f"  journal history: {meta['history_bytes'] / 2**20:,.0f} MiB in {meta['generate_s']} s, cached in {where}")
    return {**meta, "cached": False, "path": str(where)}
