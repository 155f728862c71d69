"""From a bot's intent to the exchange's ``PlaceOrder``, and from the exchange's replies back to the bot's position.

Client order ids are ``<bot_id>-<update seq>``: one price update gives a bot at
most one order, and a redelivered update gives the same id, which the
exchange refuses (``DUPLICATE_CLIENT_ORDER_ID``) for the same trader: no
order is ever placed twice for one update.

Rounding is always in the bot's favour of not over-trading: quantities round
down to the lot; a taker's limit rounds away from the touch (so it can still
cross), a maker's toward its own side (so it never takes).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from engine import CancelOrder, Instrument, OrderType, PlaceOrder, Side, TimeInForce
from traders.bots.model import BotConfig, Intent


def client_order_id(bot_id: str, seq: int) -> str:
    return f"{bot_id}-{seq}"


def lots_of(qty: Decimal, instrument: Instrument) -> int:
    return int((qty / instrument.lot_size).to_integral_value(ROUND_DOWN))


def ticks_of(price: Decimal, instrument: Instrument, side: Side, maker: bool) -> int:
    up = (side is Side.BUY) != maker  # a taker buy and a maker sell round up
    return int((price / instrument.tick_size).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR))


def place_order(trader: str, bot: BotConfig, seq: int, intent: Intent, instrument: Instrument) -> PlaceOrder | None:
    """The order for ``intent`` (None when its quantity is below one lot)."""
    lots = lots_of(intent.qty, instrument)
    if lots <= 0:
        return None
    ticks = ticks_of(intent.price, instrument, intent.side, intent.maker)
    return PlaceOrder(
        trader,
        client_order_id(bot.bot_id, seq),
        bot.pair,
        intent.side,
        lots,
        ticks,
        order_type=OrderType.LIMIT,
        tif=TimeInForce.GTC if intent.maker else TimeInForce.IOC,
        post_only=intent.maker,
    )


def cancel_order(trader: str, order_id: int) -> CancelOrder:
    return CancelOrder(trader, order_id)


def price_of(ticks: int, instrument: Instrument) -> Decimal:
    return ticks * instrument.tick_size


def qty_of(lots: int, instrument: Instrument) -> Decimal:
    return lots * instrument.lot_size
