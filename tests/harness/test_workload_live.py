"""The harness's run ids and its ``live`` workload: fresh ids per run, the same stream shape, no cancels of dead orders.

Against the in-process gateway (no server process): what a user notices is a
second run that is not refused, and cancels that find their orders.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from rich.console import Console

from engine import CancelOrder, CancelReason, PlaceOrder, RejectReason, ReplaceOrder
from traders.harness import cli, live_cost
from traders.harness.config import ConfigError, HarnessConfig, new_run_id
from traders.harness.reasons import CANCEL_MEANINGS, REJECT_MEANINGS, cancel_meaning, reject_meaning
from traders.harness.results import print_reasons, reason_lines
from traders.harness.runner import ProcessRunner
from transports.codec.lean import ACCEPTED, REJECTED
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.workload import OrderFlow
from transports.inproc.client import InProcClient
from transports.instruments import DEFAULT_INSTRUMENTS


def _shape(commands: list[Any]) -> list[tuple[Any, ...]]:
    """A command without the names the run id changes (trader, client order id)."""
    out: list[tuple[Any, ...]] = []
    for c in commands:
        if isinstance(c, PlaceOrder):
            out.append(("place", c.symbol, c.side, c.qty, c.price, c.order_type, c.tif))
        else:
            out.append((type(c).__name__,))
    return out


def test_the_seed_fixes_the_stream_whatever_the_run_id():
    first = OrderFlow(42, "trader-aaa-0-1", DEFAULT_INSTRUMENTS, "trader-0-1").batch(500)
    second = OrderFlow(42, "trader-bbb-0-1", DEFAULT_INSTRUMENTS, "trader-0-1").batch(500)
    assert _shape(first) == _shape(second)
    assert {c.client_order_id for c in first if isinstance(c, PlaceOrder)}.isdisjoint(
        c.client_order_id for c in second if isinstance(c, PlaceOrder)
    )
    other_seed = OrderFlow(43, "trader-aaa-0-1", DEFAULT_INSTRUMENTS, "trader-0-1").batch(500)
    assert _shape(other_seed) != _shape(first)


def test_trader_ids_carry_the_run_id_and_streams_do_not():
    config = HarnessConfig(transport="http", run_id="r1")
    assert config.trader_id(0, 3) == "trader-r1-0-3"
    assert config.stream_id(0, 3) == "trader-0-3"
    assert HarnessConfig(transport="http").trader_id(0, 3) == "trader-0-3"
    assert new_run_id() != new_run_id()
    with pytest.raises(ConfigError):
        HarnessConfig(run_id="has space")
    with pytest.raises(ConfigError):
        HarnessConfig(workload="sometimes")


def test_resolve_names_only_orders_the_replies_showed_resting():
    flow = OrderFlow(7, "alice", DEFAULT_INSTRUMENTS)
    places, keys, slots = flow.plan(200)
    assert places and slots
    managed, targets = flow.resolve(slots)
    assert all(isinstance(c, PlaceOrder) for c in managed)  # nothing rests yet: stand-ins, the batch keeps its size
    assert len(managed) == len(slots) and all(t <= -2 for t in targets)
    # Say the first place filled at once and the others rest.
    outcome = [ACCEPTED] * len(keys)
    leaves = [0] + [1] * (len(keys) - 1)
    flow.settle(keys, [], outcome, leaves)
    resting = {p.client_order_id for p in places[1:]}
    _, _, more_slots = flow.plan(50)
    named, _ = flow.resolve(more_slots)
    managed_ids = {c.client_order_id for c in named if isinstance(c, (CancelOrder, ReplaceOrder))}
    assert managed_ids and managed_ids <= resting
    assert places[0].client_order_id not in managed_ids


def test_a_refused_replace_forgets_its_target():
    flow = OrderFlow(8, "bob", DEFAULT_INSTRUMENTS[:1])
    _, keys, _ = flow.plan(5)
    flow.settle(keys, [], [ACCEPTED] * len(keys), [1] * len(keys))
    assert flow.live_orders == len(keys)
    flow.settle([], [keys[0]], [REJECTED], [0])
    assert flow.live_orders == len(keys) - 1


def test_every_reason_has_one_meaning():
    assert set(REJECT_MEANINGS) == set(RejectReason)
    assert set(CANCEL_MEANINGS) == set(CancelReason)
    assert "already filled" in reject_meaning("UNKNOWN_ORDER")
    assert "self-trade prevention" in cancel_meaning("SELF_TRADE")
    assert "does not know" in reject_meaning("SOMETHING_NEW")


def _run(tmp_path, name: str, *args: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    code = cli.main(["--transport", "inproc", "--quiet", "--json", str(out), "--workers", "2", "--batch", "100", "--warmup", "0s", *args])
    assert code == 0
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["reconciliation"]["ok"], report["reconciliation"]
    return report


def test_live_workload_leaves_few_unknown_orders_and_the_old_one_many(tmp_path):
    live = _run(tmp_path, "live", "--duration", "1s")
    old = _run(tmp_path, "old", "--duration", "1s", "--workload", "exercise-unknown")

    def share(report: dict[str, Any]) -> float:
        return report["rejected_by_reason"].get("UNKNOWN_ORDER", 0) / report["total"]["sent"]

    assert share(old) > 0.05
    assert share(live) < 0.03
    assert live["workload"] == "live" and old["workload"] == "exercise-unknown"
    assert live["run_id"] and live["run_id"] != old["run_id"]
    assert live["total"]["sent"] == live["total"]["requests"] * 100  # stand-ins keep every batch whole
    cancelled = live["reconciliation"]["server_cancelled_by_reason"]
    assert cancelled.get("USER", 0) > 0


def test_the_summary_explains_rejects_and_cancels(tmp_path):
    report = _run(tmp_path, "explained", "--duration", "500ms", "--workload", "exercise-unknown")
    lines = reason_lines(report)
    text = "\n".join(lines)
    assert "UNKNOWN_ORDER" in text and "already filled or been cancelled" in text
    assert "SELF_TRADE" in text and "self-trade prevention" in text
    console = Console(record=True, width=200)
    print_reasons(report, console)
    assert "rejected, by reason" in console.export_text()


def test_a_second_run_with_the_same_run_id_is_refused_as_duplicates_and_a_fresh_one_is_not():
    async def three_runs() -> list[dict[str, Any]]:
        gateway = Gateway(config=GatewayConfig(journal=None))  # one server for every run
        await gateway.start(DEFAULT_INSTRUMENTS)
        results = []
        try:
            for run_id in ("same", "same", "fresh"):
                config = HarnessConfig(transport="inproc", workers=1, batch=50, duration_s=0.3, warmup_s=0.0, run_id=run_id)
                runner = ProcessRunner(config, 0, lambda trader: InProcClient(gateway, trader))
                try:
                    await runner.prepare()
                    results.append(await runner.run(time.monotonic()))
                finally:
                    await runner.close()
        finally:
            await gateway.stop()
        return results

    first, again, fresh = asyncio.run(three_runs())
    assert first["rejected_by_reason"].get("DUPLICATE_CLIENT_ORDER_ID", 0) == 0
    assert again["rejected_by_reason"].get("DUPLICATE_CLIENT_ORDER_ID", 0) > 0
    assert fresh["rejected_by_reason"].get("DUPLICATE_CLIENT_ORDER_ID", 0) == 0


def test_the_cost_measurement_runs():
    cost, unknown = live_cost.send_path_us(100, 4_000)
    assert cost > 0
    assert unknown < 0.05
