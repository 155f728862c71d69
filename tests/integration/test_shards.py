"""``turbo-dex --shards 2``: real shard processes behind one front, reached over ZeroMQ and HTTP (docs/shards.md).

BTC-USD is pinned to shard 0 and ETH-USD to shard 1, so every test knows
which process holds which book.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from engine import (
    CancelOrder,
    ExchangeError,
    MassCancel,
    NotConnected,
    OrderAccepted,
    OrderCancelled,
    Overloaded,
    PlaceOrder,
    RejectReason,
    Side,
    TradeExecuted,
)
from tests.support.auth import TraderKeys, keyed_client
from tests.support.ports import free_run
from transports.codec import lean
from transports.core.pids import pid_alive
from transports.registry import make_client
from transports.sharding.link import market_endpoint, order_endpoint, socket_dir
from transports.sharding.shard_map import ID_SHIFT, ShardMap, shard_of_id

TURBO_DEX = Path(sys.executable).with_name("turbo-dex")
DEX_ENGINE = Path(sys.executable).with_name("dex-engine")
BTC, ETH = "BTC-USD", "ETH-USD"
PX = {BTC: 3_000_000, ETH: 200_000}  # ticks inside each default band


class Sharded:
    """One ``turbo-dex --shards 2 --transports zmq,http`` on free ports, stopped by PID."""

    def __init__(self, state: Path, *ports: str) -> None:
        self.state = state
        self.out = state / "turbo-dex.out"
        state.mkdir(parents=True, exist_ok=True)
        cmd = [str(TURBO_DEX), "--shards", "2", "--pin", f"{BTC}=0", "--pin", f"{ETH}=1", "--transports", "zmq,http"]
        ports = ports or ("--port", "0", "--zmq-port", "0", "--zmq-pub-port", "0")
        cmd += [*ports, "--state-dir", str(state), "--log-level", "warning"]
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.zmq, self.http = self._urls()

    def _urls(self, timeout: float = 60) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"listening on (zmq://\S+), (http://\S+) \(", self.out.read_text())
            if found:
                return found.group(1), found.group(2)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"turbo-dex --shards did not start: {self.out.read_text()}")

    def shard_pids(self) -> list[int]:
        return self.children(b"transports.sharding.shard")

    def children(self, module: bytes) -> list[int]:
        """This turbo-dex's child processes that run ``module`` (shards, or the other fronts)."""
        pids = []
        for line in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                if module in Path(f"/proc/{line}/cmdline").read_bytes():
                    pids.append(int(line))
        return pids

    def shard_log(self, index: int) -> str:
        return (self.state / "turbo-dex-shards" / f"shard-{index}.log").read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(30)


@pytest.fixture
def sharded(tmp_path: Path) -> Iterator[Sharded]:
    exchange = Sharded(tmp_path / "state")
    yield exchange
    exchange.stop()


def scenario(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run the async test body in a fresh event loop, bounded in time."""

    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 60))

    return run


async def retried(client: Any, commands: list[Any], timeout: float = 15) -> lean.Outcomes:
    """``commands`` sent until they are not refused ``OVERLOADED`` (a shard restarting), as a client retries them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.submit_orders(lean.encode_orders(commands))
        except Overloaded:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def bid_appears(client: Any, symbol: str, price: int, timeout: float = 5) -> bool:
    """Whether a bid at ``price`` shows in the front's book of ``symbol`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(level.price == price for level in (await client.book(symbol)).bids):
            return True
        await asyncio.sleep(0.05)
    return False


def place(symbol: str, side: Side, qty: int, cid: str, price: int | None = None) -> PlaceOrder:
    return PlaceOrder("", cid, symbol, side, qty, PX[symbol] if price is None else price)


def test_the_symbols_are_split_by_rendezvous_hashing_and_pins_win() -> None:
    symbols = [f"S{i}" for i in range(300)]
    four = ShardMap(4).assign(symbols)
    three = ShardMap(3).assign(symbols)
    assert all(len(part) > 40 for part in four)  # spread: each of 4 shards holds a fair share of 300
    # Removing shard 3 moves only shard 3's symbols; everything else stays where it was.
    assert all(ShardMap(3).owner(s) == k for k in range(3) for s in four[k])
    assert sum(len(p) for p in three) == 300
    assert ShardMap(4, {"S1": 2}).owner("S1") == 2
    with pytest.raises(ValueError, match="pinned to shard 5"):
        ShardMap(4, {"S1": 5})


@scenario
async def test_a_batch_across_shards_is_answered_in_command_order(sharded: Sharded) -> None:
    async with make_client("zmq", "ann", sharded.zmq) as ann:
        batch = [place(BTC if i % 2 else ETH, Side.BUY, 1 + i, f"c{i}", PX[BTC if i % 2 else ETH] - 100 - i) for i in range(40)]
        outcomes = await ann.submit_orders(lean.encode_orders(batch))
    assert outcomes.outcome == [lean.ACCEPTED] * 40
    assert outcomes.leaves == [1 + i for i in range(40)]  # each outcome is its own command's, in the order sent
    assert [shard_of_id(o) for o in outcomes.order_id] == [1 if i % 2 == 0 else 0 for i in range(40)]
    assert all(o >> ID_SHIFT in (0, 1) and o % (1 << ID_SHIFT) > 0 for o in outcomes.order_id)


@scenario
async def test_an_order_over_http_trades_with_one_over_zmq_and_cancels_find_their_shard(sharded: Sharded) -> None:
    async with make_client("http", "hal", sharded.http) as hal, make_client("zmq", "zed", sharded.zmq) as zed:
        resting = (await hal.submit([place(ETH, Side.SELL, 5, "h1")]))[0]
        accepted = next(e for e in resting if isinstance(e, OrderAccepted))
        assert shard_of_id(accepted.order_id) == 1
        taken = (await zed.submit([place(ETH, Side.BUY, 3, "z1")]))[0]
        trade = next(e for e in taken if isinstance(e, TradeExecuted))
        assert (trade.qty, trade.maker_order_id) == (3, accepted.order_id)
        book = await zed.book(ETH)  # the front's mirror, fed by shard 1's market data
        for _ in range(50):
            if book.asks and book.asks[0].qty == 2:
                break
            await asyncio.sleep(0.05)
            book = await zed.book(ETH)
        assert [(lv.price, lv.qty) for lv in book.asks] == [(PX[ETH], 2)]
        # By order id (shard 1), by client order id (sent to every shard; shard 1 answers), then nothing left.
        btc = (await hal.submit([place(BTC, Side.BUY, 1, "h2", PX[BTC] - 500)]))[0]
        btc_id = next(e for e in btc if isinstance(e, OrderAccepted)).order_id
        gone = await hal.submit([CancelOrder("", accepted.order_id), CancelOrder("", 0, "h2")])
        assert [next(e for e in g if isinstance(e, OrderCancelled)).order_id for g in gone] == [accepted.order_id, btc_id]
        unknown = await hal.submit([CancelOrder("", 0, "never-sent")])
        assert [getattr(e, "reason", None) for e in unknown[0]] == [RejectReason.UNKNOWN_ORDER]


@scenario
async def test_a_mass_cancel_of_every_symbol_reaches_every_shard(sharded: Sharded) -> None:
    async with make_client("zmq", "mia", sharded.zmq) as mia:
        await mia.submit([place(BTC, Side.BUY, 1, "m1", PX[BTC] - 10), place(ETH, Side.BUY, 1, "m2", PX[ETH] - 10)])
        outcomes = await mia.submit_orders(lean.encode_orders([MassCancel("", "")]))
    assert (outcomes.outcome, outcomes.cancelled) == ([lean.CANCELLED], [2])


@scenario
async def test_each_shard_journals_its_own_state_and_a_replay_rebuilds_it(sharded: Sharded) -> None:
    async with make_client("zmq", "rex", sharded.zmq) as rex:
        for i in range(20):
            await rex.submit([place(BTC, Side.SELL, 2, f"s{i}", PX[BTC] + i), place(ETH, Side.BUY, 2, f"b{i}", PX[ETH] - i)])
        await rex.submit([place(BTC, Side.BUY, 7, "take", PX[BTC] + 3)])
    assert sharded.stop() == 0
    for index in (0, 1):
        stopped = re.search(r"dex-shard \d stopped \(engine seq (\d+), state hash (\w+)\)", sharded.shard_log(index))
        assert stopped, sharded.shard_log(index)
        journal = sharded.state / "turbo-dex-shards" / f"shard-{index}.journal"
        replay = subprocess.run([str(DEX_ENGINE), "replay", "--journal", str(journal)], capture_output=True, text=True, check=True)
        assert replay.stdout.split() == ["engine_seq", stopped.group(1), "state_hash", stopped.group(2)]


@scenario
async def test_a_killed_shard_is_restarted_from_its_journal_while_the_other_keeps_trading(sharded: Sharded) -> None:
    async with make_client("zmq", "kit", sharded.zmq) as kit:
        victims = []
        for kill in range(2):  # twice: the watch outlives its first restart
            first = await kit.submit_orders(lean.encode_orders([place(BTC, Side.BUY, 4, f"k{kill}", PX[BTC] - 7)]))
            pids = sharded.shard_pids()
            assert len(pids) == 2
            victims.append(next(p for p in pids if b"--index\x000" in Path(f"/proc/{p}/cmdline").read_bytes()))
            os.kill(victims[-1], signal.SIGKILL)
            eth = await kit.submit_orders(lean.encode_orders([place(ETH, Side.BUY, 1, f"e{kill}", PX[ETH] - 7)]))
            assert eth.outcome == [lean.ACCEPTED]  # shard 1 never stopped
            # Until shard 0 is back, its orders are refused OVERLOADED (retry), as any client sees it; then they are served.
            again = await retried(kit, [CancelOrder("", first.order_id[0])])
            assert (again.outcome, again.cancelled) == ([lean.CANCELLED], [4])  # the acknowledged order survived the kill
            # The front's book follows the restarted shard (whose market data is numbered afresh).
            await retried(kit, [place(BTC, Side.BUY, 2, f"r{kill}", PX[BTC] - 900 - kill)])
            assert await bid_appears(kit, BTC, PX[BTC] - 900 - kill)
    assert not any(pid_alive(v) for v in victims)
    assert len(sharded.shard_pids()) == 2


def test_no_shard_outlives_a_killed_turbo_dex(sharded: Sharded) -> None:
    pids = sharded.shard_pids()
    assert len(pids) == 2
    sharded.stop(signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)


@scenario
async def test_two_fronts_share_the_http_port_trade_together_and_a_killed_front_is_replaced(tmp_path: Path) -> None:
    http, zmq_base = free_run(1), free_run(4)
    exchange = Sharded(
        tmp_path / "state", "--fronts", "2", "--port", str(http), "--zmq-port", str(zmq_base), "--zmq-pub-port", str(zmq_base + 1)
    )
    try:
        assert exchange.http == f"http://127.0.0.1:{http}"
        second = f"zmq://127.0.0.1:{zmq_base + 2}"  # front 1 takes the ZeroMQ ports 2 above front 0's
        async with make_client("zmq", "one", exchange.zmq) as one, make_client("zmq", "two", second) as two:
            sold = await one.submit_orders(lean.encode_orders([place(BTC, Side.SELL, 3, "s")]))
            bought = await two.submit_orders(lean.encode_orders([place(BTC, Side.BUY, 3, "b")]))
            assert (sold.outcome, bought.fills, bought.leaves) == ([lean.ACCEPTED], [1], [0])  # across fronts, one book
            assert (bought.trades, bought.fill_qty) == (1, [3])
            fronts = exchange.children(b"--front-index")
            assert len(fronts) == 1
            os.kill(fronts[0], signal.SIGKILL)
            # HTTP clients are served by the remaining front meanwhile: the kernel gives new connections to live listeners.
            # One queued at the killed front as it died is reset; like any client, it connects again (same order id).
            resets = 0
            for i in range(20):
                for _attempt in range(3):
                    try:
                        async with make_client("http", f"h{i}", exchange.http) as client:
                            answer = await client.submit([place(ETH, Side.BUY, 1, f"h{i}", PX[ETH] - 50)])
                        break
                    except NotConnected:
                        resets += 1
                assert isinstance(answer[0][0], OrderAccepted)
            assert resets <= 2
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(exchange.children(b"--front-index")) != 1:
                await asyncio.sleep(0.05)
            replaced = exchange.children(b"--front-index")
            assert len(replaced) == 1 and replaced != fronts
    finally:
        exchange.stop()


@scenario
async def test_with_keys_the_fronts_authenticate_every_request_and_the_shards_see_only_proven_traders(tmp_path: Path) -> None:
    keys = TraderKeys(tmp_path / "keys", traders=("kay",))
    exchange = Sharded(tmp_path / "state", "--auth", "keys", "--keys", str(keys.directory), "--port", "0", "--zmq-port", "0")
    try:
        async with make_client("http", "kay", exchange.http) as unsigned:  # names a trader, proves nothing
            with pytest.raises(ExchangeError) as refused:
                await unsigned.submit([place(BTC, Side.BUY, 1, "u1", PX[BTC] - 5)])
            assert refused.value.reason == RejectReason.UNAUTHENTICATED
        async with keyed_client("http", keys.credential("kay"), exchange.http) as kay:
            answered = await kay.submit([place(BTC, Side.BUY, 1, "k1", PX[BTC] - 5), place(ETH, Side.BUY, 1, "k2", PX[ETH] - 5)])
        accepted = [next(e for e in a if isinstance(e, OrderAccepted)) for a in answered]
        assert [(a.trader, shard_of_id(a.order_id)) for a in accepted] == [("kay", 0), ("kay", 1)]
    finally:
        exchange.stop()


def test_the_link_sockets_live_where_a_unix_socket_path_fits(tmp_path: Path) -> None:
    short = tmp_path / "s"
    assert socket_dir(short) == short and oct(short.stat().st_mode & 0o777) == "0o700"
    deep = tmp_path / ("x" * 120)
    chosen = socket_dir(deep)
    assert chosen != deep and len(link_endpoint(chosen)) < 108 and chosen == socket_dir(deep)  # stable: every process agrees
    assert oct(chosen.stat().st_mode & 0o777) == "0o700"
    chosen.rmdir()


def link_endpoint(directory: Path) -> str:
    return market_endpoint(directory, 511).removeprefix("ipc://")


@scenario
async def test_a_frame_over_the_limit_on_the_link_is_dropped_before_it_is_read_and_the_shard_serves_on(sharded: Sharded) -> None:
    endpoint = order_endpoint(socket_dir(sharded.state.resolve() / "turbo-dex-shards"), 0)
    context = zmq.Context()
    rogue = context.socket(zmq.DEALER)
    rogue.connect(endpoint)
    try:
        rogue.send_multipart([b"orders", b"c1", b"B" + b"\x00" * 100])  # small and malformed: answered, refused
        assert rogue.poll(5000)
        with pytest.raises(ExchangeError):
            lean.decode_outcomes(rogue.recv_multipart()[2])
        rogue.send_multipart([b"orders", b"c2", b"B" + b"\x00" * (7 << 20)])  # over the limit: its sender is cut off
        assert not rogue.poll(1000)
    finally:
        rogue.close(linger=0)
        context.term()
    async with make_client("zmq", "after", sharded.zmq) as client:
        answered = await client.submit_orders(lean.encode_orders([place(BTC, Side.BUY, 1, "a1", PX[BTC] - 3)]))
    assert answered.outcome == [lean.ACCEPTED]
