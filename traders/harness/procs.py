"""Running the traders: here (one process), or in ``--procs`` processes started with ``spawn``.

One process drives at most one core; the client must not be what limits a
measurement, so ``--procs P`` runs P copies of the workers, each with its own
event loop and clients. The parent:

1. reads the server's counters (the reconciliation baseline),
2. starts the children; each connects its traders and reports ``ready``,
3. when all are ready, publishes one start instant (``time.monotonic()`` is
   shared by every process of a machine) and releases them together,
4. merges their once-a-second progress into the live view, collects each
   one's result (histograms travel as ``Histogram.to_dict``), and
5. reads the server's counters again.

A child that cannot reach the server reports it and the parent stops the
others (by their own ``Process`` handles) and raises ``NotConnected``.
A server that dies during the run ends each process's run early with what
it counted and the ``error`` (``ProcessRunner.run``); the counters after the
run are then read with a short timeout, and are empty if the server is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queue_module
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from typing import Any

from engine import ExchangeError, NotConnected
from traders.harness.clients import open_exchange
from traders.harness.config import ConfigError, HarnessConfig
from traders.harness.keys import credentials_of, traders_of
from traders.harness.progress import ProgressView
from traders.harness.runner import ProcessRunner, close_quietly
from transports.core.client import TraderClient

_START_DELAY_S = 0.05  # between "go" and the first send, so every process is waiting already
_READY_TIMEOUT_S = 60.0
_GRACE_S = 30.0  # how long after the scheduled end a child may still take to report
_STATS_AFTER_LOSS_S = 2.0  # reading the counters of a server that stopped answering


class HarnessError(RuntimeError):
    """A harness process failed for a reason other than the server being unreachable."""


@dataclass(slots=True)
class Outcome:
    results: list[dict[str, Any]]
    before: dict[str, Any]
    after: dict[str, Any]
    window: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # the server's stats as the measured window starts and ends


def run(config: HarnessConfig, view: ProgressView) -> Outcome:
    credentials = credentials_of(config)  # ConfigError here when the transport cannot authenticate yet
    if credentials is not None:
        credentials.issue(traders_of(config))  # --keys: every trader's key exists before a client connects
    if config.procs == 1:
        return asyncio.run(_run_here(config, view))
    return _run_spawned(config, view)


async def _run_here(config: HarnessConfig, view: ProgressView) -> Outcome:
    def show(snapshot: dict[str, Any]) -> None:
        view.update(snapshot)
        view.render()

    async with open_exchange(config.transport, config.server, credentials_of(config)) as new_client:
        control = new_client(f"{config.trader_prefix}-control")
        await control.connect()
        lost = False
        try:
            before = await control.stats()
            runner = ProcessRunner(config, 0, new_client, on_progress=show)
            try:
                await runner.prepare()
                start = time.monotonic() + _START_DELAY_S
                opening = asyncio.create_task(_stats_at(control, start + config.warmup_s))
                try:
                    result = await runner.run(start)
                    window = (await _window_start(opening, runner.error), await _stats_of_lost(control))
                finally:
                    opening.cancel()
            finally:
                await runner.close()
            lost = bool(runner.error)
            after = await _stats_of_lost(control) if lost else await control.stats()
        finally:
            await (close_quietly(control) if lost else control.close())
    return Outcome([result], before, after, window)


async def _stats_at(client: TraderClient, instant: float) -> dict[str, Any]:
    """The server's stats read at ``instant`` (monotonic): when the measured window opens."""
    await asyncio.sleep(max(0.0, instant - time.monotonic()))
    return await _stats_of_lost(client)


async def _window_start(opening: asyncio.Task[dict[str, Any]], lost: str) -> dict[str, Any]:
    """What ``opening`` read (empty if the run ended before the window opened or the server was lost)."""
    if lost or not opening.done():
        return {}
    return opening.result()


async def _stats_of_lost(client: TraderClient) -> dict[str, Any]:
    """The counters of a server that stopped answering during the run, if it answers now; else empty."""
    try:
        async with asyncio.timeout(_STATS_AFTER_LOSS_S):
            return await client.stats()
    except (ExchangeError, OSError, TimeoutError):
        return {}


async def read_stats(config: HarnessConfig, server_lost: bool = False) -> dict[str, Any]:
    """The server's counters through a short-lived client (empty if ``server_lost`` and it does not answer)."""
    async with open_exchange(config.transport, config.server, credentials_of(config)) as new_client:
        client = new_client(f"{config.trader_prefix}-control")
        try:
            if not server_lost:
                await client.connect()
                return await client.stats()
            try:
                async with asyncio.timeout(_STATS_AFTER_LOSS_S):
                    await client.connect()
            except (ExchangeError, OSError, TimeoutError):
                return {}
            return await _stats_of_lost(client)
        finally:
            await close_quietly(client)


def _run_spawned(config: HarnessConfig, view: ProgressView) -> Outcome:
    before = asyncio.run(read_stats(config))
    ctx = multiprocessing.get_context("spawn")
    messages: Queue[dict[str, Any]] = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    children = [
        ctx.Process(target=child_main, args=(config.to_dict(), p, messages, go, start_at), name=f"dex-trader-{p}", daemon=True)
        for p in range(config.procs)
    ]
    for child in children:
        child.start()
    opening: dict[str, Any] = {}
    try:
        _await_ready(children, messages, view)
        start_at.value = time.monotonic() + _START_DELAY_S
        go.set()
        reader = threading.Thread(target=_read_opening, args=(config, start_at.value + config.warmup_s, opening), daemon=True)
        reader.start()
        results = _collect(config, children, messages, view)
        reader.join(timeout=_STATS_AFTER_LOSS_S)
    except BaseException:
        _stop(children)
        raise
    for child in children:
        child.join(timeout=5.0)
    _stop(children)
    after = asyncio.run(read_stats(config, server_lost=any(r.get("error") for r in results)))
    return Outcome(sorted(results, key=lambda r: int(r["proc"])), before, after, (dict(opening), after))


def _read_opening(config: HarnessConfig, instant: float, into: dict[str, Any]) -> None:
    """A thread: the server's stats at ``instant`` (monotonic), when the measured window opens, into ``into``."""
    time.sleep(max(0.0, instant - time.monotonic()))
    with contextlib.suppress(Exception):  # no reading: the report's server cost is None, the run goes on
        into.update(asyncio.run(read_stats(config, server_lost=True)))


def _await_ready(children: list[SpawnProcess], messages: Queue[dict[str, Any]], view: ProgressView) -> None:
    ready: set[int] = set()
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while len(ready) < len(children):
        message = _next(children, messages, deadline)
        if message["kind"] == "ready":
            ready.add(int(message["proc"]))
        else:
            _handle(message, view, {})


def _collect(
    config: HarnessConfig, children: list[SpawnProcess], messages: Queue[dict[str, Any]], view: ProgressView
) -> list[dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + config.warmup_s + config.duration_s + _GRACE_S
    reported: set[int] = set()  # processes heard from since the last render
    last_render = time.monotonic()
    while len(results) < len(children):
        message = _next(children, messages, deadline, results)
        _handle(message, view, results)
        if message["kind"] == "progress":
            reported.add(int(message["proc"]))
        # Render when every process has reported its second, or when one is late.
        if len(reported) == len(children) or (reported and time.monotonic() - last_render > 1.5):
            view.render()
            reported.clear()
            last_render = time.monotonic()
    view.render()
    return list(results.values())


def _next(
    children: list[SpawnProcess], messages: Queue[dict[str, Any]], deadline: float, done: Mapping[int, object] | None = None
) -> dict[str, Any]:
    """The next message; raises if a child died without reporting or the deadline passed."""
    while True:
        try:
            return messages.get(timeout=0.2)
        except queue_module.Empty:
            pass
        for p, child in enumerate(children):
            if child.exitcode is not None and child.exitcode != 0 and (done is None or p not in done):
                raise HarnessError(f"harness process {p} exited with code {child.exitcode} without a result")
        if time.monotonic() > deadline:
            raise HarnessError("harness processes did not finish in time")


def _handle(message: dict[str, Any], view: ProgressView, results: dict[int, dict[str, Any]]) -> None:
    kind = message["kind"]
    if kind == "progress":
        view.update(message)
    elif kind == "result":
        results[int(message["proc"])] = message["result"]
    elif kind == "fatal":
        text = str(message["message"])
        if message["error"] == "NotConnected":
            raise NotConnected(text)
        if message["error"] == "ConfigError":
            raise ConfigError(text)
        raise HarnessError(f"harness process {message['proc']} failed: {text}")


def _stop(children: list[SpawnProcess]) -> None:
    for child in children:
        if child.is_alive():
            child.terminate()
    for child in children:
        child.join(timeout=2.0)
        if child.is_alive():
            child.kill()
            child.join(timeout=2.0)


def child_main(config_dict: dict[str, Any], proc: int, messages: Queue[dict[str, Any]], go: EventType, start_at: Any) -> None:
    """Entry point of one spawned harness process."""
    config = HarnessConfig.from_dict(config_dict)
    try:
        result = asyncio.run(_child(config, proc, messages, go, start_at))
    except BaseException as exc:
        error = "NotConnected" if isinstance(exc, NotConnected) else type(exc).__name__
        text = exc.message if isinstance(exc, ExchangeError) else str(exc)
        with contextlib.suppress(Exception):
            messages.put({"kind": "fatal", "proc": proc, "error": error, "message": text})
        return
    messages.put({"kind": "result", "proc": proc, "result": result})


async def _child(config: HarnessConfig, proc: int, messages: Queue[dict[str, Any]], go: EventType, start_at: Any) -> dict[str, Any]:
    async with open_exchange(config.transport, config.server, credentials_of(config)) as new_client:
        runner = ProcessRunner(config, proc, new_client, on_progress=messages.put)
        try:
            await runner.prepare()
            messages.put({"kind": "ready", "proc": proc})
            loop = asyncio.get_running_loop()
            while not await loop.run_in_executor(None, go.wait, 1.0):
                parent = multiprocessing.parent_process()
                if parent is not None and not parent.is_alive():
                    raise HarnessError("the parent dex-trader process is gone")
            return await runner.run(float(start_at.value))
        finally:
            await runner.close()
