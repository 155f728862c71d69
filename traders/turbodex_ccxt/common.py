"""What the sync and the async ccxt classes share: ``describe()``, ``sign()``, error mapping and the parsers.

ccxt's own exchanges are written once and transpiled to sync and async; here
the two classes (``sync.turbodex``, ``async_support.turbodex``) inherit this
mixin first and ccxt's ``Exchange`` second, so everything that does no I/O is
written once, and each class keeps only its unified methods' requests.

Invariants:

* Decimal strings at this boundary: an amount or a price goes to the server as
  the decimal string of what the caller gave (``number_to_string``), never
  rounded to the lot or tick here; the server is the judge and refuses what
  is off its lot or tick (``INVALID_QUANTITY``, ``QUANTITY_BELOW_MIN``,
  ``INVALID_PRICE``: ccxt's ``InvalidOrder``). The server's answers are decimal
  strings; ccxt's ``safe_order``/``safe_trade``/``safe_ticker`` turn them into
  the caller's number type (``exchange.number``: float by default, or
  ``decimal.Decimal``/``str``).
* Identity goes through one seam, ``sign()`` -> ``auth_headers``. With a
  ``secret`` every private request is signed as ``turbo-dex --auth keys``
  verifies it (docs/security.md): ``apiKey`` is the key id, ``secret`` the
  credential file's ``private_key`` (an HMAC-SHA256 secret by default;
  ``options["keyScheme"] = "ed25519"`` for an Ed25519 seed), and the signed
  bytes are ``transports.core.signing.payload`` over the method, the path and
  query exactly as the URL carries them and the body ccxt sends: one
  definition of the canonical string for the server and this client. Without
  a ``secret``, ``apiKey`` is sent as ``X-Trader`` (a server with ``--auth
  off``, loopback only); a server with keys refuses that (401, ccxt's
  ``AuthenticationError``).
* Timestamps of one exchange object strictly increase (``_stamp``), so two
  identical requests in the same millisecond (ccxt's async gather) carry
  different signatures and neither is refused as a replay.
* Every refusal is one of ccxt's exception classes, chosen by the server's
  stable reason code (``REASON_EXCEPTIONS``), never by its message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import ccxt
from ccxt.base.decimal_to_precision import TICK_SIZE
from ccxt.base.precise import Precise

from transports.core.keys import SCHEMES, Credential
from transports.core.signing import DEFAULT_WINDOW_MS, MAX_WINDOW_MS, now_ms, payload
from transports.core.signing import sign as sign_payload

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEFRAMES = {"1m": "1m", "5m": "5m", "15m": "15m", "1h": "1h", "1d": "1d"}
# The signed request's headers (transports.http.signed reads them; named here so a ccxt user needs no server extra).
KEY_HEADER, TIMESTAMP_HEADER, WINDOW_HEADER, SIGNATURE_HEADER = "DEX-KEY", "DEX-TIMESTAMP", "DEX-WINDOW", "DEX-SIGNATURE"

# The server's reason names (engine/reasons.py, docs/json-format.md) -> ccxt's exception classes.
REASON_EXCEPTIONS: dict[str, type[Exception]] = {
    "UNKNOWN_SYMBOL": ccxt.BadSymbol,
    "INVALID_PRICE": ccxt.InvalidOrder,
    "INVALID_QUANTITY": ccxt.InvalidOrder,
    "QUANTITY_BELOW_MIN": ccxt.InvalidOrder,
    "QUANTITY_ABOVE_MAX": ccxt.InvalidOrder,
    "INVALID_ORDER": ccxt.InvalidOrder,
    "DUPLICATE_CLIENT_ORDER_ID": ccxt.DuplicateOrderId,
    "INSTRUMENT_EXISTS": ccxt.BadRequest,
    "INVALID_INSTRUMENT": ccxt.BadRequest,
    "RISK_MAX_ORDER_QTY": ccxt.InvalidOrder,
    "RISK_MAX_NOTIONAL": ccxt.InvalidOrder,
    "PRICE_OUT_OF_BAND": ccxt.InvalidOrder,
    "RISK_MAX_OPEN_ORDERS": ccxt.InvalidOrder,
    "POST_ONLY_WOULD_TAKE": ccxt.OrderImmediatelyFillable,
    "UNKNOWN_ORDER": ccxt.OrderNotFound,
    "ORDER_NOT_REPLACEABLE": ccxt.InvalidOrder,
    "DUPLICATE_REQUEST_ID": ccxt.InvalidOrder,
    "OVERLOADED": ccxt.ExchangeNotAvailable,  # nothing applied: retry later (ccxt's NetworkError family)
    "MALFORMED_MESSAGE": ccxt.BadRequest,
    "UNAUTHORIZED": ccxt.AuthenticationError,  # 401 no identity; a 403 (an admin command) is PermissionDenied
    "UNAVAILABLE": ccxt.ExchangeNotAvailable,
    "LIMIT_EXCEEDED": ccxt.BadRequest,
    "UNAUTHENTICATED": ccxt.AuthenticationError,
    "RATE_LIMITED": ccxt.RateLimitExceeded,
    "INTERNAL_ERROR": ccxt.ExchangeError,
}

_ORDER_STATUS = {"pending_trigger": "open", "new": "open", "partially_filled": "open", "filled": "closed", "cancelled": "canceled"}
_TIF = {"GTC": "gtc", "IOC": "ioc", "FOK": "fok"}

# The server's routes, as ccxt's own exchanges declare theirs (paths relative to the URL).
API: dict[str, Any] = {
    "public": {"get": ["instruments", "ticker/{symbol}", "trades/{symbol}", "depth/{symbol}", "candles/{symbol}"]},
    "private": {
        "get": ["orders", "orders/{order_id}", "orders/client/{client_order_id}", "fills"],
        "post": ["orders", "orders/mass-cancel"],
        "delete": ["orders/{order_id}", "orders"],
    },
}


class TurboDexBase:
    """The mixin: put it before ``ccxt.Exchange`` (or its async twin) in the bases."""

    # ccxt's Exchange supplies these at run time; declared for the type checker only.
    id: str
    urls: dict[str, Any]
    apiKey: str  # noqa: N815 (ccxt's attribute name)

    secret: str
    options: dict[str, Any]

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        """``turbodex({"url": "http://127.0.0.1:8080", "apiKey": KEY_ID, "secret": PRIVATE_KEY})``.

        ``url`` is turbo-dex's HTTP address; ``apiKey`` and ``secret`` are a credential's ``key_id`` and
        ``private_key`` (``dex-keys create alice --hmac``), or ``credential`` names the file
        (``clients/<key id>.json``) and sets both with its scheme. Without ``secret``, ``apiKey`` is a trader name
        for a server with ``--auth off``.
        """
        settings = dict(config or {})
        url = str(settings.pop("url", "") or DEFAULT_URL).rstrip("/")
        path = settings.pop("credential", None)
        if path is not None:
            held = json.loads(Path(path).read_text())
            settings.update(apiKey=held["key_id"], secret=held["private_key"])
            settings["options"] = {**settings.get("options", {}), "keyScheme": held["scheme"]}
        super().__init__(settings)  # type: ignore[call-arg]
        self.urls["api"] = {"public": url, "private": url}
        self._last_stamp = 0

    def describe(self) -> dict[str, Any]:
        has = {
            name: True
            for name in (
                "spot",
                "fetchMarkets",
                "fetchOrderBook",
                "fetchTicker",
                "fetchTrades",
                "fetchOHLCV",
                "createOrder",
                "cancelOrder",
                "cancelAllOrders",
                "fetchOrder",
                "fetchOpenOrders",
                "fetchMyTrades",
            )
        }
        has.update({"margin": False, "swap": False, "future": False, "option": False, "fetchTickers": False})
        return self.deep_extend(  # type: ignore[no-any-return,attr-defined]
            super().describe(),  # type: ignore[misc]
            {
                "id": "turbodex",
                "name": "turbo-dex",
                "countries": [],
                "version": "1",
                "rateLimit": 0,
                "pro": False,
                "has": has,
                "timeframes": TIMEFRAMES,
                "urls": {"api": {"public": DEFAULT_URL, "private": DEFAULT_URL}, "www": DEFAULT_URL, "doc": DEFAULT_URL + "/docs"},
                "api": API,
                "requiredCredentials": {"apiKey": True, "secret": False},  # no secret: a trader name (--auth off)
                "options": {"keyScheme": "hmac", "recvWindow": DEFAULT_WINDOW_MS},
                "precisionMode": TICK_SIZE,
                "exceptions": {"exact": REASON_EXCEPTIONS, "broad": {}},
            },
        )

    # ------------------------------------------------------------ the wire
    def sign(
        self, path: str, api: Any = "public", method: str = "GET", params: Any = None, headers: Any = None, body: Any = None
    ) -> dict[str, Any]:
        params = params or {}
        names = self.extract_params(path)  # type: ignore[attr-defined]
        url = self.urls["api"][api] + "/" + self.implode_params(path, {k: quote(str(params[k]), safe="") for k in names if k in params})  # type: ignore[attr-defined]
        query = {k: v for k, v in params.items() if k not in names}
        headers = dict(headers or {})
        if method in ("GET", "DELETE"):
            if query:
                url += "?" + self.urlencode(query)  # type: ignore[attr-defined]
        elif query:
            body = self.json(query)  # type: ignore[attr-defined]
            headers["Content-Type"] = "application/json"
        if api == "private":
            self.check_required_credentials()  # type: ignore[attr-defined]
            headers.update(self.auth_headers(method, url, body))
        return {"url": url, "method": method, "body": body, "headers": headers}

    def auth_headers(self, method: str, url: str, body: str | None) -> dict[str, str]:
        """The one identity seam: the four signed-request headers over ``method``, ``url``'s path and query as sent,
        and ``body``; without a ``secret``, ``X-Trader`` naming ``apiKey`` (``--auth off``)."""
        if not self.secret:
            return {"X-Trader": self.apiKey}
        scheme = str(self.options.get("keyScheme", "hmac")).lower()
        if scheme not in SCHEMES:
            raise ccxt.AuthenticationError(f"{self.id} options['keyScheme'] {scheme!r}: one of {', '.join(SCHEMES)}")
        window = int(self.options.get("recvWindow", DEFAULT_WINDOW_MS))
        if not 1 <= window <= MAX_WINDOW_MS:
            raise ccxt.BadRequest(f"{self.id} options['recvWindow'] {window}: 1 to {MAX_WINDOW_MS} ms")
        target = urlsplit(url)
        stamp = self._stamp()
        credential = Credential(self.apiKey, "", scheme, self.secret)  # type: ignore[arg-type]  # checked above
        try:
            signature = sign_payload(credential, payload(stamp, window, method, target.path, target.query, (body or "").encode()))
        except ValueError as exc:  # not base64, or not a 32-byte Ed25519 seed: the server would refuse it anyway
            raise ccxt.AuthenticationError(f"{self.id} secret: the credential's private_key (base64): {exc}") from None
        return {KEY_HEADER: self.apiKey, TIMESTAMP_HEADER: str(stamp), WINDOW_HEADER: str(window), SIGNATURE_HEADER: signature}

    def _stamp(self) -> int:
        """Now in Unix ms, and later than this object's previous stamp (signatures are deterministic: the same
        request in the same millisecond would otherwise be refused as a replay)."""
        self._last_stamp = max(now_ms(), self._last_stamp + 1)
        return self._last_stamp

    def handle_errors(
        self, code: int, reason: str, url: str, method: str, headers: Any, body: str, response: Any, request_headers: Any, request_body: Any
    ) -> None:
        """Raise ccxt's class for the server's reason: an error body, or a command rejected in its events."""
        if not isinstance(response, dict):
            return None
        found, message = None, ""
        if response.get("type") == "error":
            found, message = response.get("reason"), str(response.get("message", ""))
        else:
            for event in response.get("events") or []:
                if isinstance(event, dict) and event.get("type") == "rejected":
                    found, message = event.get("reason"), str(event.get("message", ""))
                    break
        if found is None:
            return None
        feedback = f"{self.id} {found}: {message}"
        if found == "UNAUTHORIZED" and code == 403:
            raise ccxt.PermissionDenied(feedback)
        raise REASON_EXCEPTIONS.get(str(found), ccxt.ExchangeError)(feedback)

    # ----------------------------------------------------------- parsers
    def parse_market(self, instrument: dict[str, Any]) -> dict[str, Any]:
        market_id = str(instrument["symbol"])
        base_id, _, quote_id = market_id.partition("-")
        base = self.safe_currency_code(base_id)  # type: ignore[attr-defined]
        quote = self.safe_currency_code(quote_id) if quote_id else ""  # type: ignore[attr-defined]
        num = self.parse_number  # type: ignore[attr-defined]
        return {
            "id": market_id,
            "symbol": f"{base}/{quote}" if quote else base,
            "base": base,
            "quote": quote,
            "settle": None,
            "baseId": base_id,
            "quoteId": quote_id,
            "settleId": None,
            "type": "spot",
            "spot": True,
            "margin": False,
            "swap": False,
            "future": False,
            "option": False,
            "active": True,
            "contract": False,
            "linear": None,
            "inverse": None,
            "contractSize": None,
            "expiry": None,
            "expiryDatetime": None,
            "strike": None,
            "optionType": None,
            "taker": None,
            "maker": None,
            "precision": {"amount": num(instrument["lot_size"]), "price": num(instrument["tick_size"])},
            "limits": {
                "amount": {"min": num(instrument["min_qty"]), "max": num(instrument["max_qty"])},
                "price": {"min": num(instrument["tick_size"]), "max": None},
                "cost": {"min": None, "max": None},
                "leverage": {"min": None, "max": None},
            },
            "created": None,
            "info": instrument,
        }

    def parse_ticker(self, ticker: dict[str, Any], market: Any = None) -> dict[str, Any]:
        market = self.safe_market(self.safe_string(ticker, "symbol"), market)  # type: ignore[attr-defined]
        timestamp = self.safe_integer(ticker, "time")  # type: ignore[attr-defined]
        s = self.safe_string  # type: ignore[attr-defined]
        return self.safe_ticker(  # type: ignore[no-any-return,attr-defined]
            {
                "symbol": market["symbol"],
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),  # type: ignore[attr-defined]
                "high": s(ticker, "high"),
                "low": s(ticker, "low"),
                "bid": s(ticker, "bid"),
                "bidVolume": s(ticker, "bid_qty"),
                "ask": s(ticker, "ask"),
                "askVolume": s(ticker, "ask_qty"),
                "vwap": None,
                "open": s(ticker, "open"),
                "close": s(ticker, "last"),
                "last": s(ticker, "last"),
                "previousClose": None,
                "change": s(ticker, "change"),
                "percentage": s(ticker, "change_percent"),
                "average": None,
                "baseVolume": s(ticker, "volume"),
                "quoteVolume": None,
                "info": ticker,
            },
            market,
        )

    def parse_trade(self, trade: dict[str, Any], market: Any = None) -> dict[str, Any]:
        """A public trade (``/trades``: the aggressor's side) or one of the trader's fills (``/fills``: its side)."""
        market = self.safe_market(self.safe_string(trade, "symbol"), market)  # type: ignore[attr-defined]
        timestamp = self.safe_integer(trade, "time") or None  # type: ignore[attr-defined]
        fill = trade.get("type") == "fill"
        s = self.safe_string  # type: ignore[attr-defined]
        return self.safe_trade(  # type: ignore[no-any-return,attr-defined]
            {
                "info": trade,
                "id": s(trade, "trade_id"),
                "order": s(trade, "order_id") if fill else None,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),  # type: ignore[attr-defined]
                "symbol": market["symbol"],
                "type": None,
                "side": s(trade, "side") if fill else s(trade, "aggressor_side"),
                "takerOrMaker": ("maker" if trade.get("maker") else "taker") if fill else None,
                "price": s(trade, "price"),
                "amount": s(trade, "qty"),
                "cost": None,
                "fee": None,
            },
            market,
        )

    def parse_ohlcv(self, ohlcv: list[Any], market: Any = None) -> list[Any]:
        """``[start, open, high, low, close, volume, trades]`` (decimal strings) -> ccxt's six numbers."""
        num = self.safe_number  # type: ignore[attr-defined]
        return [self.safe_integer(ohlcv, 0), num(ohlcv, 1), num(ohlcv, 2), num(ohlcv, 3), num(ohlcv, 4), num(ohlcv, 5)]  # type: ignore[attr-defined]

    def parse_order(self, order: dict[str, Any], market: Any = None) -> dict[str, Any]:
        """An order view (``GET /orders``, ``/orders/{id}``, ``/orders/client/{id}``)."""
        market = self.safe_market(self.safe_string(order, "symbol"), market)  # type: ignore[attr-defined]
        s = self.safe_string  # type: ignore[attr-defined]
        remaining, filled = s(order, "remaining", "0"), s(order, "filled", "0")
        kind = s(order, "order_type", "limit")
        trigger = s(order, "stop_price")
        return self._order(
            order, market, kind, trigger, Precise.string_add(remaining, filled), filled, _ORDER_STATUS.get(s(order, "status"))
        )

    def parse_command_reply(self, reply: dict[str, Any], market: Any) -> dict[str, Any]:
        """The order a place command made, from its events: accepted, its trades, a cancel of what was left."""
        events = [e for e in reply.get("events") or [] if isinstance(e, dict)]
        accepted = next((e for e in events if e.get("type") == "accepted"), None)
        if accepted is None:
            raise ccxt.ExchangeError(f"{self.id} no accepted event in {reply!r}")
        order_id = accepted["order_id"]
        filled, cost = "0", "0"
        for event in events:
            if event.get("type") == "trade" and order_id in (event.get("taker_order_id"), event.get("maker_order_id")):
                filled = Precise.string_add(filled, event["qty"])
                cost = Precise.string_add(cost, Precise.string_mul(event["price"], event["qty"]))
        amount = accepted["qty"]
        cancelled = any(e.get("type") == "cancelled" and e.get("order_id") == order_id for e in events)
        status = "closed" if Precise.string_eq(filled, amount) else ("canceled" if cancelled else "open")
        order = self._order(accepted, market, accepted.get("order_type", "limit"), accepted.get("stop_price"), amount, filled, status)
        order["info"] = reply
        if Precise.string_gt(filled, "0"):
            order["cost"] = self.parse_number(cost)  # type: ignore[attr-defined]
            order["average"] = self.parse_number(Precise.string_div(cost, filled))  # type: ignore[attr-defined]
        return order

    def _order(
        self, view: dict[str, Any], market: Any, kind: str, trigger: str | None, amount: str, filled: str, status: str | None
    ) -> dict[str, Any]:
        s = self.safe_string  # type: ignore[attr-defined]
        return self.safe_order(  # type: ignore[no-any-return,attr-defined]
            {
                "info": view,
                "id": s(view, "order_id"),
                "clientOrderId": s(view, "client_order_id") or None,
                "timestamp": None,
                "datetime": None,
                "lastTradeTimestamp": None,
                "symbol": market["symbol"],
                "type": "market" if kind in ("market", "stop_market") else "limit",
                "timeInForce": (s(view, "tif") or "gtc").upper(),
                "postOnly": None,
                "side": s(view, "side"),
                "price": s(view, "price"),
                "triggerPrice": trigger,
                "stopPrice": trigger,
                "amount": amount,
                "filled": filled,
                "remaining": Precise.string_sub(amount, filled),
                "cost": None,
                "average": None,
                "status": status,
                "fee": None,
                "trades": None,
            },
            market,
        )

    # ------------------------------------------------------------ requests
    def order_request(
        self, market: dict[str, Any], type: str, side: str, amount: Any, price: Any, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The place command's JSON body for ccxt's ``create_order`` arguments.

        ``type`` is ``limit`` or ``market``; ``params``: ``timeInForce`` (GTC, IOC, FOK, or PO for post-only),
        ``postOnly``, ``triggerPrice``/``stopPrice`` (a stop order: stop-limit with a price, stop-market without),
        ``clientOrderId``.
        """
        to_text = self.number_to_string  # type: ignore[attr-defined]
        body: dict[str, Any] = {"symbol": market["id"], "side": side, "qty": to_text(amount)}
        params = dict(params)
        trigger = params.pop("triggerPrice", None) or params.pop("stopPrice", None)
        tif = str(params.pop("timeInForce", "") or "").upper()
        post_only = bool(params.pop("postOnly", False)) or tif == "PO"
        client_order_id = params.pop("clientOrderId", None)
        if type not in ("limit", "market"):
            raise ccxt.InvalidOrder(f"{self.id} order type {type!r}: limit or market (a stop: triggerPrice in params)")
        if trigger is not None:
            body["order_type"] = "stop_limit" if type == "limit" else "stop_market"
            body["stop_price"] = to_text(trigger)
        else:
            body["order_type"] = type
        if type == "limit":
            if price is None:
                raise ccxt.ArgumentsRequired(f"{self.id} create_order() needs a price for a limit order")
            body["price"] = to_text(price)
        if tif in _TIF:
            body["tif"] = _TIF[tif]
        if post_only:
            body["post_only"] = True
        if client_order_id is not None:
            body["client_order_id"] = str(client_order_id)
        body.update(params)
        return body
