"""The ``dex-zmq`` process: starts on free ports, serves, stops cleanly on SIGTERM, recovers its journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import OrderAccepted, Side
from tests.integration.zmq.conftest import run
from tests.integration.zmq.helpers import BTC, SYMBOL, order, order_id
from transports.core.keys import create_key
from transports.registry import make_client
from transports.zmq.local import LocalZmqServer
from transports.zmq.server import parse_args


def test_sigterm_stops_cleanly_and_the_journal_survives_a_restart(tmp_path: Path) -> None:
    server = LocalZmqServer(tmp_path, ("--fsync", "batch", "--log-level", "warning"))
    with server:
        assert server.url.startswith("zmq://127.0.0.1:") and server.pub_endpoint.startswith("tcp://127.0.0.1:")

        async def place() -> int:
            async with make_client("zmq", "alice", server.url) as alice:
                (events,) = await alice.submit([order("alice", "a1", Side.BUY, "0.5", "29500.00")])
                assert isinstance(events[0], OrderAccepted)
                return order_id(events)

        placed = run(place)
    assert server.stop() == 0
    assert "dex-zmq stopped" in server.log_tail()

    with server:  # the same journal: the order is still there

        async def look() -> None:
            async with make_client("zmq", "alice", server.url) as alice:
                view = await alice.order(placed)
                assert view is not None and view.remaining == BTC.parse_qty("0.5")
                book = await alice.book(SYMBOL)
                assert [(lv.price, lv.qty) for lv in book.bids] == [(BTC.parse_price("29500.00"), BTC.parse_qty("0.5"))]

        run(look)
    assert "(fsync batch, 4 commands recovered)" in server.log_tail()  # 3 listings and the order


def test_defaults_bind_loopback_on_5555_and_5556(tmp_path: Path) -> None:
    settings = parse_args([])
    assert (settings.host, settings.port, settings.pub_port) == ("127.0.0.1", 5555, 5556)
    assert settings.journal == "var/dex-zmq.journal" and settings.fsync == "batch" and settings.auth is None
    with pytest.raises(SystemExit, match="--auth off trusts any client's name"):  # off loopback, keys or nothing
        parse_args(["--host", "0.0.0.0"])
    create_key(tmp_path, "alice")
    keys = ["--auth", "keys", "--keys", str(tmp_path)]
    custom = parse_args(
        ["--host", "0.0.0.0", "--port", "6000", "--pub-port", "6001", "--no-journal", "--symbols", "BTC-USD", "--buffer", "10", *keys]
    )
    assert custom.auth is not None and custom.auth.keyring.directory == tmp_path
    assert (custom.host, custom.port, custom.pub_port, custom.journal, custom.symbols, custom.buffer) == (
        "0.0.0.0", 6000, 6001, None, "BTC-USD", 10,
    )  # fmt: skip
