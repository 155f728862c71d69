"""How fast the web screen is under the demo's load: its load time, and how long a trade takes to reach the page.

``make screen-timings`` (``python -m traders.screen_timings --out reports/screen-timings.json``) starts turbo-dex
as ``make demo`` does (HTTP, a journal with fsync per group, ``--auth keys``), runs the demo's load against it
(``dex-trader --transport http --keys``, 4 traders signing with development keys, batches of 100, as fast as
replies come), and opens the screen in headless
Debian chromium (Playwright, by the browser's path) while the load runs:

* page load: a fresh page per run, from ``goto`` to the screen's ready mark (instruments listed, candles
  loaded, channels opened: ``dexScreen.readyMs``), and the browser's own DOMContentLoaded and load times;
* update to page: a probe trader sends a signed market buy of one lot over HTTP; the time from just before it is sent
  to when the page's trades channel delivers that trade id (``dexScreen.state.tradeSeenAt``), both read from
  this machine's wall clock (the page's ``performance.timeOrigin + now()``).

Figures are min / median / max of the runs, nothing extrapolated; the machine and the load go in the JSON
beside them. It measures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

from transports.core.keys import Credential, dev_credential
from transports.http.local import LocalServer
from transports.http.signed import signed_headers

SYMBOL = "BTC-USD"


def spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"runs": 0}
    return {"runs": len(values), "min": round(min(values), 1), "median": round(statistics.median(values), 1), "max": round(max(values), 1)}


def page_loads(browser: Browser, url: str, runs: int) -> dict[str, Any]:
    ready, dom, load = [], [], []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/#{SYMBOL}")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        page.wait_for_function("performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
        ready.append(float(page.evaluate("window.dexScreen.readyMs")))
        nav = page.evaluate("(({domContentLoadedEventEnd, loadEventEnd}) => [domContentLoadedEventEnd, loadEventEnd])"
                            "(performance.getEntriesByType('navigation')[0])")  # fmt: skip
        dom.append(float(nav[0]))
        load.append(float(nav[1]))
        context.close()
    return {"ready_ms": spread(ready), "dom_content_loaded_ms": spread(dom), "load_event_ms": spread(load)}


def updates(browser: Browser, url: str, probes: int, screenshot: str, probe: Credential) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/#{SYMBOL}")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    to_page, to_reply, missed = [], [], 0
    with httpx.Client(base_url=url, timeout=10) as http:
        for _ in range(probes):
            body = json.dumps({"symbol": SYMBOL, "side": "buy", "order_type": "market", "qty": "0.0001"}).encode()
            sent = time.time() * 1000
            headers = {"Content-Type": "application/json", **signed_headers(probe, "POST", "/orders", "", body)}
            reply = http.post("/orders", content=body, headers=headers)
            answered = time.time() * 1000
            trades = [e["trade_id"] for e in reply.json().get("events", []) if e.get("type") == "trade"]
            if not trades:
                missed += 1  # nothing resting to buy from at that moment
                continue
            page.wait_for_function(f"window.dexScreen.state.tradeSeenAt.has({trades[0]})", timeout=10_000)
            seen = float(page.evaluate(f"window.dexScreen.state.tradeSeenAt.get({trades[0]})"))
            to_page.append(seen - sent)
            to_reply.append(answered - sent)
            time.sleep(0.2)
    if screenshot:
        page.wait_for_selector("#transport-rows tr[data-transport='http']", timeout=10_000)
        page.screenshot(path=screenshot, full_page=True)  # the screen as it looks under the load
    context.close()
    return {"trade_to_page_ms": spread(to_page), "probe_reply_ms": spread(to_reply), "probes_without_a_trade": missed}


def _measure(
    args: argparse.Namespace, server: LocalServer, keys: str, probe: Credential, chromium: str
) -> tuple[dict[str, Any], dict[str, Any], bool, dict[str, Any]]:
    """Page loads and updates under the demo's load on ``server``; whether the load still ran; the server's stats."""
    trader = Path(sys.executable).with_name("dex-trader")
    load_cmd = [str(trader), "--transport", "http", "--server", server.url, "--workers", str(args.traders), "--batch", "100",
                "--duration", f"{args.seconds:g}s", "--warmup", "0s", "--seed", "42", "--keys", keys]  # fmt: skip
    with (server.workdir / "load.log").open("wb") as log:
        load = subprocess.Popen(load_cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        time.sleep(2.0)  # the load is running before anything is measured
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            try:
                loads = page_loads(browser, server.url, args.loads)
                update = updates(browser, server.url, args.probes, args.screenshot, probe)
            finally:
                browser.close()
        load_running = load.poll() is None
    finally:
        load.wait(args.seconds + 60)
    return loads, update, load_running, httpx.get(server.url + "/stats", timeout=10).json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports/screen-timings.json")
    parser.add_argument("--seconds", type=float, default=25.0, help="how long the demo's load runs (bounded)")
    parser.add_argument("--traders", type=int, default=4)
    parser.add_argument("--loads", type=int, default=5, help="page loads measured")
    parser.add_argument("--probes", type=int, default=20, help="trades timed to the page")
    parser.add_argument("--screenshot", default="reports/screens/screen-under-load.png", help="'' for none")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("screen-timings: Debian's chromium is not installed (make setup)", file=sys.stderr)
        return 2
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    started = time.time()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dex-screen-") as workdir:
        keys = f"{workdir}/keys"  # as make demo: --auth keys, every trader (and the probe) signs with a development key
        probe = dev_credential(keys, "screen-probe")
        with LocalServer(workdir, ("--auth", "keys", "--keys", keys)) as server:
            loads, update, load_running, stats = _measure(args, server, keys, probe, chromium)
    result = {
        "report": "screen-timings",
        "started_at_unix": int(started),
        "elapsed_s": round(time.time() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(), "browser": chromium},
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "load": {
            "what": f"make demo's load: dex-trader --transport http, {args.traders} traders, batches of 100, for {args.seconds:g} s",
            "still_running_when_measured": load_running,
            "server_commands": stats.get("by_transport", {}).get("http", 0),
            "server_trades": stats.get("trades", 0),
        },
        "page_load": loads,
        "update_to_page": update,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"page_load": loads, "update_to_page": update}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
