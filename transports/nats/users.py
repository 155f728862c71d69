"""nats-server users from the keyring: one NKEY user per key, with subject permissions (docs/security.md, "NATS").

A key's Ed25519 seed is its NKEY user seed (``user_seed``: the same 32 bytes,
NKEY-encoded), so its public NKEY follows from the keyring's public key alone
(``public_nkey``): the broker, like the keyring, holds public material only.
The exchange's own NKEY lives in the keyring's ``server/`` directory
(``exchange_seed``, mode 0600, made on first use).

Subjects with keys (``Subjects`` under ``prefix``, key id ``K``)::

    <prefix>.cmd.K.<SYMBOL>   <prefix>.lean.K   <prefix>.q.K.<kind>   requests of key K
    _INBOX.K.>                                                      K's replies (its client's inbox prefix)

Invariants (what ``authorization`` writes):

* A key's user may publish only its own request subjects and subscribe only
  to its own inbox and the market data (``<prefix>.md.>``, ``<prefix>.stats``):
  it can neither read another key's requests or replies nor answer any.
* Only the exchange's user may subscribe to request subjects, so no other
  responder can exist; it may publish anywhere (replies, market data).
* A revoked key, an HMAC key (no Ed25519 public key, so no NKEY) and a key
  whose id is not one subject token have no user. No anonymous user exists.
* ``BrokerUsers.sync`` rewrites the configuration when the keyring changed
  and has the nats-server we started reload it (SIGHUP to its PID): the
  broker disconnects a revoked key's connections and refuses its next ones.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import nkeys

from transports.core.keys import SERVER_DIR, Credential, KeyRecord, Keyring, keys_dir, unb64, write_private
from transports.nats.settings import DEFAULT_PREFIX, Subjects, token

EXCHANGE_SEED_FILE: Final = "nats-exchange.nk"
INBOX_ROOT: Final = "_INBOX"


def user_seed(credential: Credential) -> str:
    """``credential``'s NKEY user seed (``SU...``): its Ed25519 seed, NKEY-encoded. A secret: never logged."""
    return bytes(nkeys.encode_seed(credential.seed, nkeys.PREFIX_BYTE_USER)).decode()


def public_nkey(public_key: bytes) -> str:
    """The public NKEY (``U...``) of a raw 32-byte Ed25519 user public key: prefix, key, CRC-16 (little-endian), base32."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    raw = bytearray([nkeys.PREFIX_BYTE_USER]) + public_key
    raw += nkeys.crc16(raw).to_bytes(2, "little")
    return base64.b32encode(bytes(raw)).decode().rstrip("=")


def record_nkey(record: KeyRecord) -> str | None:
    """The public NKEY of a live Ed25519 key whose id is one subject token; None for any other key."""
    if record.revoked or record.scheme != "ed25519" or not record.public_key or token(record.key_id) != record.key_id:
        return None
    return public_nkey(unb64(record.public_key))


def inbox_prefix(key_id: str) -> str:
    """The inbox prefix of key ``key_id``'s client: the only replies its user may receive."""
    return f"{INBOX_ROOT}.{key_id}"


def exchange_seed(directory: str | Path) -> str:
    """The exchange's own NKEY user seed, kept in the keyring's ``server/`` directory (made on first use)."""
    path = Path(directory) / SERVER_DIR / EXCHANGE_SEED_FILE
    if not path.exists():
        seed = bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)).decode()
        write_private(path, seed + "\n")
    return path.read_text().strip()


def seed_public(seed: str) -> str:
    """The public NKEY of a user seed."""
    return bytes(nkeys.from_seed(bytearray(seed.encode())).public_key).decode()


def _quoted(items: Iterable[str]) -> str:
    return ", ".join(f'"{s}"' for s in items)


def _user(nkey: str, publish: Iterable[str], subscribe: Iterable[str]) -> str:
    allowed = f"publish: {{ allow: [{_quoted(publish)}] }}, subscribe: {{ allow: [{_quoted(subscribe)}] }}"
    return f'    {{ nkey: "{nkey}", permissions: {{ {allowed} }} }}'


def authorization(records: Iterable[KeyRecord], exchange_public: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The nats-server ``authorization`` block for ``records`` and the exchange's user."""
    subjects = Subjects(prefix)
    users = [_user(exchange_public, [">"], [">"])]
    for record in sorted(records, key=lambda r: r.key_id):
        nkey = record_nkey(record)
        if nkey is None:
            continue
        key = record.key_id
        publish = [subjects.command_of(key, ">"), subjects.lean_of(key), subjects.query_of(key, "*")]
        users.append(_user(nkey, publish, [f"{inbox_prefix(key)}.>", f"{prefix}.md.>", subjects.stats]))
    return "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"


class BrokerUsers:
    """The users of one nats-server of ours, kept in step with a keyring (``sync``, then a reload by PID)."""

    def __init__(self, keyring: Keyring, prefix: str = DEFAULT_PREFIX) -> None:
        self.keyring = keyring
        self.prefix = prefix
        self.exchange_seed = exchange_seed(keyring.directory)
        self.exchange_public = seed_public(self.exchange_seed)
        self._written = ""
        self.reloads = 0

    def config(self) -> str:
        return authorization(self.keyring.records(), self.exchange_public, self.prefix)

    def sync(self, path: Path, pid: int) -> bool:
        """Rewrite ``path`` (the included users file) if the keyring changed, and reload nats-server ``pid``; whether it did."""
        text = self.config()
        if text == self._written:
            return False
        write_private(path, text)
        self._written = text
        if pid:
            os.kill(pid, signal.SIGHUP)  # nats-server re-reads its configuration: a removed user's connections are closed
            self.reloads += 1
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m transports.nats.users``: the users block for a nats-server we do not start (``include`` it, then reload it)."""
    parser = argparse.ArgumentParser(prog="python -m transports.nats.users", description=main.__doc__)
    parser.add_argument("--keys", default=None, metavar="DIR", help="keyring directory (default $DEX_KEYS, else STATE_DIR/keys)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"subject prefix (default {DEFAULT_PREFIX})")
    parser.add_argument("--out", default=None, help="write the block here (mode 0600) instead of standard output")
    parser.add_argument("--reload-pid", type=int, default=0, help="then signal this nats-server to reload its configuration")
    args = parser.parse_args(argv)
    users = BrokerUsers(Keyring(keys_dir(args.keys)), args.prefix)
    if args.out is None:
        sys.stdout.write(users.config())
    else:
        users.sync(Path(args.out), args.reload_pid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
