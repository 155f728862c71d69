"""turbo-dex as a ccxt exchange: one import, one constructor with the URL and keys.

::

    from traders.turbodex_ccxt import turbodex                    # sync (ccxt.Exchange)
    from traders.turbodex_ccxt.async_support import turbodex      # async (ccxt.async_support.Exchange)

    # apiKey, secret: key_id and private_key of the credential `dex-keys create alice --hmac` wrote
    exchange = turbodex({"url": "http://127.0.0.1:8080", "apiKey": "alice-1a2b3c4d5e6f", "secret": "..."})
    exchange.fetch_order_book("BTC/USD")
    exchange.create_order("BTC/USD", "limit", "buy", "0.01", "29990.00")

Written as ccxt's own exchanges are: ``describe()`` with the endpoint map,
``sign()``, ``handle_errors()`` mapping the server's reason codes to ccxt's
exception classes, and the unified methods ``fetch_markets``,
``fetch_order_book``, ``fetch_ticker``, ``fetch_trades``, ``fetch_ohlcv``,
``create_order``, ``cancel_order``, ``cancel_all_orders``, ``fetch_order``,
``fetch_open_orders``, ``fetch_my_trades``. Symbols are ccxt's (``BTC/USD``
for the server's ``BTC-USD``). With a ``secret`` every private request is
signed as ``turbo-dex --auth keys`` verifies it (HMAC-SHA256, or Ed25519 with
``options={"keyScheme": "ed25519"}``; ``credential=PATH`` reads both from a
credential file); without one, ``apiKey`` names the trader for a server with
``--auth off``. Needs the ``ccxt`` extra (``make setup`` installs it).
"""

from __future__ import annotations

from traders.turbodex_ccxt.sync import turbodex

TurboDex = turbodex

__all__ = ["TurboDex", "turbodex"]
