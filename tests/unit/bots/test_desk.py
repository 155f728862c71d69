"""The partition desk against a real in-process exchange (gateway + engine): orders, fills, duplicates, grid cancels."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

from engine import OrderStatus, PlaceOrder, Side, TimeInForce
from pricefeed.update import PriceUpdate
from tests.unit.bots.helpers import NOW, bot
from traders.bots.desk import PartitionDesk
from traders.bots.risk import RiskSettings
from traders.bots.stats import WorkerStats
from traders.bots.store import BotStore
from transports.core.gateway import Gateway, GatewayConfig
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import make_client, serve

TRADER = "bots-p000"


def at(price: str, seq: int) -> PriceUpdate:
    p = Decimal(price)
    return PriceUpdate("BTC-USD", seq, p, p - Decimal("0.01"), p + Decimal("0.01"), "test", NOW)


def with_exchange(scenario: Callable[[str], Awaitable[None]]) -> None:
    async def main() -> None:
        gateway = Gateway(config=GatewayConfig())
        await gateway.start(DEFAULT_INSTRUMENTS)
        try:
            async with serve("inproc", gateway) as url:
                await scenario(url)
        finally:
            await gateway.stop()

    asyncio.run(main())


async def desk_for(url: str, store: BotStore, bots: list, stats: WorkerStats) -> PartitionDesk:  # type: ignore[type-arg]
    client = make_client("inproc", TRADER, url)
    await client.connect()
    instruments = {i.symbol: i for i in await client.instruments()}
    return PartitionDesk(0, TRADER, bots, store, client, instruments, {}, RiskSettings(), stats, clock=lambda: NOW)


def test_momentum_bot_buys_fills_and_a_redelivered_update_places_no_second_order(tmp_path):
    async def scenario(url: str) -> None:
        async with make_client("inproc", "maker", url) as maker:
            await maker.submit([PlaceOrder("maker", "ask1", "BTC-USD", Side.SELL, 1000, 3_000_100)])  # 0.1 BTC at 30001.00
        store = BotStore(tmp_path / "bots.db")
        momentum = bot(bot_id="m1", params={"lookback": "2", "threshold_bps": "5"}, max_exposure=Decimal("100000"))
        stats = WorkerStats()
        desk = await desk_for(url, store, [momentum], stats)
        for seq, price in enumerate(("29980.00", "29990.00"), start=1):
            assert await desk.on_update(at(price, seq)) == 0
        rise = at("30000.99", 3)  # +35 bps over 2 updates: buy at the ask 30001.00
        assert await desk.on_update(rise) == 1
        assert stats.acked == 1 and stats.fills == 1
        assert desk.positions["m1"].qty == Decimal("0.01")
        assert store.positions(["m1"])["m1"].last_seq == 3

        # The same update again, as after a crash before the save: a fresh desk on the saved state of before.
        store.save_positions({"m1": type(desk.positions["m1"])()})
        again = await desk_for(url, store, [momentum], stats)
        for seq, price in enumerate(("29980.00", "29990.00"), start=1):
            await again.on_update(at(price, seq))
        assert await again.on_update(rise) == 1  # sent, and refused by the exchange
        assert stats.duplicates == 1 and stats.acked == 1
        assert again.positions["m1"].qty == Decimal("0.01")  # the first delivery's fill, read back from the exchange
        async with make_client("inproc", TRADER, url) as client:
            view = await client.order(2)  # order 1 is the maker's ask
            assert view is not None and view.client_order_id == "m1-3" and view.filled == 100

    with_exchange(scenario)


def test_grid_bot_rests_post_only_and_learns_its_fill_when_it_replaces_the_order(tmp_path):
    async def scenario(url: str) -> None:
        store = BotStore(tmp_path / "bots.db")
        maker = bot("grid", bot_id="g1", params={"step_bps": "10"}, cooldown_ms=0, max_exposure=Decimal("100000"))
        stats = WorkerStats()
        desk = await desk_for(url, store, [maker], stats)
        await desk.on_update(at("30000.00", 1))
        assert await desk.on_update(at("29960.00", 2)) == 1  # a level down: bid 29959.99, resting
        resting = desk.positions["g1"].resting
        assert resting is not None and resting.side is Side.BUY and resting.price == Decimal("29959.99")
        async with make_client("inproc", "taker", url) as taker:  # someone sells into half of it
            await taker.submit([PlaceOrder("taker", "t1", "BTC-USD", Side.SELL, 50, 2_995_999, tif=TimeInForce.IOC)])
        assert await desk.on_update(at("30010.00", 3)) == 1  # a level up: cancel the bid, offer at the ask
        assert desk.positions["g1"].qty == Decimal("0.005")
        assert desk.positions["g1"].avg_price == Decimal("29959.99")
        async with make_client("inproc", TRADER, url) as client:
            assert (await client.order(resting.order_id)).status is OrderStatus.CANCELLED  # type: ignore[union-attr]

    with_exchange(scenario)


def test_an_update_older_than_one_already_seen_for_the_pair_is_skipped(tmp_path):
    async def scenario(url: str) -> None:
        store = BotStore(tmp_path / "bots.db")
        momentum = bot(bot_id="m1", params={"lookback": "1", "threshold_bps": "5"}, max_exposure=Decimal("100000"))
        stats = WorkerStats()
        desk = await desk_for(url, store, [momentum], stats)
        await desk.on_update(at("30000.00", 1))
        await desk.on_update(at("30100.00", 3))  # seen first (another partition's lane was faster)
        assert await desk.on_update(at("29000.00", 2)) == 0
        assert stats.superseded == 1

    with_exchange(scenario)
