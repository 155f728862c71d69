"""Public market data is anonymous: no trader, client order id, order id or remaining quantity in any public form.

Two traders with recognisable names and client order ids trade while a
subscriber watches; every byte a public reader could get (the protobuf
``MarketDataMessage`` that gRPC, ZeroMQ, NATS, RabbitMQ and the DHT send, the
WebSocket's JSON text, ``GET /trades``, a snapshot) is searched for them.
The traders themselves still learn their fills: the taker in its reply, the
maker in its order's status.
"""

from __future__ import annotations

import asyncio

from engine import Instrument, OrderStatus, PlaceOrder, Side, TradeExecuted
from transports.codec.json_codec import dumps
from transports.codec.json_views import encode_public_trade
from transports.codec.market_bytes import protobuf_bytes
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.marketdata import MarketData, MarketUpdate, PublicTrade
from transports.http.market_data import market_data_text

BTC = Instrument.create("BTC-USD", "0.01", "0.001")
SECRETS = (b"maker-alice", b"taker-bob", b"ask-0001", b"bid-0002")


def test_a_trade_reaches_subscribers_without_names_while_each_trader_learns_its_own_fill() -> None:
    async def scenario() -> tuple[list[MarketData], list[bytes], Gateway]:
        gateway = Gateway(config=GatewayConfig())
        await gateway.start([BTC])
        sub = gateway.marketdata.subscribe(["BTC-USD"])
        maker = await gateway.submit([PlaceOrder("maker-alice", "ask-0001", "BTC-USD", Side.SELL, 3000, 3_000_000)], "test")
        taker = await gateway.submit([PlaceOrder("taker-bob", "bid-0002", "BTC-USD", Side.BUY, 1000, 3_000_000)], "test")
        items: list[MarketData] = []
        while (item := sub.poll()) is not None:
            items.append(item)
        fills = [e for e in taker[0] if isinstance(e, TradeExecuted)]
        assert [(f.maker_trader, f.taker_trader, f.qty) for f in fills] == [("maker-alice", "taker-bob", 1000)]  # the taker's reply
        maker_id = maker[0][0].order_id  # type: ignore[union-attr]
        status = gateway.order_status("maker-alice", maker_id)
        assert status is not None and (status.filled, status.remaining, status.status) == (1000, 2000, OrderStatus.PARTIALLY_FILLED)
        lookup = gateway.instrument
        public = [protobuf_bytes(i, lookup) for i in items] + [market_data_text(i, lookup).encode() for i in items]
        public += [dumps(encode_public_trade(PublicTrade.of(t), BTC)) for t in gateway.recent_trades("BTC-USD")]
        public += [protobuf_bytes(gateway.marketdata.snapshot("BTC-USD"), lookup)]
        await gateway.stop()
        return items, public, gateway

    items, public, _ = asyncio.run(scenario())
    trades = [i.event for i in items if isinstance(i, MarketUpdate) and isinstance(i.event, PublicTrade)]
    assert [(t.price, t.qty, t.aggressor_side) for t in trades] == [(3_000_000, 1000, Side.BUY)]
    for data in public:
        for secret in SECRETS:
            assert secret not in data, (secret, data)
    assert any(b'"aggressor_side":"buy"' in data for data in public)  # the trade is there, only anonymous
