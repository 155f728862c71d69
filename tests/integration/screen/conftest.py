"""A real turbo-dex serving HTTP and gRPC on one gateway, and headless Debian chromium driven by Playwright.

The browser is Debian's ``chromium`` package (``make setup`` installs it:
scripts/mk/screen.mk), launched by its path; Playwright downloads no browser.
A missing chromium or Playwright fails the tests (never a skip).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

TURBO_DEX = Path(sys.executable).with_name("turbo-dex")
SCREENS = Path(__file__).resolve().parents[3] / "reports" / "screens"
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@dataclass
class Exchange:
    """One ``turbo-dex --transports http,grpc`` process; stopped by its PID."""

    proc: subprocess.Popen[bytes]
    http: str
    grpc: str


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `make setup` (scripts/mk/screen.mk installs it)")
    return path


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    out = tmp_path_factory.mktemp("turbo-dex") / "stdout.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [str(TURBO_DEX), "--transports", "http,grpc", "--port", "0", "--grpc-port", "0", "--no-journal", "--log-level", "warning"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        match = None
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            match = re.search(r"listening on (http://\S+), (grpc://[^\s(]+)", out.read_text())
            time.sleep(0.05)
        assert match, f"turbo-dex did not start: {out.read_text()}"
        yield Exchange(proc, match.group(1), match.group(2))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture(scope="module")
def side_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop in its own thread for the module's asyncio clients (gRPC): Playwright's sync API holds the
    test thread's loop, and grpc.aio wants one loop for its whole life, not a fresh one per call."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="screen-tests-asyncio", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class ScreenPage:
    page: Page
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def screen(browser: Browser, exchange: Exchange) -> Iterator[ScreenPage]:
    """The screen loaded and ready (its first symbol shown), with every console error and page error collected."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    opened = ScreenPage(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.goto(exchange.http + "/#BTC-USD")
    page.wait_for_selector("body[data-ready='1']")
    try:
        yield opened
    finally:
        context.close()
