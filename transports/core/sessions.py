"""Cancel on disconnect: a trader whose session goes silent loses its open orders, after a grace it chose.

A trader arms it with ``cancel_on_disconnect(grace_ms)`` on any wire (the
``CancelOnDisconnectRequest`` of the schema, ``POST /cancel-on-disconnect`` in
JSON); ``grace_ms = 0`` disarms it. Like Binance's countdown cancel-all and
Deribit's heartbeat, sending the request again is the heartbeat: when none
arrives within the grace, the exchange cancels every open order of the trader
(every symbol) with the one reason ``CancelReason.CANCEL_ON_DISCONNECT``. Our
clients (``TraderClient.cancel_on_disconnect``) repeat it every quarter of the
grace until they are closed, so "silent" means the client died, closed, or
lost its connection or its broker link (docs/sessions.md says what liveness is
on each wire).

Invariants:

* One rule, here, and one liveness signal on every wire: the heartbeat.
  Servers only pass the request on (``RequestHandler``). A lost connection,
  stream or broker link is a heartbeat that stops coming, so brokered wires
  (NATS, RabbitMQ), which have no connection to the exchange, and wires whose
  library hides connections (ZeroMQ's ROUTER, HTTP's keep-alive pool) behave
  exactly as a gRPC stream does.
* The cancel is a command like any other: ``MassCancel(trader, "",
  CANCEL_ON_DISCONNECT)`` is submitted where the arming wire submits its
  commands (the gateway, or a DHT node's replicated log), so it is journaled
  and a replay cancels the same orders with the same reason. The engine
  stays pure: the clock is here.
* The grace is bounded: ``MIN_GRACE_MS`` to ``MAX_GRACE_MS``; anything else
  (and a grace that is not an integer) is refused with ``MALFORMED_MESSAGE``.
  So is the state: at most ``MAX_SESSIONS`` armed at once (``LIMIT_EXCEEDED``
  beyond), each gone at the latest ``MAX_GRACE_MS`` after its last heartbeat.
* One guard per gateway (``guard_of``), one session per trader: the latest
  arm wins, whatever wire it came on. A session fires once; a heartbeat after
  that arms it again. Sessions live in memory: a restarted server has none
  armed (the orders stay until a client arms it again).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from engine import CancelReason, Command, ExchangeError, MalformedMessage, MassCancel, Overloaded, RejectReason

if TYPE_CHECKING:
    from transports.core.gateway import Gateway, Replies

_log = logging.getLogger("dex.sessions")

MIN_GRACE_MS: Final = 100  # shorter would fire on an ordinary scheduling hiccup of a busy client
MAX_GRACE_MS: Final = 300_000  # five minutes: longer is not "on disconnect" any more
MAX_SESSIONS: Final = 100_000  # armed sessions of one gateway: a session is a timer and ~200 bytes; more is refused
HEARTBEATS_PER_GRACE: Final = 4  # our clients repeat the request this often within one grace
_RETRY_S: Final = 0.01  # a cancel the gateway refused as overloaded is retried this soon ...
_RETRIES: Final = 500  # ... this many times (5 s), then given up and logged

Submit = Callable[[list[Command], str, "bytes | None"], Awaitable["Replies"]]  # RequestHandler's: (commands, transport, record)


def check_grace(grace_ms: object) -> int:
    """``grace_ms`` as a grace: 0 (disarm) or an integer from ``MIN_GRACE_MS`` to ``MAX_GRACE_MS``."""
    if type(grace_ms) is not int:
        raise MalformedMessage("grace_ms must be an integer number of milliseconds")
    if grace_ms != 0 and not MIN_GRACE_MS <= grace_ms <= MAX_GRACE_MS:
        raise MalformedMessage(f"grace_ms must be 0 (disarm) or {MIN_GRACE_MS} to {MAX_GRACE_MS}, got {grace_ms}")
    return grace_ms


def json_grace(data: dict[str, object]) -> object:
    """The ``grace_ms`` of a JSON ``cancel_on_disconnect`` request (docs/json-format.md); other fields are refused."""
    for key in data:
        if key not in ("type", "grace_ms"):
            raise MalformedMessage(f"cancel_on_disconnect takes only grace_ms, not {key[:32]!r}")
    if "grace_ms" not in data:
        raise MalformedMessage("cancel_on_disconnect needs grace_ms (0 disarms)")
    return data["grace_ms"]


class _Session:
    __slots__ = ("grace_ms", "submit", "timer", "transport")

    def __init__(self, grace_ms: int, submit: Submit, transport: str) -> None:
        self.grace_ms = grace_ms
        self.submit = submit
        self.transport = transport
        self.timer: asyncio.TimerHandle | None = None


class SessionGuard:
    """The armed sessions of one gateway, by trader, and the timers that cancel their orders."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._cancels: set[asyncio.Task[None]] = set()
        self.fired = 0  # sessions whose grace ran out

    def arm(self, trader: str, grace_ms: int, submit: Submit, transport: str) -> int:
        """Arm (or refresh: the heartbeat) ``trader``'s session, or disarm it with 0; the grace now armed."""
        grace_ms = check_grace(grace_ms)
        if grace_ms and trader not in self._sessions and len(self._sessions) >= MAX_SESSIONS:
            raise ExchangeError(f"at most {MAX_SESSIONS} sessions may be armed at once", RejectReason.LIMIT_EXCEEDED)
        session = self._sessions.pop(trader, None)
        if session is not None and session.timer is not None:
            session.timer.cancel()
        if grace_ms == 0:
            return 0
        session = self._sessions[trader] = _Session(grace_ms, submit, transport)
        self._start(trader, session)
        return grace_ms

    def armed(self, trader: str) -> int:
        """``trader``'s armed grace in milliseconds; 0 if none."""
        session = self._sessions.get(trader)
        return session.grace_ms if session is not None else 0

    def _start(self, trader: str, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        session.timer = loop.call_later(session.grace_ms / 1000, self._expire, trader, session)

    def _expire(self, trader: str, session: _Session) -> None:
        if self._sessions.get(trader) is not session:
            return  # re-armed or disarmed meanwhile
        del self._sessions[trader]
        self.fired += 1
        _log.info("cancel_on_disconnect", extra={"trader": trader, "grace_ms": session.grace_ms, "transport": session.transport})
        task = asyncio.get_running_loop().create_task(self._cancel(trader, session), name=f"cancel on disconnect {trader}")
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _cancel(self, trader: str, session: _Session) -> None:
        command: list[Command] = [MassCancel(trader, "", CancelReason.CANCEL_ON_DISCONNECT)]
        for _ in range(_RETRIES):
            try:
                await session.submit(command, session.transport, None)
                return
            except Overloaded:
                await asyncio.sleep(_RETRY_S)
            except ExchangeError as exc:  # the gateway stopped, or the replicated log has no majority
                _log.warning("cancel_on_disconnect_failed", extra={"trader": trader, "reason": exc.reason.name, "detail": exc.message})
                return
        _log.warning("cancel_on_disconnect_failed", extra={"trader": trader, "reason": "OVERLOADED", "detail": "gave up retrying"})

    def close(self) -> None:
        """Forget every session (their timers never fire)."""
        for session in self._sessions.values():
            if session.timer is not None:
                session.timer.cancel()
        self._sessions.clear()


_GUARDS: weakref.WeakKeyDictionary[Gateway, SessionGuard] = weakref.WeakKeyDictionary()


def guard_of(gateway: Gateway) -> SessionGuard:
    """The one ``SessionGuard`` of ``gateway``, shared by every transport serving it."""
    guard = _GUARDS.get(gateway)
    if guard is None:
        guard = _GUARDS[gateway] = SessionGuard()
    return guard


# ------------------------------------------------------------------ clients
Arm = Callable[[int], Awaitable[int]]  # one cancel_on_disconnect request on a client's wire: the grace armed


class Heartbeat:
    """A client's side: arm once, then repeat the request every ``grace / HEARTBEATS_PER_GRACE`` until stopped.

    A heartbeat that fails (the server is unreachable for a moment) is tried
    again at the next beat: if none gets through within the grace, the
    orders are cancelled, which is the point. One request at a time: a new
    grace (or a disarm) waits for a beat in flight, so a late beat can never
    arrive after it and arm the old grace again. A request that fails leaves
    the beat that was running as it was.
    """

    def __init__(self, arm: Arm) -> None:
        self._arm = arm
        self._task: asyncio.Task[None] | None = None
        self._one_at_a_time = asyncio.Lock()
        self.failures = 0

    async def set(self, grace_ms: int) -> int:
        grace_ms = check_grace(grace_ms)
        async with self._one_at_a_time:
            armed = await self._arm(grace_ms)
            self.stop()
            if armed:
                self._task = asyncio.get_running_loop().create_task(self._beat(armed), name="cancel-on-disconnect heartbeat")
        return armed

    async def _beat(self, grace_ms: int) -> None:
        interval = grace_ms / 1000 / HEARTBEATS_PER_GRACE
        while True:
            await asyncio.sleep(interval)
            async with self._one_at_a_time:
                try:
                    await asyncio.wait_for(self._arm(grace_ms), grace_ms / 1000)
                except Exception as exc:  # whatever the wire raised: the next beat tries again, the task must not die
                    self.failures += 1
                    if self.failures & (self.failures - 1) == 0:  # the 1st, 2nd, 4th ...: a dead server cannot flood the log
                        _log.warning("heartbeat_failed", extra={"error": repr(exc), "failures": self.failures})

    def stop(self) -> None:
        """Stop beating (``close`` does it): the server's grace runs from the last beat."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
