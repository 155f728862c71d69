"""API keys: who may act, kept by the exchange as public material (docs/security.md).

A keyring is a directory (``--keys DIR``, else ``$DEX_KEYS``, else
``<state dir>/keys``) that ``dex-keys`` writes and servers read:

* ``keyring.json``: the servers' view, one ``KeyRecord`` per key. An Ed25519
  key is stored as its public key only, so a stolen keyring lets no one act;
  an HMAC-SHA256 key (for clients of Binance-style REST APIs) is a shared
  secret and is stored as such (mode 0600). Per-wire public material rides
  along: the ZeroMQ CURVE public key and the RabbitMQ password hash.
* ``clients/<key id>.json``: a client's credential (``Credential``: the
  private key, mode 0600). Servers never read it; ``dex-keys`` hands it to the
  trader.
* ``server/``: the exchange's own secrets (its CURVE key pair, TLS key,
  broker users), written by ``dex-keys`` and read by the servers that need
  them.

Invariants:

* A key authenticates exactly one trader; a revoked key, or a key no longer
  in the file, authenticates no one.
* ``Keyring.lookup`` sees a change to ``keyring.json`` within
  ``RELOAD_CHECK_S`` of it (the file's size, mtime and inode are checked at
  most that often), so revocation needs no restart. A file that does not
  parse keeps the last good view and is logged once per change.
* Writers replace the file atomically (write, fsync, rename) under a lock, so
  a reader sees the old keyring or the new one, never half of one.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transports.core.state_dir import state_dir

KEYS_ENV: Final = "DEX_KEYS"
KEYRING_FILE: Final = "keyring.json"
CLIENTS_DIR: Final = "clients"
SERVER_DIR: Final = "server"
RELOAD_CHECK_S: Final = 0.2  # how stale a server's view of the keyring may be: "revoked within one reload"
Scheme = Literal["ed25519", "hmac"]
Role = Literal["trader", "admin"]
SCHEMES: Final = ("ed25519", "hmac")
ROLES: Final = ("trader", "admin")

_log = logging.getLogger("dex.keys")


def keys_dir(chosen: str | None = None) -> Path:
    """``chosen``, else ``$DEX_KEYS``, else ``<state dir>/keys``."""
    return Path(chosen or os.environ.get(KEYS_ENV) or Path(state_dir()) / "keys")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key as the exchange knows it."""

    key_id: str
    trader: str
    role: Role = "trader"
    scheme: Scheme = "ed25519"
    public_key: str = ""  # base64 of the raw 32-byte Ed25519 public key (scheme ed25519)
    secret: str = ""  # base64 of the HMAC-SHA256 secret (scheme hmac): a shared secret by nature
    curve_public: str = ""  # Z85 CURVE public key of the trader's ZeroMQ connections
    amqp_password_hash: str = ""  # RabbitMQ's salted SHA-256 of the trader's broker password
    revoked: bool = False
    created: str = ""
    rate_per_s: int = 0  # requests per second this key may send (0: the server's default)
    max_in_flight: int = 0  # requests of this key being served at once (0: the server's default)

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        if record.scheme not in SCHEMES or record.role not in ROLES or not record.key_id or not record.trader:
            raise ValueError(f"key {record.key_id!r}: scheme, role, key_id and trader are required and known")
        return record


@dataclass(frozen=True, slots=True)
class Credential:
    """What a client holds to act as its trader: the private half of a key."""

    key_id: str
    trader: str
    scheme: Scheme
    private_key: str  # base64: the Ed25519 seed (32 bytes) or the HMAC secret
    role: Role = "trader"
    curve_public: str = ""  # Z85: this client's CURVE key pair (ZeroMQ)
    curve_secret: str = ""
    amqp_password: str = ""  # the trader's RabbitMQ password
    extra: dict[str, str] = field(default_factory=dict)  # per-wire material a server hands out (e.g. its CURVE key)

    @property
    def seed(self) -> bytes:
        return unb64(self.private_key)

    def signing_key(self) -> Ed25519PrivateKey:
        return _private_key(self.private_key)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str | Path) -> Credential:
        data = json.loads(Path(path).read_text())
        return cls(**data)


@functools.lru_cache(maxsize=1024)
def _private_key(seed_b64: str) -> Ed25519PrivateKey:
    # Loading a key costs more than signing with it (about 45 µs against 33 µs here): a client signs every request.
    return Ed25519PrivateKey.from_private_bytes(unb64(seed_b64))


class Keyring:
    """The keys in one directory, as servers see them: reloaded when the file changes."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / KEYRING_FILE
        self._records: dict[str, KeyRecord] = {}
        self._by_curve: dict[str, KeyRecord] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = -RELOAD_CHECK_S
        self.reloads = 0
        self.refresh(force=True)

    def lookup(self, key_id: str) -> KeyRecord | None:
        """The live (not revoked) key ``key_id``, as of at most ``RELOAD_CHECK_S`` ago."""
        self.refresh()
        record = self._records.get(key_id)
        return None if record is None or record.revoked else record

    def by_curve_key(self, curve_public: str) -> KeyRecord | None:
        """The live key whose ZeroMQ CURVE public key is ``curve_public`` (Z85)."""
        self.refresh()
        record = self._by_curve.get(curve_public)
        return None if record is None or record.revoked else record

    def records(self) -> list[KeyRecord]:
        self.refresh()
        return list(self._records.values())

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_CHECK_S:
            return
        self._checked = now
        try:
            st = self.path.stat()
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp and not force:
            return
        self._stamp = stamp
        try:
            records = read_records(self.path)
        except (OSError, ValueError, TypeError) as exc:
            _log.error("keyring_unreadable", extra={"path": str(self.path), "detail": str(exc)})
            return
        self._records = {r.key_id: r for r in records}
        self._by_curve = {r.curve_public: r for r in records if r.curve_public}
        self.reloads += 1


def read_records(path: Path) -> list[KeyRecord]:
    """The records of the keyring file at ``path`` ([] if it does not exist)."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [KeyRecord.from_json(item) for item in data.get("keys", [])]


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the keyring directory's write lock (writers only: readers never wait)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def write_records(directory: Path, records: list[KeyRecord]) -> None:
    """Replace the keyring file of ``directory`` (call under ``locked``)."""
    body = {"version": 1, "keys": [asdict(r) for r in records]}
    write_private(directory / KEYRING_FILE, json.dumps(body, indent=2, sort_keys=True) + "\n")


def new_key_id(trader: str) -> str:
    """A fresh key id: readable, unique, no secret in it."""
    # ASCII only: the id travels where only ASCII may (gRPC metadata, NATS subjects, RabbitMQ user names), whatever the name.
    stem = "".join(c if c.isascii() and c.isalnum() else "-" for c in trader.lower())[:24].strip("-") or "key"
    return f"{stem}-{secrets.token_hex(6)}"


def create_key(
    directory: str | Path, trader: str, *, role: Role = "trader", scheme: Scheme = "ed25519", wires: WireMaterial | None = None
) -> Credential:
    """Add a new key for ``trader`` to the keyring in ``directory``; the client's credential, written under ``clients/``.

    ``trader`` follows the one rule for trader names on every wire (``check_trader``: ``MalformedMessage`` outside it),
    so a key cannot act as a name that no wire would accept from a client under ``--auth off``.
    """
    from transports.core.requests import check_trader  # imported here: requests imports auth, which imports keys

    trader = check_trader(trader)
    directory = Path(directory)
    material = wires if wires is not None else WireMaterial.generate()
    if scheme == "ed25519":
        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes_raw()
        public, secret = b64(private.public_key().public_bytes_raw()), ""
    else:
        seed = secrets.token_bytes(32)
        public, secret = "", b64(seed)
    with locked(directory):
        records = read_records(directory / KEYRING_FILE)
        key_id = new_key_id(trader)
        record = KeyRecord(
            key_id, trader, role, scheme, public, secret, material.curve_public, material.amqp_password_hash,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )  # fmt: skip
        write_records(directory, [*records, record])
        credential = Credential(
            key_id, trader, scheme, b64(seed), role, material.curve_public, material.curve_secret, material.amqp_password
        )
        write_private(directory / CLIENTS_DIR / f"{key_id}.json", credential.to_json() + "\n")
    return credential


def revoke_key(directory: str | Path, key_id: str) -> KeyRecord:
    """Mark ``key_id`` revoked (servers refuse it within one reload); ``KeyError`` if there is no such key."""
    directory = Path(directory)
    with locked(directory):
        records = read_records(directory / KEYRING_FILE)
        for i, record in enumerate(records):
            if record.key_id == key_id:
                records[i] = replace(record, revoked=True)
                write_records(directory, records)
                return records[i]
    raise KeyError(key_id)


def credential_for(directory: str | Path, trader: str, role: Role = "trader") -> Credential | None:
    """A live credential of ``trader`` (with ``role``) found under ``clients/``; None if there is none."""
    directory = Path(directory)
    live = {r.key_id for r in read_records(directory / KEYRING_FILE) if r.trader == trader and r.role == role and not r.revoked}
    for key_id in sorted(live):
        path = directory / CLIENTS_DIR / f"{key_id}.json"
        if path.exists():
            return Credential.load(path)
    return None


def dev_credential(directory: str | Path, trader: str, role: Role = "trader", scheme: Scheme = "ed25519") -> Credential:
    """``trader``'s development credential of ``scheme`` in ``directory``, created on first use (tests, demo, bots, benchmarks).

    A live key of another scheme is not reused: a benchmark that asks for HMAC
    keys measures HMAC, whatever an earlier run created for the same trader.
    For a keyring on this machine only: a client that can write the keyring is
    its owner. Production keys are created with ``dex-keys create``.
    """
    directory = Path(directory)
    with _dev_lock(directory):
        live = read_records(directory / KEYRING_FILE)
        wanted = {r.key_id for r in live if r.trader == trader and r.role == role and r.scheme == scheme and not r.revoked}
        for key_id in sorted(wanted):
            path = directory / CLIENTS_DIR / f"{key_id}.json"
            if path.exists():
                return Credential.load(path)
        return create_key(directory, trader, role=role, scheme=scheme)


@contextmanager
def _dev_lock(directory: Path) -> Iterator[None]:
    # A separate lock from the writers' (create_key takes that one): two processes asking for the same trader's
    # development key at once get one key, not two.
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".dev-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class WireMaterial:
    """A key's per-wire material: a ZeroMQ CURVE key pair and a RabbitMQ password with its broker hash."""

    curve_public: str = ""
    curve_secret: str = ""
    amqp_password: str = ""
    amqp_password_hash: str = ""

    @classmethod
    def generate(cls) -> WireMaterial:
        public, secret = curve_keypair()
        password = secrets.token_urlsafe(24)
        return cls(public, secret, password, rabbit_password_hash(password))


def curve_keypair() -> tuple[str, str]:
    """A fresh CURVE key pair in Z85 (public, secret), as ZeroMQ's ``zmq_curve_keypair`` makes it; empty without pyzmq."""
    try:
        import zmq  # the zmq extra is optional for servers that never speak ZeroMQ
    except ImportError:
        return "", ""
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def rabbit_password_hash(password: str) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256`` of ``password``: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return b64(salt + hashlib.sha256(salt + password.encode()).digest())
