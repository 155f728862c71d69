"""Interop with a foreign gRPC client: Node.js ``@grpc/grpc-js`` against a real ``dex-grpc`` process.

The Node client (tests/interop/grpc-node/trade.js, npm packages installed by
``make setup``) loads ``protos/exchange/v1/exchange.proto`` at run time: no
code of ours. It rests a sell, buys from the pipelined ``Trade`` stream
against a sell our own client rested, sees that trade on the public
``MarketData`` stream, reads its order back and cancels it. With
``--auth keys`` it does the same over TLS (the CA of ``dex-keys tls``),
signing each private call's metadata with Node's own crypto, Ed25519 and
HMAC alike, as docs/security.md describes; unsigned, it is refused with
``UNAUTHENTICATED``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine import OrderAccepted, PlaceOrder, Side
from transports.core.keys import CLIENTS_DIR, Credential, create_key
from transports.grpc.auth import with_ca
from transports.grpc.client import GrpcClient
from transports.grpc.local import LocalGrpcServer
from transports.grpc.settings import parse_grpc_url

ROOT = Path(__file__).resolve().parents[3]
INTEROP = ROOT / "tests" / "interop" / "grpc-node"
PROTO = ROOT / "protos" / "exchange" / "v1" / "exchange.proto"
SYM = "BTC-USD"
MAKER_PRICE, NODE_REST_PRICE = "30000.00", "31000.00"  # the Node client buys at the maker's price; its own sell rests above


def _node() -> str:
    node = shutil.which("node")
    assert node, "node (v20) is needed for the gRPC interop test"
    assert (INTEROP / "node_modules" / "@grpc" / "grpc-js").is_dir(), "run `make setup` (npm ci in tests/interop/grpc-node)"
    return node


def _run_node(tmp_path: Path, url: str, trader: str, scenario: str, credential: Path | None = None) -> dict[str, Any]:
    address = parse_grpc_url(url)
    config = {
        "target": address.target, "proto": str(PROTO), "include": str(ROOT / "protos"), "trader": trader, "symbol": SYM,
        "rest_price": NODE_REST_PRICE, "buy_price": MAKER_PRICE, "scenario": scenario,
        "ca": address.ca if address.tls else None, "credential": str(credential) if credential else None,
    }  # fmt: skip
    path = tmp_path / f"node-{scenario}.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [_node(), str(INTEROP / "trade.js"), str(path)], capture_output=True, text=True, timeout=60, check=False, cwd=INTEROP
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


async def _rest_a_sell(url: str, credential: Credential | None) -> int:
    """The test's own client rests a sell of 0.0010 at the maker price (as "py-maker"); its order id."""
    maker = GrpcClient("py-maker", url, credential=credential)
    try:
        events = (await maker.submit([PlaceOrder("py-maker", "m1", SYM, Side.SELL, 10, 3_000_000)]))[0]
        return next(e.order_id for e in events if isinstance(e, OrderAccepted))
    finally:
        await maker.close()


async def _maker_remaining(url: str, credential: Credential | None, order_id: int) -> int:
    maker = GrpcClient("py-maker", url, credential=credential)
    try:
        view = await maker.order(order_id)
        assert view is not None
        return view.remaining
    finally:
        await maker.close()


def _assert_traded(seen: dict[str, Any], trader: str) -> None:
    assert SYM in seen["symbols"]
    assert seen["rested"][0] == "accepted"  # then its book delta
    assert seen["batch_id"] == "1"  # the Trade stream echoes the client's batch id
    assert seen["crossed"][0] == "accepted" and "trade" in seen["crossed"]
    assert seen["fill"] == {"price": MAKER_PRICE, "qty": "0.0004", "maker_order_id": seen["fill"]["maker_order_id"], "taker_trader": trader}
    assert seen["market_trade"] is not None and seen["market_trade"]["price"] == MAKER_PRICE and seen["market_trade"]["qty"] == "0.0004"
    assert seen["order"]["remaining"] == "0.0010" and seen["order"]["status"] == "ORDER_STATUS_NEW"
    assert seen["cancelled"][0] == "cancelled"


def test_a_node_grpc_js_client_trades_streams_and_reads_its_order(tmp_path: Path) -> None:
    with LocalGrpcServer(tmp_path / "server") as server:
        maker_order = asyncio.run(_rest_a_sell(server.url, None))
        seen = _run_node(tmp_path, server.url, "node-taker", "trade")
        _assert_traded(seen, "node-taker")
        assert int(seen["fill"]["maker_order_id"]) == maker_order
        assert asyncio.run(_maker_remaining(server.url, None, maker_order)) == 6  # lots: 0.0010 - 0.0004 filled by Node


@pytest.mark.parametrize("scheme", ["ed25519", "hmac"])
def test_a_node_client_signs_its_calls_over_tls_and_an_unsigned_call_is_refused(tmp_path: Path, scheme: str) -> None:
    keys = tmp_path / "keys"
    maker = create_key(keys, "py-maker")
    node = create_key(keys, "node-taker", scheme=scheme)  # type: ignore[arg-type]
    with LocalGrpcServer(tmp_path / "server", ("--auth", "keys", "--keys", str(keys))) as server:
        assert server.url.startswith("grpcs://")
        maker_credential = with_ca(maker, keys)
        maker_order = asyncio.run(_rest_a_sell(server.url, maker_credential))
        seen = _run_node(tmp_path, server.url, "node-taker", "trade", keys / CLIENTS_DIR / f"{node.key_id}.json")
        _assert_traded(seen, "node-taker")
        assert int(seen["fill"]["maker_order_id"]) == maker_order
        assert asyncio.run(_maker_remaining(server.url, maker_credential, maker_order)) == 6
        refused = _run_node(tmp_path, server.url, "node-taker", "unsigned")
        assert refused["refused"] and refused["code"] == "UNAUTHENTICATED" and "missing_credentials" in refused["details"]
