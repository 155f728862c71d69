"""The harness against the in-process gateway: real runs of a second or two, checked for what a user reads.

No timing is compared with a speed threshold; the open-loop test checks that
the harness sends at the rate it was asked for (a behaviour), within a wide
tolerance.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from engine import (
    BookDepth,
    Command,
    Instrument,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderView,
    PlaceOrder,
    TradeExecuted,
)
from traders.harness import cli, procs
from traders.harness.config import HarnessConfig
from traders.harness.runner import ProcessRunner
from transports.core.client import Replies, TraderClient
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.marketdata import MarketData
from transports.inproc.client import InProcClient
from transports.instruments import DEFAULT_INSTRUMENTS

REQUIRED = (
    "transport", "workers", "batch", "rate", "duration_s", "orders_sent", "accepted", "rejected",
    "trades", "errors", "throughput_per_s", "latency_us", "server_stats",
)  # fmt: skip


def run_cli(tmp_path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "run.json"
    code = cli.main(["--transport", "inproc", "--quiet", "--json", str(out), *args])
    return code, json.loads(out.read_text())


@pytest.fixture(scope="module")
def closed_loop_report(tmp_path_factory) -> dict[str, Any]:
    code, report = run_cli(tmp_path_factory.mktemp("inproc"), "--workers", "3", "--batch", "50", "--duration", "1.5s", "--warmup", "500ms")
    assert code == 0
    return report


def test_json_has_every_documented_key(closed_loop_report):
    report = closed_loop_report
    for key in REQUIRED:
        assert key in report, key
    assert report["transport"] == "inproc"
    assert (report["workers"], report["batch"], report["rate"], report["procs"]) == (3, 50, 0.0, 1)
    assert set(report["latency_us"]) == {"p50", "p90", "p99", "p999", "max"}
    assert isinstance(report["server_stats"], dict)
    assert "engine_seq" in report["server_stats"]


def test_counts_are_consistent(closed_loop_report):
    r = closed_loop_report
    assert r["orders_sent"] > 0
    assert r["orders_sent"] == r["requests"] * 50  # whole batches, none dropped
    assert r["errors"] == 0
    # Every command has exactly one outcome of its own (accepted, rejected, replaced or cancelled).
    assert r["accepted"] <= r["places"] <= r["orders_sent"]
    assert r["accepted"] + r["rejected"] <= r["orders_sent"]
    lat = r["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert r["latency_histogram"]["count"] == r["requests"]
    assert r["throughput_per_s"] == pytest.approx(r["orders_sent"] / r["duration_s"], rel=1e-3)
    assert r["duration_s"] >= 1.5
    # Warm-up traffic reached the server too: total = measured + warm-up.
    for key in ("sent", "accepted", "rejected", "trades"):
        assert r["total"][key] == r["warmup"][key] + {"sent": r["orders_sent"]}.get(key, r.get(key))


def test_reconciles_exactly_with_the_gateway(closed_loop_report):
    rec = closed_loop_report["reconciliation"]
    assert rec["ok"], rec
    assert rec["harness"] == rec["server"]
    assert rec["harness"]["commands"] == closed_loop_report["total"]["sent"]
    stats = closed_loop_report["server_stats"]
    assert stats["by_transport"]["inproc"] == rec["harness"]["commands"]


class SpyClient(TraderClient):
    """Passes everything to an ``InProcClient`` and tallies the replies itself, command by command."""

    transport = "inproc"
    seen: dict[str, int]

    def __init__(self, inner: InProcClient, seen: dict[str, int]) -> None:
        super().__init__(inner.trader)
        self.inner = inner
        self.seen = seen

    async def submit(self, commands: Sequence[Command]) -> Replies:
        replies = await self.inner.submit(commands)
        for command, events in zip(commands, replies, strict=True):
            self.seen["commands"] += 1
            self.seen["places"] += isinstance(command, PlaceOrder)
            own = [e for e in events if isinstance(e, (OrderAccepted, OrderRejected, OrderReplaced)) or _user_cancel(e, command)]
            assert len(own) == 1, (command, events)  # one outcome per command
            self.seen["accepted"] += sum(isinstance(e, OrderAccepted) for e in events)
            self.seen["rejected"] += sum(isinstance(e, OrderRejected) for e in events)
            self.seen["trades"] += sum(isinstance(e, TradeExecuted) for e in events)
        return replies

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        return await self.inner._arm_cancel_on_disconnect(grace_ms)

    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        return await self.inner.book(symbol, depth)

    async def order(self, order_id: int) -> OrderView | None:
        return await self.inner.order(order_id)

    async def instruments(self) -> list[Instrument]:
        return await self.inner.instruments()

    async def stats(self) -> dict[str, Any]:
        return await self.inner.stats()

    def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        return self.inner.market_data(symbols)


def _user_cancel(event: object, command: Command) -> bool:
    return isinstance(event, OrderCancelled) and event.reason.name == "USER" and not isinstance(command, PlaceOrder)


async def _run_with_spy(config: HarnessConfig, gateway_config: GatewayConfig) -> tuple[ProcessRunner, dict[str, int], dict[str, Any]]:
    gateway = Gateway(config=gateway_config)
    await gateway.start(DEFAULT_INSTRUMENTS)
    seen = dict.fromkeys(("commands", "places", "accepted", "rejected", "trades"), 0)
    runner = ProcessRunner(config, 0, lambda trader: SpyClient(InProcClient(gateway, trader), seen))
    await runner.prepare()
    result = await runner.run(time.monotonic())
    await gateway.stop()
    return runner, seen, result


def test_harness_counts_equal_the_per_command_replies():
    config = HarnessConfig(transport="inproc", workers=3, batch=40, duration_s=1.0, warmup_s=0.2)
    runner, seen, _ = asyncio.run(_run_with_spy(config, GatewayConfig()))
    total = runner.tally.total
    assert seen["commands"] > 0
    assert (total.sent, total.orders, total.accepted, total.rejected, total.trades) == (
        seen["commands"], seen["places"], seen["accepted"], seen["rejected"], seen["trades"],
    )  # fmt: skip


def test_overloaded_is_an_error_retried_until_it_goes_through():
    # A queue of 150 commands: two batches of 100 from different traders cannot wait together.
    config = HarnessConfig(transport="inproc", workers=4, batch=100, duration_s=1.0, warmup_s=0.0)
    runner, seen, result = asyncio.run(_run_with_spy(config, GatewayConfig(buffer=150)))
    measured = runner.tally.measured
    assert measured.overloaded > 0
    assert measured.errors == measured.overloaded
    assert seen["commands"] == runner.tally.total.sent  # retried batches were applied once
    assert "Overloaded" in result["first_error"]


def test_open_loop_sends_at_the_requested_rate(tmp_path):
    code, report = run_cli(tmp_path, "--workers", "4", "--batch", "5", "--rate", "2000", "--duration", "2s", "--warmup", "0s")
    assert code == 0
    # 2,000 commands/s for 2 s in batches of 5: 800 requests on a fixed schedule, whatever the server's speed.
    assert report["mode"] == "open"
    assert report["orders_sent"] == pytest.approx(4000, rel=0.1)
    assert report["requests"] == pytest.approx(800, rel=0.1)
    assert report["throughput_per_s"] == pytest.approx(2000, rel=0.15)
    assert report["reconciliation"]["ok"]
    # A closed loop on the same gateway is not held to that rate.
    code, closed = run_cli(tmp_path, "--workers", "4", "--batch", "5", "--duration", "1s", "--warmup", "0s")
    assert code == 0
    assert closed["mode"] == "closed"


def test_strict_reconcile_turns_a_difference_into_exit_code_1(monkeypatch, tmp_path, capsys):
    real_run = procs.run

    def run_and_lose_a_trade(config, view):
        outcome = real_run(config, view)
        outcome.after = {**outcome.after, "trades": outcome.after["trades"] + 1}
        return outcome

    monkeypatch.setattr(procs, "run", run_and_lose_a_trade)
    args = ["--transport", "inproc", "--quiet", "--duration", "300ms", "--warmup", "0s", "--workers", "1"]
    assert cli.main([*args, "--strict-reconcile"]) == 1
    assert "trades" in capsys.readouterr().err
    assert cli.main(args) == 0  # flagged, but not fatal without --strict-reconcile
