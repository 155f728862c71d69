"""``PartitionDesk``: the bots of one partition on the worker that currently owns it.

For each price update of a pair it evaluates every enabled bot of that pair
in the partition (exit, else strategy), passes each intent through the risk
filter, sends all resulting orders in ONE batch as the partition's trader,
applies the replies (fills, duplicates, rejections) to the positions, and
saves the changed positions in one SQLite transaction. Only then does the
caller acknowledge the update to the broker.

Invariants:

* An update older than the newest this worker has seen for its pair is
  skipped (``superseded``): the newer one follows in the same queue.
* A bot acts at most once per update (``seq <= position.last_seq`` -> skip),
  and its client order id is ``<bot>-<seq>``: after a crash between sending
  and saving, the redelivered update yields the same id and the exchange
  refuses it as a duplicate; the desk then reads the earlier order back
  (``client.order``) and applies what it filled, so the position is not lost.
* Positions are loaded from the store when the desk is created, i.e. when
  the partition's first update reaches this worker (after a move, what the
  dead worker last saved).
* A grid bot has at most one resting order; a new one cancels the old in the
  same batch, and the cancel's reply says how much of the old one filled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from engine import Command, Instrument, PlaceOrder, RejectReason
from pricefeed.update import PriceUpdate
from traders.bots.market import PairMarket
from traders.bots.model import BotConfig, Intent, Position, RestingOrder
from traders.bots.orders import cancel_order, place_order, price_of, qty_of
from traders.bots.risk import OrderPace, RiskCheck, RiskSettings, gated_rejection, market_gate, record_order
from traders.bots.stats import WorkerStats
from traders.bots.store import BotStore
from traders.bots.strategies import decide
from transports.codec import lean
from transports.core.client import TraderClient


class PartitionDesk:
    def __init__(
        self,
        partition: int,
        trader: str,
        bots: list[BotConfig],
        store: BotStore,
        client: TraderClient,
        instruments: dict[str, Instrument],
        markets: dict[str, PairMarket],
        risk: RiskSettings,
        stats: WorkerStats,
        clock: Callable[[], int] = time.time_ns,
        autosave: bool = True,
    ) -> None:
        self.partition = partition
        self.trader = trader
        self.store = store
        self.client = client
        self.instruments = instruments
        self.markets = markets
        self.risk = risk
        self.stats = stats
        self.clock = clock
        self.by_pair: dict[str, list[BotConfig]] = {}
        for bot in bots:
            self.by_pair.setdefault(bot.pair, []).append(bot)
        self.positions: dict[str, Position] = store.positions(b.bot_id for b in bots)
        self.pace: dict[str, OrderPace] = {}
        for bot_id, position in self.positions.items():
            self.pace[bot_id] = OrderPace(last_ns=position.last_order_ns)
        self.memory: dict[str, dict[str, int]] = {}
        self.autosave = autosave  # False: the caller saves ``take_unsaved()`` (group commit) before acknowledging
        self._unsaved: dict[str, Position] = {}

    def take_unsaved(self) -> dict[str, Position]:
        """The positions changed since the last call (with ``autosave`` off)."""
        unsaved, self._unsaved = self._unsaved, {}
        return unsaved

    async def on_update(self, update: PriceUpdate) -> int:
        """Evaluate the update for this partition's bots; the number of orders sent."""
        market = self.markets.setdefault(update.pair, PairMarket())
        if not market.observe(update) and market.last is not None and update.seq < market.last.seq:
            # Another partition's lane already brought a newer price of this pair; that newer update is in this
            # partition's queue too. Acting on the old one would judge it against the newer window.
            self.stats.superseded += 1
            return 0
        bots = self.by_pair.get(update.pair, [])
        instrument = self.instruments.get(update.pair)
        if not bots or instrument is None:
            return 0
        now = self.clock()
        gate = market_gate(update, market, now, self.risk)
        commands: list[Command] = []
        placed: list[tuple[BotConfig, Intent, int, int]] = []  # bot, intent, index of its PlaceOrder, of its cancel (-1: none)
        positions, memory, rejected = self.positions, self.memory, self.stats.rejected
        evaluated = 0
        for bot in bots:
            position = positions.get(bot.bot_id)
            if position is None:
                position = positions[bot.bot_id] = Position()
            if update.seq <= position.last_seq:
                continue  # this update was already acted on (a redelivery after our save)
            evaluated += 1
            bot_memory = memory.get(bot.bot_id)
            if bot_memory is None:
                bot_memory = memory[bot.bot_id] = {}
            intent = decide(bot, position, market, update, bot_memory)
            if intent is None:
                continue
            pace = self.pace.get(bot.bot_id)
            if pace is None:
                pace = self.pace[bot.bot_id] = OrderPace()
            stage = gated_rejection(RiskCheck(bot, position, pace, market, update, intent, now), gate, self.risk)
            if stage is not None:
                rejected[stage] += 1
                continue
            order = place_order(self.trader, bot, update.seq, intent, instrument)
            if order is None:
                continue
            cancel_index = -1
            if intent.maker and position.resting is not None:
                cancel_index = len(commands)
                commands.append(cancel_order(self.trader, position.resting.order_id))
            record_order(pace, now)
            placed.append((bot, intent, len(commands), cancel_index))
            commands.append(order)
        self.stats.evaluated += evaluated
        if not commands:
            return 0
        sent_ns = self.clock()
        outcomes = await self.client.submit_orders(lean.encode_orders(commands))  # lean: each order's outcome and own fills
        acked_ns = self.clock()
        self.stats.delivery_ns.append(now - update.published_ns)
        self.stats.evaluation_ns.append(sent_ns - now)
        self.stats.exchange_ns.append(acked_ns - sent_ns)
        self.stats.orders += len(placed)
        changed: dict[str, Position] = {}
        for bot, intent, index, cancel_index in placed:
            self.stats.latency(acked_ns - update.published_ns)
            position = self.positions[bot.bot_id]
            if cancel_index >= 0:
                self._settle_cancelled(position, outcomes, cancel_index, instrument)
            placed_order = commands[index]
            assert isinstance(placed_order, PlaceOrder)
            await self._apply(intent, position, placed_order, outcomes, index, instrument)
            position.last_seq = update.seq
            position.last_order_ns = now
            position.orders += 1
            changed[bot.bot_id] = position
        if self.autosave:
            self.store.save_positions(changed)
        else:
            self._unsaved.update(changed)
        return len(placed)

    async def _apply(
        self, intent: Intent, position: Position, order: PlaceOrder, outcomes: lean.Outcomes, index: int, instrument: Instrument
    ) -> None:
        outcome = outcomes.outcome[index]
        if outcome == lean.REJECTED:
            reason = RejectReason(outcomes.reason[index])
            self.stats.exchange_rejected(reason.name)
            if reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID:
                self.stats.duplicates += 1
                await self._recover(position, outcomes.order_id[index], instrument)
            else:
                self.stats.exchange_rejects += 1
            return
        if outcome != lean.ACCEPTED:
            return
        self.stats.acked += 1
        filled = 0
        for price, qty in outcomes.fills_of(index):  # as the taker, in order
            position.apply_fill(intent.side, qty_of(qty, instrument), price_of(price, instrument))
            filled += qty
            self.stats.fills += 1
        if intent.maker and filled < order.qty:
            position.resting = RestingOrder(outcomes.order_id[index], intent.side, order.qty, price_of(order.price, instrument), filled)

    def _settle_cancelled(self, position: Position, outcomes: lean.Outcomes, index: int, instrument: Instrument) -> None:
        """Apply the fills of the resting order just cancelled: ordered - cancelled - already applied."""
        resting = position.resting
        assert resting is not None
        position.resting = None
        refused = outcomes.outcome[index] == lean.REJECTED  # no longer live: it filled completely
        filled = resting.lots if refused else resting.lots - outcomes.cancelled[index]
        delta = filled - resting.filled_lots
        if delta > 0:
            position.apply_fill(resting.side, qty_of(delta, instrument), resting.price)
            self.stats.fills += 1

    async def _recover(self, position: Position, order_id: int, instrument: Instrument) -> None:
        """A redelivered update: the first delivery's order exists; apply what it filled if it was not saved."""
        if order_id <= 0:
            return
        view = await self.client.order(order_id)
        if view is None or view.filled <= 0:
            return
        # The position saved by the worker that sent it did not include this update (last_seq < seq), so its fill is new here.
        position.apply_fill(view.side, qty_of(view.filled, instrument), price_of(view.price, instrument))
        self.stats.fills += 1


__all__ = ["Decimal", "PartitionDesk"]
