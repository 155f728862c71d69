"""Keyed venues for tests: a keyring per venue, a key per trader, a gateway served over a wire that checks them.

Shared by the authentication suite (``tests/auth/test_wires.py``) and the
contract suite's authenticated pass (``tests/contract``), so both serve and
connect exactly as ``--auth keys`` does: the transport descriptor's ``auth``
serves the gateway with an ``Authenticator`` over the keyring (brokers get the
keyring's users), and a client proves its ``Credential`` the wire's own way.

Invariants:

* ``TraderKeys`` holds at most one key per (trader, role): asking again for
  the same trader gives the same credential, so a client that reconnects is
  the same trader with the same key, as a real one would be.
* A key created after the server started is honoured within one keyring
  reload (``RELOAD_CHECK_S``; a broker reloads its users as well); creating
  the keys a test will use up front spares those reloads.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from transports.core.auth import Authenticator
from transports.core.client import TraderClient
from transports.core.descriptor import Authentication
from transports.core.gateway import Gateway
from transports.core.keys import Credential, Keyring, Role, create_key
from transports.core.ratelimit import DEFAULT_RATE_PER_S
from transports.registry import TRANSPORTS


def authentication(transport: str) -> Authentication:
    """How ``transport`` authenticates; ``ValueError`` for one that cannot (``transports.registry.authenticating``)."""
    auth = TRANSPORTS[transport].auth
    if auth is None:
        raise ValueError(f"transport {transport!r} does not authenticate with keys")
    return auth


class TraderKeys:
    """A keyring in ``directory`` and the credentials its clients hold, one per (trader, role), made on first use."""

    def __init__(self, directory: Path, traders: Iterable[str] = (), admins: Iterable[str] = ()) -> None:
        self.directory = directory
        self._issued: dict[tuple[str, Role], Credential] = {}
        for trader in traders:
            self.credential(trader)
        for admin in admins:
            self.credential(admin, "admin")
        self.keyring = Keyring(directory)  # the servers' view: built after the up-front keys, reloaded for later ones

    def credential(self, trader: str, role: Role = "trader") -> Credential:
        """``trader``'s credential with ``role``, created in the keyring the first time it is asked for."""
        found = self._issued.get((trader, role))
        if found is None:
            found = self._issued[(trader, role)] = create_key(self.directory, trader, role=role)
            if hasattr(self, "keyring"):  # a server in this process shares this view: it sees the key now, not a reload later
                self.keyring.refresh(force=True)
        return found


@contextlib.asynccontextmanager
async def serve_keyed(transport: str, gateway: Gateway, keyring: Keyring, *, rate_per_s: int = DEFAULT_RATE_PER_S) -> AsyncIterator[str]:
    """Serve ``gateway`` over ``transport`` in this loop with every request proved by a key of ``keyring``; yields the URL."""
    async with authentication(transport).serve(gateway, Authenticator(keyring, rate_per_s=rate_per_s)) as url:
        yield url


def keyed_client(transport: str, credential: Credential, url: str) -> TraderClient:
    """A client of ``transport`` (not yet connected) that proves ``credential``'s key on every request."""
    return authentication(transport).client(credential, url)
