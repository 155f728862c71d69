"""What the web screen is served with: its assets (the charting library included, no other host), the reports, and
the Transports panel's per-transport figures over REST and WebSocket."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.integration.http.conftest import LiveServer
from tests.integration.http.helpers import place


def test_the_screen_and_every_asset_it_names_are_served_here(http: httpx.Client) -> None:
    html = http.get("/").text
    assets = re.findall(r"""(?:src|href)="(/[^"]+)\"""", html)
    assert "/screen/vendor/lightweight-charts.standalone.production.js" in assets and "/screen/screen.js" in assets
    for url in assets:
        if url.startswith("/screen/"):
            response = http.get(url)
            assert response.status_code == 200, url
            assert len(response.content) > 1000, url
    assert b"createChart" in http.get("/screen/vendor/lightweight-charts.standalone.production.js").content
    for url in ("/screen/screen.js", "/screen/screen.css"):
        assert "http://" not in http.get(url).text.replace("ws://", "")  # built from location, never another host


def test_reports_serves_the_transport_comparison_and_its_files(http: httpx.Client) -> None:
    page = http.get("/reports")
    assert page.status_code == 200 and "Transport comparison" in page.text
    report = http.get("/reports/files/transport-comparison.json")
    assert report.status_code == 200 and "summary" in report.json()
    assert http.get("/reports/files/transport-comparison-throughput.png").headers["content-type"] == "image/png"


def test_the_transports_panel_counts_each_transports_orders_and_rejects(http: httpx.Client) -> None:
    http.get("/stats/transports")  # starts the shared window here
    for i in range(5):
        place(http, "alice", "buy", f"{29990 - i}.00", "0.1000")
    place(http, "alice", "buy", "1.00", "0.1000")  # out of the price band: an engine reject
    panel = http.get("/stats/transports").json()
    assert panel["type"] == "transports" and panel["window_s"] > 0
    (row,) = [t for t in panel["transports"] if t["transport"] == "http"]
    assert row["orders_per_s"] > 0 and row["rejects"] == 1 and row["p99_us"] >= row["p50_us"] > 0
    assert all(t["transport"] != "config" for t in panel["transports"])
    again = http.get("/stats/transports").json()
    assert [t["rejects"] for t in again["transports"] if t["transport"] == "http"] == [0]  # a window, not a total


def test_the_stats_channel_pushes_the_panel(server: LiveServer, http: httpx.Client) -> None:
    with connect(server.url.replace("http://", "ws://") + "/ws/stats?interval_ms=200", open_timeout=5) as ws:
        place(http, "alice", "buy", "29990.00", "0.1000")
        seen: list[dict[str, Any]] = []
        for _ in range(10):
            message = json.loads(ws.recv(timeout=5))
            seen.extend(t for t in message["transports"] if t["transport"] == "http" and t["orders_per_s"] > 0)
            if seen:
                break
        assert seen and seen[0]["commands"] >= 1
    with connect(server.url.replace("http://", "ws://") + "/ws/stats?interval_ms=5", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["reason"] == "MALFORMED_MESSAGE"
