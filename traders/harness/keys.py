"""Which API key each harness client proves: ``dex-trader --key FILE`` or ``--keys DIR`` (docs/security.md).

* ``--key FILE``: one credential (``dex-keys create`` wrote it); every trader
  of the run acts as that key's trader.
* ``--keys DIR``: a development keyring on this machine
  (``transports.core.keys.dev_credential``): each trader the workload uses
  gets its own key of ``--key-scheme`` (Ed25519 unless told ``hmac``; a key of
  the other scheme is not reused), created on first use. ``issue`` creates
  them all before any client connects and waits one keyring reload, so a
  server reading the same directory knows every key by the first request.

Invariants: with either option a client is built with the transport's own
authenticating client (``TransportDescriptor.auth.client``); a transport
that cannot authenticate yet is refused with a ``ConfigError`` before
anything is sent. Without either, clients are the registry's plain ones, as
before.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from traders.harness.config import ConfigError, HarnessConfig
from transports.core.client import TraderClient
from transports.core.keys import KEYRING_FILE, RELOAD_CHECK_S, Credential, Scheme, dev_credential, read_records
from transports.registry import TRANSPORTS


class Credentials:
    """The credential of each trader of a run, and the client that proves it."""

    def __init__(self, transport: str, key_file: str | None = None, keys_dir: str | None = None, scheme: Scheme = "ed25519") -> None:
        auth = TRANSPORTS[transport].auth if transport in TRANSPORTS else None
        if auth is None:
            raise ConfigError(f"--key/--keys: the {transport} transport cannot authenticate yet (docs/security.md, 'Status')")
        self.auth = auth
        self.keys_dir = Path(keys_dir) if keys_dir else None
        self.scheme = scheme  # of the development keys --keys creates
        self.single: Credential | None = None
        if key_file:
            try:
                self.single = Credential.load(key_file)
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigError(f"--key {key_file}: not a credential file written by dex-keys ({type(exc).__name__})") from None

    def issue(self, traders: Iterable[str]) -> int:
        """Create the development keys ``traders`` lack (``--keys``); wait one reload if any was new. How many were."""
        if self.keys_dir is None:
            return 0
        known = {r.key_id for r in read_records(self.keys_dir / KEYRING_FILE)}
        created = sum(dev_credential(self.keys_dir, trader, scheme=self.scheme).key_id not in known for trader in traders)
        if created:
            time.sleep(RELOAD_CHECK_S * 2 + 0.05)  # a server checks its keyring at most every RELOAD_CHECK_S
        return created

    def of(self, trader: str) -> Credential:
        if self.single is not None:
            return self.single
        assert self.keys_dir is not None
        return dev_credential(self.keys_dir, trader, scheme=self.scheme)

    def client(self, trader: str, url: str | None) -> TraderClient:
        """``trader``'s client, proving its key to the server at ``url`` (None: the transport's default URL)."""
        return self.auth.client(self.of(trader), url or "")


def credentials_of(config: HarnessConfig) -> Credentials | None:
    """The run's credentials, or None when it proves no key (no ``--key``/``--keys``)."""
    if not config.key_file and not config.keys_dir:
        return None
    return Credentials(config.transport, config.key_file, config.keys_dir, config.key_scheme)


def traders_of(config: HarnessConfig) -> list[str]:
    """Every trader a run's clients act as: the workers of every process, the control client, the watchdogs."""
    workers = [config.trader_id(proc, i) for proc in range(config.procs) for i in range(config.workers)]
    return [*workers, f"{config.trader_prefix}-control", *(f"{config.trader_prefix}-watchdog-{p}" for p in range(config.procs))]
