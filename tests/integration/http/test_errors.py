"""Every way a request can fail comes back as our error body, a 4xx, and a stable reason."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from engine import RejectReason
from tests.integration.http.conftest import LiveServer, StartServer
from tests.integration.http.helpers import SYMBOL, assert_error, events, order_id, place
from transports.codec.status import REJECT_HTTP_STATUS, http_status

ALICE = {"X-Trader": "alice"}


def test_every_reject_reason_has_an_http_status() -> None:
    assert set(REJECT_HTTP_STATUS) == set(RejectReason)
    assert http_status(RejectReason.UNAUTHORIZED) == 403
    assert http_status(RejectReason.UNAUTHORIZED, identified=False) == 401
    assert all(400 <= s < 600 for s in REJECT_HTTP_STATUS.values())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "MALFORMED_MESSAGE"),
        (b"", "MALFORMED_MESSAGE"),
        (b"[1, 2]", "MALFORMED_MESSAGE"),
        (b'{"symbol": "BTC-USD", "side": "buy", "price": "30000.00", "qty": "1", "colour": "red"}', "MALFORMED_MESSAGE"),
        (b'{"symbol": "BTC-USD", "side": "buy", "price": 30000.5, "qty": "1"}', "INVALID_PRICE"),
        (b'{"symbol": "BTC-USD", "side": "buy", "price": "30000.00", "qty": 1}', "INVALID_QUANTITY"),
        (b'{"symbol": "BTC-USD", "side": "buy", "price": "30000.005", "qty": "1"}', "INVALID_PRICE"),
        (b'{"symbol": "BTC-USD", "side": "buy", "price": "30000.00", "qty": "0.00001"}', "INVALID_QUANTITY"),
        (b'{"symbol": "BTC-USD", "side": "sideways", "price": "30000.00", "qty": "1"}', "MALFORMED_MESSAGE"),
        (b'{"symbol": "BTC-USD", "price": "30000.00", "qty": "1"}', "MALFORMED_MESSAGE"),
        (b'{"type": "teleport"}', "MALFORMED_MESSAGE"),
        (b'{"type": "cancel"}', "MALFORMED_MESSAGE"),
    ],
)
def test_undecodable_commands_are_400_with_a_stable_reason(http: httpx.Client, body: bytes, reason: str) -> None:
    assert_error(http.post("/orders", content=body, headers=ALICE), 400, reason)
    assert_error(http.post("/orders/batch", content=b"[" + body + b"]" if body.startswith(b"{") else body, headers=ALICE), 400, reason)


def test_an_unknown_symbol_is_404_everywhere(http: httpx.Client) -> None:
    order = {"symbol": "DOGE-USD", "side": "buy", "price": "1.00", "qty": "1"}
    assert_error(http.post("/orders", json=order, headers=ALICE), 404, "UNKNOWN_SYMBOL")
    assert_error(http.post("/orders/batch", json=[order], headers=ALICE), 404, "UNKNOWN_SYMBOL")
    assert_error(http.get("/book/DOGE-USD"), 404, "UNKNOWN_SYMBOL")
    assert_error(http.get("/trades/DOGE-USD"), 404, "UNKNOWN_SYMBOL")
    assert_error(http.get("/orders", params={"symbol": "DOGE-USD"}, headers=ALICE), 404, "UNKNOWN_SYMBOL")


def test_a_missing_trader_is_401_on_every_order_endpoint(http: httpx.Client) -> None:
    order = {"symbol": SYMBOL, "side": "buy", "price": "29000.00", "qty": "1"}
    for response in (
        http.post("/orders", json=order),
        http.post("/orders", json=order, headers={"X-Trader": ""}),
        http.post("/orders/batch", json=[order]),
        http.delete("/orders/1"),
        http.post("/orders/1/replace", json={"symbol": SYMBOL, "qty": "1"}),
        http.post("/orders/mass-cancel"),
        http.get("/orders/1"),
        http.get("/orders"),
    ):
        assert_error(response, 401, "UNAUTHORIZED")
    assert_error(http.get("/orders", headers={"X-Trader": "x" * 65}), 400, "MALFORMED_MESSAGE")
    assert http.get("/stats").json()["orders"] == 0


def test_add_instrument_is_403_unless_the_server_allows_admin(start_server: StartServer) -> None:
    listing = {"type": "add_instrument", "symbol": "DOGE-USD", "tick_size": "0.0001", "lot_size": "1"}
    with httpx.Client(base_url=start_server().url) as http:
        assert_error(http.post("/orders", json=listing, headers=ALICE), 403, "UNAUTHORIZED")
        assert_error(http.post("/orders/batch", json=[listing], headers=ALICE), 403, "UNAUTHORIZED")
        assert [i["symbol"] for i in http.get("/instruments").json()["instruments"]] == ["BTC-USD", "ETH-USD", "SOL-USD"]
    with httpx.Client(base_url=start_server(allow_admin=True).url) as http:
        added = http.post("/orders", json=listing, headers=ALICE)
        assert added.status_code == 200 and events(added)[0]["type"] == "instrument_added"
        again = http.post("/orders", json=listing, headers=ALICE)
        assert again.status_code == 409 and events(again)[0]["reason"] == "INSTRUMENT_EXISTS"
        assert place(http, "alice", "buy", "0.0712", "100", symbol="DOGE-USD").status_code == 200


def test_too_large_batches_and_bodies_are_413(start_server: StartServer) -> None:
    server = start_server(max_batch=100, max_body_bytes=64 * 1024)
    with httpx.Client(base_url=server.url) as http:
        order = {"symbol": SYMBOL, "side": "buy", "price": "29000.00", "qty": "1"}
        assert_error(http.post("/orders/batch", json=[order] * 101, headers=ALICE), 413, "LIMIT_EXCEEDED")
        assert_error(http.post("/orders/batch", content=b"[" + b" " * 70_000 + b"]", headers=ALICE), 413, "LIMIT_EXCEEDED")

        def chunked() -> object:
            yield b"["
            for _ in range(1000):
                yield b" " * 100
            yield b"]"

        assert_error(http.post("/orders/batch", content=chunked(), headers=ALICE), 413, "LIMIT_EXCEEDED")  # type: ignore[arg-type]
        assert http.post("/orders/batch", json=[order] * 100, headers=ALICE).status_code == 200


def test_a_batch_over_the_servers_limit_is_413(http: httpx.Client) -> None:
    # Default server: at most 10,000 commands in a batch (docs/limits.md).
    huge = b"[" + b",".join([b"{}"] * 10_001) + b"]"
    assert_error(http.post("/orders/batch", content=huge, headers=ALICE), 413, "LIMIT_EXCEEDED")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/orders/abc"),
        ("GET", "/orders/0"),
        ("GET", "/orders/-3"),
        ("GET", "/orders/99999999999999999999"),
        ("DELETE", "/orders/abc"),
        ("GET", "/book/BTC-USD?depth=0"),
        ("GET", "/book/BTC-USD?depth=many"),
        ("GET", "/trades/BTC-USD?limit=100000"),
    ],
)
def test_bad_path_and_query_parameters_are_400_with_our_body(http: httpx.Client, method: str, path: str) -> None:
    assert_error(http.request(method, path, headers=ALICE), 400, "MALFORMED_MESSAGE")


def test_unknown_routes_and_methods_get_our_body(http: httpx.Client) -> None:
    assert_error(http.get("/nowhere"), 404, "MALFORMED_MESSAGE")
    response = assert_error(http.put("/orders", headers=ALICE), 405, "MALFORMED_MESSAGE")
    assert response["message"].startswith("Method Not Allowed")


def test_endpoint_bodies_must_match_the_endpoint(http: httpx.Client) -> None:
    oid = order_id(place(http, "alice", "buy", "29000.00", "1"))
    replace = f"/orders/{oid}/replace"
    assert_error(http.post(replace, json={"symbol": SYMBOL}, headers=ALICE), 400, "MALFORMED_MESSAGE")  # neither price nor qty
    assert_error(http.post(replace, json={"symbol": SYMBOL, "qty": "1", "order_id": oid + 1}, headers=ALICE), 400, "MALFORMED_MESSAGE")
    assert_error(http.post(replace, json={"type": "cancel", "symbol": SYMBOL, "qty": "1"}, headers=ALICE), 400, "MALFORMED_MESSAGE")
    assert_error(http.post(replace, json=["qty"], headers=ALICE), 400, "MALFORMED_MESSAGE")
    assert_error(http.post("/orders/mass-cancel", json={"symbol": SYMBOL, "side": "buy"}, headers=ALICE), 400, "MALFORMED_MESSAGE")
    assert_error(http.post("/orders/mass-cancel", content=b"nope", headers=ALICE), 400, "MALFORMED_MESSAGE")


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        ({"side": "buy", "price": "40000.00", "qty": "1"}, 422, "PRICE_OUT_OF_BAND"),
        ({"side": "buy", "price": "29000.00", "qty": "5000"}, 400, "QUANTITY_ABOVE_MAX"),
        ({"side": "buy", "price": "30000.00", "qty": "1", "post_only": True}, 409, "POST_ONLY_WOULD_TAKE"),
        ({"side": "buy", "price": "29000.00", "qty": "1", "client_order_id": "dup"}, 409, "DUPLICATE_CLIENT_ORDER_ID"),
    ],
)
def test_engine_rejects_map_to_the_status_table_on_single_command_endpoints(
    http: httpx.Client, fields: dict[str, object], status: int, reason: str
) -> None:
    place(http, "bob", "sell", "30000.00", "1")
    place(http, "alice", "buy", "28000.00", "1", client_order_id="dup")
    response = http.post("/orders", json={"symbol": SYMBOL, **fields}, headers=ALICE)
    assert response.status_code == status == REJECT_HTTP_STATUS[RejectReason[reason]]
    (rejected,) = events(response)
    assert (rejected["type"], rejected["reason"], rejected["code"]) == ("rejected", reason, int(RejectReason[reason]))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"price": "29000.00", "post_only": True, "tif": "ioc"}, "INVALID_ORDER"),
        ({"order_type": "market", "price": "0"}, "INVALID_ORDER"),
        ({"order_type": "market", "price": "30000.00"}, "INVALID_ORDER"),
        ({"price": "29000.00", "stop_price": "29500.00"}, "INVALID_ORDER"),
        ({"price": "0"}, "INVALID_PRICE"),
        ({"price": "29000.00", "side": "BUY"}, "MALFORMED_MESSAGE"),
    ],
)
def test_strict_values_are_refused_before_the_engine_with_their_reason(http: httpx.Client, fields: dict[str, object], reason: str) -> None:
    """docs/json-format.md, "Strict values": such input never reaches the engine (an error, no event, no order)."""
    response = http.post("/orders", json={"symbol": SYMBOL, "side": "buy", "qty": "1", **fields}, headers=ALICE)
    assert_error(response, REJECT_HTTP_STATUS[RejectReason[reason]], reason)
    assert http.get("/stats").json()["orders"] == 0


def test_a_client_that_hangs_up_mid_body_is_not_an_internal_error(http: httpx.Client, server: LiveServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /orders HTTP/1.1\r\nHost: x\r\nX-Trader: alice\r\nContent-Length: 1000\r\n\r\n{")
        time.sleep(0.2)  # the server is now waiting for the rest of the body
    time.sleep(0.2)  # ... and has seen the hang-up
    assert http.get("/health").status_code == 200
    metrics = http.get("/metrics").text
    assert "INTERNAL_ERROR" not in metrics
    assert http.get("/stats").json()["orders"] == 0


def test_a_stopped_gateway_answers_503_with_retry_after(start_server: StartServer) -> None:
    server = start_server()
    assert server.gateway is not None
    gateway = server.gateway
    server.call(gateway.stop)
    with httpx.Client(base_url=server.url) as http:
        response = place(http, "alice", "buy", "29000.00", "1")
        assert_error(response, 503, "OVERLOADED")
        assert response.headers["retry-after"] == "1"
        assert_error(http.post("/orders/batch", json=[{"symbol": SYMBOL, "side": "buy", "qty": "1"}], headers=ALICE), 503, "OVERLOADED")
