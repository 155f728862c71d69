"""``dex-fix``: the matching engine behind FIX 4.4 over TCP (docs: the module docstrings of this folder).

Thin, like every server: TCP bytes -> ``protocol.FrameReader`` -> ``session.FixSession``
(session layer) -> ``orders.OrderEntry`` / ``marketdata`` -> ``Gateway`` -> FIX
messages -> bytes. Invariants:

* One ``FixSession`` per TCP connection; one logged-on session per
  SenderCompID. Whatever a peer sends, its session answers or ends; it never
  raises into the server, and other sessions keep being served.
* Sequence numbers live in ``<state dir>/fix-sessions`` and survive restarts.
* Binds 127.0.0.1 by default; ``--host 0.0.0.0`` listens on all interfaces.
* Shutdown (SIGTERM/SIGINT): stop accepting, end every session (its numbers
  stored), then ``Gateway.stop()`` applies what is queued, fsyncs and writes a
  checkpoint.

``serve_fix(gateway, settings)`` runs the same server inside the caller's
event loop (tests, the registry, a process serving several transports) and
yields its URL (``fix://host:port``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import uvloop

from transports.core import legacy_flags
from transports.core.auth import Authenticator, add_auth_options, auth_from_options
from transports.core.gateway import Gateway
from transports.core.requests import RequestHandler
from transports.core.server_cli import Listener, add_gateway_options, describe, gateway_options, run_process
from transports.core.state_dir import state_dir
from transports.fix.orders import OrderEntry
from transports.fix.session import TRANSPORT, FixSession, SessionRegistry
from transports.fix.settings import DEFAULT_PORT, SERVER_COMP_ID, FixServerSettings, Passwords, fix_url
from transports.fix.store import SequenceStore

log = logging.getLogger("dex-fix")


class FixServer:
    """The TCP listener of one gateway's FIX sessions, in the running event loop."""

    def __init__(self, gateway: Gateway, settings: FixServerSettings | None = None) -> None:
        self.settings = settings or FixServerSettings(port=0)
        self.gateway = gateway
        requests = RequestHandler(gateway, TRANSPORT, self.settings.limits, self.settings.allow_admin, auth=self.settings.auth)
        self.registry = SessionRegistry(
            self.settings, requests, OrderEntry(gateway.instrument, gateway.engine), SequenceStore(self.settings.sessions_dir)
        )
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.host = self.settings.host
        self.port = 0

    async def start(self) -> None:
        """Listen (raises ``OSError`` if the port is taken)."""
        self._server = await asyncio.start_server(self._accept, self.settings.host, self.settings.port, limit=64 * 1024)
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]

    @property
    def url(self) -> str:
        return fix_url(self.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await FixSession(self.registry, reader, writer).run()
        finally:
            self._sessions.discard(task)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting; end every session (numbers stored). The gateway is the caller's to stop."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self.registry.active.values()):
            with contextlib.suppress(Exception):
                session.writer.transport.abort()
        if self._sessions:
            await asyncio.wait(set(self._sessions), timeout=timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), timeout)
        self._server = None


@contextlib.asynccontextmanager
async def serve_fix(
    gateway: Gateway, settings: FixServerSettings | None = None, *, auth: Authenticator | None = None
) -> AsyncIterator[str]:
    """Serve ``gateway`` over FIX in the running event loop; yields the URL (``fix://host:port``).

    The caller starts and stops the gateway. Without ``settings``: a free port on
    127.0.0.1, and the sessions' sequence numbers in a temporary directory that
    lives as long as the server (pass a ``state_dir`` to keep them). ``auth``:
    every Logon must carry a key's signature (it replaces ``settings.auth``).
    """
    with contextlib.ExitStack() as scratch:
        if settings is None:
            settings = FixServerSettings(port=0, state_dir=scratch.enter_context(tempfile.TemporaryDirectory(prefix="dex-fix-")))
        if auth is not None:
            settings = replace(settings, auth=auth)
        server = FixServer(gateway, settings)
        await server.start()
        try:
            yield server.url
        finally:
            await server.stop()


# ------------------------------------------------------------------ process
async def run_server(settings: FixServerSettings) -> int:
    """The ``dex-fix`` process: recover, listen, serve until SIGTERM/SIGINT, stop cleanly."""

    async def listen(gateway: Gateway) -> Listener:
        server = FixServer(gateway, settings)
        await server.start()
        where = f"{server.url} (comp id {settings.comp_id}, sessions {settings.sessions_dir}; "
        return where + f"{describe(gateway, settings.journal, settings.fsync)})", server.stop

    return await run_process(
        "dex-fix", buffer=settings.buffer, journal=settings.journal, fsync=settings.fsync, symbols=settings.symbols, listen=listen
    )


def parse_args(argv: Sequence[str] | None = None) -> FixServerSettings:
    parser = argparse.ArgumentParser(prog="dex-fix", description="The matching engine behind FIX 4.4 over TCP.")
    add_gateway_options(parser, what="over FIX")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"FIX acceptor port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--comp-id", default=SERVER_COMP_ID, help=f"our CompID: every Logon's TargetCompID (default {SERVER_COMP_ID})")
    parser.add_argument(
        "--passwords", default=None, metavar="FILE", help="--auth off: SenderCompID=password lines, Logons must give theirs (554)"
    )
    parser.add_argument("--password", default=None, help="--auth off: one password (554) for every SenderCompID not in --passwords")
    parser.add_argument("--logon-timeout", type=float, default=10.0, metavar="SECONDS", help="a connection must log on within this")
    add_auth_options(parser)
    args = legacy_flags.parse_args(parser, argv)
    common = gateway_options(parser, args)
    auth = auth_from_options(args, args.host)  # SystemExit: --auth off off loopback, or a public server without keys
    if auth is not None and (args.passwords or args.password):
        parser.error("--passwords/--password are for --auth off: with keys, a Logon carries the key's signature")
    if not 0 <= args.port < 65536:
        parser.error("--port must be a TCP port (0 = any free)")
    if args.logon_timeout <= 0:
        parser.error("--logon-timeout must be positive")
    try:
        passwords = Passwords.read(args.passwords, args.password) if args.passwords else Passwords(shared=args.password)
    except (OSError, ValueError) as exc:
        parser.error(f"--passwords: {exc}")
    return replace(
        FixServerSettings(),
        port=args.port,
        comp_id=args.comp_id,
        state_dir=state_dir(args.state_dir),
        passwords=passwords,
        logon_timeout_s=args.logon_timeout,
        auth=auth,
        **common,
    )


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_server(settings))


if __name__ == "__main__":
    raise SystemExit(main())
