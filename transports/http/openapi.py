"""JSON Schemas of the HTTP bodies, for the OpenAPI document only.

The endpoints never validate through these (the codec decodes the raw body,
strictly, in one pass); they exist so that ``/docs`` and ``/openapi.json``
describe exactly what the server accepts and answers, and schemathesis checks
every response against them. They follow docs/json-format.md and
``transports/codec/json_codec.py``: change one, change the other.
"""

from __future__ import annotations

from typing import Any

from engine import CancelReason, OrderStatus, OrderType, RejectReason, SelfTradePrevention, Side, TimeInForce
from transports.core.candles import INTERVALS
from transports.core.limits import MAX_TRADER_LENGTH
from transports.core.sessions import MAX_GRACE_MS, MIN_GRACE_MS

Schema = dict[str, Any]
JSON = "application/json"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _lower(kind: type[Any]) -> list[str]:
    return [m.lower() for m in kind.__members__]


_DECIMAL: Schema = {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,8})?$", "examples": ["30000.50"]}
_OPT_DECIMAL: Schema = {"type": ["string", "null"], "pattern": r"^[0-9]+(\.[0-9]+)?$"}
_OUT_DECIMAL: Schema = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
_TEXT: Schema = {"type": "string", "maxLength": 64}
_SYMBOL: Schema = {"type": "string", "minLength": 1, "maxLength": 32, "examples": ["BTC-USD"]}
_ORDER_ID: Schema = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
_SEQ: Schema = {"type": "integer", "minimum": 0}
_REQUEST_ID: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": 2**63 - 1,
    "description": "per trader; a retry inside the de-duplication window is answered with the first answer (docs/exactly-once.md)",
}


def _event(kind: str, props: Schema) -> Schema:
    properties = {"type": {"const": kind}, "seq": {"type": "integer", "minimum": 1}, **props}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


_PUBLIC_TRADE: Schema = {
    "trade_id": {"type": "integer", "minimum": 1},
    "symbol": {"type": "string"},
    "price": _OUT_DECIMAL,
    "qty": _OUT_DECIMAL,
    "aggressor_side": {"enum": _lower(Side)},
}
_TIME: Schema = {"type": "integer", "minimum": 0, "description": "ms since the epoch (UTC); 0: unknown"}
_SIGNED_DECIMAL: Schema = {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
_TICKER_PROPS: Schema = {
    "symbol": _SYMBOL,
    "time": _TIME,
    "last": _OPT_DECIMAL,
    "last_trade_id": {"type": "integer", "minimum": 0},
    "bid": _OPT_DECIMAL,
    "bid_qty": _OUT_DECIMAL,
    "ask": _OPT_DECIMAL,
    "ask_qty": _OUT_DECIMAL,
    "open": _OPT_DECIMAL,
    "high": _OPT_DECIMAL,
    "low": _OPT_DECIMAL,
    "volume": _OUT_DECIMAL,
    "trades": {"type": "integer", "minimum": 0},
    "change": _SIGNED_DECIMAL,
    "change_percent": _SIGNED_DECIMAL,
}
_CANDLE: Schema = {
    "type": "array",
    "prefixItems": [_TIME, _OUT_DECIMAL, _OUT_DECIMAL, _OUT_DECIMAL, _OUT_DECIMAL, _OUT_DECIMAL, {"type": "integer", "minimum": 1}],
    "minItems": 7,
    "maxItems": 7,
}
_INSTRUMENT_PROPS: Schema = {
    "symbol": _SYMBOL,
    "tick_size": _OUT_DECIMAL,
    "lot_size": _OUT_DECIMAL,
    "min_qty": _OUT_DECIMAL,
    "max_qty": _OUT_DECIMAL,
    "price_band_bps": {"type": "integer", "minimum": 0},
    "reference_price": _OPT_DECIMAL,
}

_EVENTS: dict[str, Schema] = {
    "AcceptedEvent": _event(
        "accepted",
        {
            "order_id": _ORDER_ID,
            "trader": {"type": "string"},
            "client_order_id": {"type": "string"},
            "symbol": {"type": "string"},
            "side": {"enum": _lower(Side)},
            "order_type": {"enum": _lower(OrderType)},
            "tif": {"enum": _lower(TimeInForce)},
            "price": _OPT_DECIMAL,
            "qty": _OUT_DECIMAL,
            "stop_price": _OPT_DECIMAL,
        },
    ),
    "RejectedEvent": _event(
        "rejected",
        {
            "trader": {"type": "string"},
            "client_order_id": {"type": "string"},
            "symbol": {"type": "string"},
            "reason": {"enum": list(RejectReason.__members__)},
            "code": {"type": "integer"},
            "message": {"type": "string"},
            "order_id": {"type": ["integer", "null"]},
        },
    ),
    "TradeEvent": _event(
        "trade",
        {
            **_PUBLIC_TRADE,
            "maker_order_id": _ORDER_ID,
            "maker_trader": {"type": "string"},
            "maker_client_order_id": {"type": "string"},
            "maker_remaining": _OUT_DECIMAL,
            "taker_order_id": _ORDER_ID,
            "taker_trader": {"type": "string"},
            "taker_client_order_id": {"type": "string"},
            "taker_remaining": _OUT_DECIMAL,
        },
    ),
    "PublicTrade": _event("trade", _PUBLIC_TRADE),  # GET /trades and the WebSocket: anonymous
    "CancelledEvent": _event(
        "cancelled",
        {
            "order_id": _ORDER_ID,
            "trader": {"type": "string"},
            "client_order_id": {"type": "string"},
            "symbol": {"type": "string"},
            "reason": {"enum": list(CancelReason.__members__)},
            "qty": _OUT_DECIMAL,
            "remaining": _OUT_DECIMAL,
        },
    ),
    "ReplacedEvent": _event(
        "replaced",
        {
            "order_id": _ORDER_ID,
            "trader": {"type": "string"},
            "client_order_id": {"type": "string"},
            "symbol": {"type": "string"},
            "side": {"enum": _lower(Side)},
            "price": _OPT_DECIMAL,
            "qty": _OUT_DECIMAL,
            "priority_kept": {"type": "boolean"},
        },
    ),
    "StopTriggeredEvent": _event(
        "stop_triggered",
        {
            "order_id": _ORDER_ID,
            "trader": {"type": "string"},
            "client_order_id": {"type": "string"},
            "symbol": {"type": "string"},
            "stop_price": _OPT_DECIMAL,
            "last_price": _OPT_DECIMAL,
        },
    ),
    "BookDeltaEvent": _event(
        "book_delta",
        {
            "symbol": {"type": "string"},
            "side": {"enum": _lower(Side)},
            "price": _OPT_DECIMAL,
            "qty": _OUT_DECIMAL,
            "order_count": {"type": "integer", "minimum": 0},
        },
    ),
    "InstrumentAddedEvent": _event("instrument_added", _INSTRUMENT_PROPS),
}


def _command(kind: str | None, props: Schema, required: list[str], any_of: list[Schema] | None = None) -> Schema:
    type_schema: Schema = {"const": kind} if kind else {"const": "place"}
    out: Schema = {
        "type": "object",
        "properties": {"type": type_schema, **props},
        "required": (["type"] if kind and kind != "place" else []) + required,
        "additionalProperties": False,
    }
    if any_of:
        out["anyOf"] = any_of
    return out


_BY_ID_OR_CLIENT_ID = [{"required": ["order_id"]}, {"required": ["client_order_id"]}]
_TRADER_FIELD: Schema = {"type": "string", "maxLength": 64, "description": "ignored: the X-Trader header names the trader"}

_COMMANDS: dict[str, Schema] = {
    "PlaceCommand": _command(
        "place",
        {
            "trader": _TRADER_FIELD,
            "client_order_id": _TEXT,
            "symbol": _SYMBOL,
            "side": {"enum": _lower(Side)},
            "order_type": {"enum": _lower(OrderType)},
            "price": _DECIMAL,
            "qty": _DECIMAL,
            "tif": {"enum": _lower(TimeInForce)},
            "post_only": {"type": "boolean"},
            "stop_price": _DECIMAL,
            "stp": {"enum": _lower(SelfTradePrevention)},
        },
        ["symbol", "side", "qty"],
    ),
    "CancelCommand": _command(
        "cancel",
        {"trader": _TRADER_FIELD, "order_id": _ORDER_ID, "client_order_id": _TEXT, "symbol": _SYMBOL, "request_id": _REQUEST_ID},
        [],
        _BY_ID_OR_CLIENT_ID,
    ),
    "ReplaceCommand": _command(
        "replace",
        {
            "trader": _TRADER_FIELD,
            "order_id": _ORDER_ID,
            "client_order_id": _TEXT,
            "symbol": _SYMBOL,
            "price": _DECIMAL,
            "qty": _DECIMAL,
            "request_id": _REQUEST_ID,
        },
        ["symbol"],
        _BY_ID_OR_CLIENT_ID,
    ),
    "MassCancelCommand": _command("mass_cancel", {"trader": _TRADER_FIELD, "symbol": _SYMBOL, "request_id": _REQUEST_ID}, []),
    "AddInstrumentCommand": _command(
        "add_instrument",
        {
            "symbol": _SYMBOL,
            "tick_size": _DECIMAL,
            "lot_size": _DECIMAL,
            "min_qty": _DECIMAL,
            "max_qty": _DECIMAL,
            "price_band_bps": {"type": "integer", "minimum": 0, "maximum": 10_000},
            "reference_price": _DECIMAL,
        },
        ["symbol", "tick_size", "lot_size"],
    ),
}

_LEVEL: Schema = {
    "type": "array",
    "description": "[price, qty, order_count]",
    "prefixItems": [_OUT_DECIMAL, _OUT_DECIMAL, {"type": "integer", "minimum": 1}],
    "minItems": 3,
    "maxItems": 3,
}

_ORDER_PROPS: Schema = {
    "order_id": _ORDER_ID,
    "trader": {"type": "string"},
    "client_order_id": {"type": "string"},
    "symbol": {"type": "string"},
    "side": {"enum": _lower(Side)},
    "order_type": {"enum": _lower(OrderType)},
    "tif": {"enum": _lower(TimeInForce)},
    "price": _OPT_DECIMAL,
    "stop_price": _OPT_DECIMAL,
    "remaining": _OUT_DECIMAL,
    "filled": _OUT_DECIMAL,
    "status": {"enum": _lower(OrderStatus)},
}

COMPONENTS: dict[str, Schema] = {
    **_EVENTS,
    "Event": {"oneOf": [ref(name) for name in _EVENTS]},
    **_COMMANDS,
    "Command": {"anyOf": [ref(name) for name in _COMMANDS]},
    "CommandReply": {
        "type": "object",
        "properties": {"events": {"type": "array", "items": ref("Event")}},
        "required": ["events"],
        "additionalProperties": False,
    },
    "BatchReply": {
        "type": "object",
        "properties": {"replies": {"type": "array", "items": ref("CommandReply")}},
        "required": ["replies"],
        "additionalProperties": False,
    },
    "Error": {
        "type": "object",
        "properties": {
            "type": {"const": "error"},
            "reason": {"enum": list(RejectReason.__members__)},
            "code": {"type": "integer"},
            "message": {"type": "string"},
        },
        "required": ["type", "reason", "code", "message"],
        "additionalProperties": False,
    },
    "Book": {
        "type": "object",
        "properties": {
            "symbol": _SYMBOL,
            "seq": _SEQ,
            "md_seq": _SEQ,
            "bids": {"type": "array", "items": _LEVEL},
            "asks": {"type": "array", "items": _LEVEL},
            "last_price": _OPT_DECIMAL,
        },
        "required": ["symbol", "seq", "md_seq", "bids", "asks", "last_price"],
        "additionalProperties": False,
    },
    "Order": {"type": "object", "properties": _ORDER_PROPS, "required": list(_ORDER_PROPS), "additionalProperties": False},
    "Orders": {
        "type": "object",
        "properties": {"orders": {"type": "array", "items": ref("Order")}},
        "required": ["orders"],
        "additionalProperties": False,
    },
    "TimedTrade": _event("trade", {**_PUBLIC_TRADE, "time": _TIME}),  # GET /trades and the trades channel
    "Fill": _event(  # GET /fills: the trader's own side of a trade, never the counterparty
        "fill",
        {
            "trade_id": {"type": "integer", "minimum": 1},
            "symbol": {"type": "string"},
            "order_id": _ORDER_ID,
            "client_order_id": {"type": "string"},
            "side": {"enum": _lower(Side)},
            "price": _OUT_DECIMAL,
            "qty": _OUT_DECIMAL,
            "remaining": _OUT_DECIMAL,
            "maker": {"type": "boolean"},
            "time": _TIME,
        },
    ),
    "Fills": {
        "type": "object",
        "properties": {"fills": {"type": "array", "items": ref("Fill")}},
        "required": ["fills"],
        "additionalProperties": False,
    },
    "Trades": {
        "type": "object",
        "properties": {"trades": {"type": "array", "items": ref("TimedTrade")}},
        "required": ["trades"],
        "additionalProperties": False,
    },
    "Ticker": {
        "type": "object",
        "description": "The last trade, the best bid and ask, and the 24 h window ending with the current minute (null: none).",
        "properties": _TICKER_PROPS,
        "required": list(_TICKER_PROPS),
        "additionalProperties": False,
    },
    "Tickers": {
        "type": "object",
        "properties": {"tickers": {"type": "array", "items": ref("Ticker")}},
        "required": ["tickers"],
        "additionalProperties": False,
    },
    "Candles": {
        "type": "object",
        "description": "OHLCV rows [start ms, open, high, low, close, volume, trades], oldest first; only intervals that traded.",
        "properties": {
            "symbol": _SYMBOL,
            "interval": {"enum": list(INTERVALS)},
            "candles": {"type": "array", "items": _CANDLE},
        },
        "required": ["symbol", "interval", "candles"],
        "additionalProperties": False,
    },
    "Instrument": {
        "type": "object",
        "properties": _INSTRUMENT_PROPS,
        "required": list(_INSTRUMENT_PROPS),
        "additionalProperties": False,
    },
    "Instruments": {
        "type": "object",
        "properties": {"instruments": {"type": "array", "items": ref("Instrument")}},
        "required": ["instruments"],
        "additionalProperties": False,
    },
    "Stats": {
        "type": "object",
        "description": "Gateway counters (Gateway.stats_dict); the harness reconciles against them.",
        "properties": {
            "orders": {"type": "integer"},
            "commands": {"type": "object", "additionalProperties": {"type": "integer"}},
            "accepted": {"type": "integer"},
            "rejected": {"type": "integer"},
            "rejected_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}},
            "trades": {"type": "integer"},
            "cancelled_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_transport": {"type": "object", "additionalProperties": {"type": "integer"}},
            "overloaded": {"type": "integer"},
            "queue_depth": {"type": "integer"},
            "batches": {"type": "integer"},
            "fsyncs": {"type": "integer"},
            "engine_seq": {"type": "integer"},
            "recovered_commands": {"type": "integer"},
            "market_data_published": {"type": "integer"},
            "market_data_subscribers": {"type": "integer"},
            "market_data_gaps": {"type": "integer"},
            "latency_us": {"type": "object", "additionalProperties": {"type": "integer"}},
            "fsync_us": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        "required": ["orders", "accepted", "rejected", "trades", "engine_seq", "queue_depth"],
    },
    "CancelOnDisconnect": {
        "type": "object",
        "description": "Arm (or refresh: the heartbeat), or with 0 disarm, cancel on disconnect (docs/sessions.md)",
        "properties": {
            "type": {"const": "cancel_on_disconnect"},
            "grace_ms": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_GRACE_MS,
                "description": f"milliseconds: 0 (disarm), or {MIN_GRACE_MS} to {MAX_GRACE_MS}",
            },
        },
        "required": ["grace_ms"],
        "additionalProperties": False,
    },
    "TransportPanel": {
        "type": "object",
        "description": "Each transport's figures over the window since the previous sample (transports/core/transport_panel.py)",
        "properties": {
            "type": {"const": "transports"},
            "time": _TIME,
            "window_s": {"type": "number", "minimum": 0},
            "queue_depth": {"type": "integer", "minimum": 0},
            "transports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "transport": {"type": "string"},
                        "orders_per_s": {"type": "number", "minimum": 0},
                        "commands_per_s": {"type": "number", "minimum": 0},
                        "p50_us": {"type": "integer", "minimum": 0},
                        "p99_us": {"type": "integer", "minimum": 0},
                        "rejects": {"type": "integer", "minimum": 0},
                        "refused": {"type": "integer", "minimum": 0},
                        "queue_depth": {"type": "integer", "minimum": 0},
                        "commands": {"type": "integer", "minimum": 0},
                        "rejects_total": {"type": "integer", "minimum": 0},
                    },
                    "required": ["transport", "orders_per_s", "commands_per_s", "p50_us", "p99_us", "rejects", "queue_depth"],
                },
            },
        },
        "required": ["type", "time", "window_s", "queue_depth", "transports"],
        "additionalProperties": False,
    },
    "Health": {
        "type": "object",
        "properties": {"status": {"const": "ok"}, "engine_seq": _SEQ, "queue_depth": {"type": "integer", "minimum": 0}},
        "required": ["status", "engine_seq", "queue_depth"],
        "additionalProperties": False,
    },
}

TRADER_PARAMETER: Schema = {
    "name": "X-Trader",
    "in": "header",
    "required": True,
    "description": "The acting trader, on a server started with --auth off (loopback only): the server trusts it. "
    "A server with --auth keys ignores it: the request's signature names the trader (docs/security.md).",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_TRADER_LENGTH},
}

_SIGNED = (
    "Signed requests (--auth keys, docs/security.md): DEX-KEY, DEX-TIMESTAMP (Unix ms), DEX-WINDOW (ms, default 5000, "
    "at most 60000) and DEX-SIGNATURE over `<timestamp>\\n<window>\\n<METHOD>\\n<path>\\n<query>\\n<body>` "
    "(Ed25519, base64; or HMAC-SHA256, hex). A WebSocket upgrade may carry them as the query parameters "
    "dex-key, dex-timestamp, dex-window, dex-signature."
)
SECURITY_SCHEMES: Schema = {
    "DexKey": {"type": "apiKey", "in": "header", "name": "DEX-KEY", "description": "the key id. " + _SIGNED},
    "DexTimestamp": {"type": "apiKey", "in": "header", "name": "DEX-TIMESTAMP", "description": "when the request was signed, Unix ms"},
    "DexSignature": {"type": "apiKey", "in": "header", "name": "DEX-SIGNATURE", "description": "the signature (see DexKey)"},
}
SIGNED_REQUEST: list[Schema] = [{name: [] for name in SECURITY_SCHEMES}]


def body(schema: Schema, *, required: bool = True, description: str = "") -> Schema:
    """``openapi_extra`` documenting a JSON request body the endpoint decodes itself."""
    out: Schema = {"requestBody": {"required": required, "content": {JSON: {"schema": schema}}}}
    if description:
        out["requestBody"]["description"] = description
    return out


def with_trader(extra: Schema | None = None) -> Schema:
    """``openapi_extra`` adding the X-Trader header (declared by hand: a missing one is 401, not 422)."""
    return {**(extra or {}), "parameters": [TRADER_PARAMETER]}


def responses(ok: Schema, errors: dict[int, Schema], *, ok_media: str = JSON) -> dict[int | str, Any]:
    """Documented responses: ``ok`` for 200 and one schema per error status."""
    out: dict[int | str, Any] = {200: {"content": {ok_media: {"schema": ok}}}}
    for status, schema in errors.items():
        out[status] = {"content": {JSON: {"schema": schema}}}
    return out


ERROR = ref("Error")
# A single-command endpoint answers a rejected command with its events and a 4xx,
# and undecodable input with the error body.
COMMAND_OUTCOME: Schema = {"anyOf": [ref("CommandReply"), ref("Error")]}


def finish(openapi: Schema, *, signed: bool = False) -> Schema:
    """Add our components and drop FastAPI's default 422 (our validation errors are 400 with ``Error``).

    The signed-request scheme is always listed; ``signed`` (a server with ``--auth keys``) requires it on every
    operation that acts as a trader, in place of the X-Trader header.
    """
    components = openapi.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(COMPONENTS)
    components["securitySchemes"] = SECURITY_SCHEMES
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            if signed and any(p.get("name") == TRADER_PARAMETER["name"] for p in operation.get("parameters", ())):
                operation["parameters"] = [p for p in operation["parameters"] if p.get("name") != TRADER_PARAMETER["name"]]
                operation["security"] = SIGNED_REQUEST
            answers = operation.get("responses", {})
            default_422 = answers.get("422", {}).get("content", {}).get(JSON, {}).get("schema", {})
            if default_422.get("$ref", "").endswith("/HTTPValidationError"):
                del answers["422"]
    return openapi
