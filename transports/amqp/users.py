"""RabbitMQ users from the keyring: one broker user per key on the exchange's vhost (docs/security.md, "RabbitMQ").

A key's broker user is named by its key id and logs in with the key's
RabbitMQ password; the broker holds only its salted SHA-256
(``KeyRecord.amqp_password_hash``, RabbitMQ's ``rabbit_password_hashing_sha256``:
base64(salt + sha256(salt + password)), 32-bit salt), loaded with
``rabbitmqctl import_definitions``. The exchange's own user and password are
kept in the keyring's ``server/`` directory (made on first use).

Permissions on the vhost (configure, write, read: regular expressions on
queue and exchange names, ``<name>`` the exchange's prefix, ``K`` a key id):

=========  ==========================  ====================================  ==============================
user       configure                   write                                 read
=========  ==========================  ====================================  ==============================
exchange   everything                  everything                            everything
key K      its own queues              the command exchange, its own queues  its own queues, market data
=========  ==========================  ====================================  ==============================

where "its own queues" are ``<name>.reply.K.*`` and ``<name>.md.K.*``. So a key
may publish only to ``<name>.cmd`` (not the default exchange: no reply can be
forged into another's queue), consume only its own queues (not the command
queue: only the exchange answers), and the broker checks the ``user_id`` of
each message against its login: the server maps ``user_id`` to the principal.

Invariants:

* ``BrokerUsers.sync`` makes the broker's users those of the live keys that
  have a password hash (plus the exchange's), and deletes the users of keys
  since revoked or removed: the broker closes their connections at once
  (``CONNECTION_FORCED``). It runs ``rabbitmqctl``, so callers run it in a
  thread; the server refuses a revoked key per request meanwhile.
* ``guest`` is deleted on a broker whose users we manage.
* No password is written or logged; the definitions file holds hashes only
  and is removed after the import.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from transports.core.keys import SERVER_DIR, KeyRecord, Keyring, rabbit_password_hash, write_private

EXCHANGE_LOGIN_FILE: Final = "amqp-exchange.json"
HASHING: Final = "rabbit_password_hashing_sha256"
_USER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")

Ctl = Callable[..., "subprocess.CompletedProcess[str]"]  # rabbitmqctl ARGS against one node (LocalRabbitMQ.ctl)


class BrokerUsersError(RuntimeError):
    """``rabbitmqctl`` could not set the broker's users."""


@dataclass(frozen=True, slots=True)
class Login:
    """A broker user and its password (the exchange's own: a secret, never logged)."""

    user: str
    password: str

    def url(self, host: str, port: int, vhost: str) -> str:
        return f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{host}:{port}/{quote(vhost, safe='')}"


def exchange_login(directory: str | Path) -> Login:
    """The exchange's own broker user, kept in the keyring's ``server/`` directory (made on first use)."""
    path = Path(directory) / SERVER_DIR / EXCHANGE_LOGIN_FILE
    if not path.exists():
        login = {"user": f"dex-exchange-{secrets.token_hex(4)}", "password": secrets.token_urlsafe(24)}
        write_private(path, json.dumps(login) + "\n")
    data = json.loads(path.read_text())
    return Login(str(data["user"]), str(data["password"]))


def client_url(broker_url: str, user: str, password: str) -> str:
    """``broker_url`` (``amqp://host:port/vhost#name``, no login) with ``user``'s login in it."""
    scheme, _, rest = broker_url.partition("://")
    rest = rest.rpartition("@")[2]  # a login already there is replaced
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def key_user(record: KeyRecord) -> bool:
    """Whether ``record`` has a broker user: live, with a password hash and a plain name."""
    return not record.revoked and bool(record.amqp_password_hash) and bool(_USER_NAME.match(record.key_id))


def permissions(name: str, key_id: str) -> dict[str, str]:
    """What key ``key_id`` may configure, write and read on the vhost of the exchange ``name``."""
    n, k = re.escape(name), re.escape(key_id)
    own = f"^{n}\\.(reply|md)\\.{k}\\..*$"
    return {"configure": own, "write": f"^{n}\\.cmd$|{own}", "read": f"^{n}\\.md$|{own}"}


def definitions(records: Iterable[KeyRecord], vhost: str, name: str, exchange: Login, exchange_hash: str) -> dict[str, Any]:
    """The broker definitions (users, the vhost, permissions) for ``records`` and the exchange's user."""
    users = [{"name": exchange.user, "password_hash": exchange_hash, "hashing_algorithm": HASHING, "tags": ""}]
    perms = [{"user": exchange.user, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}]
    for record in sorted(records, key=lambda r: r.key_id):
        if key_user(record):
            users.append({"name": record.key_id, "password_hash": record.amqp_password_hash, "hashing_algorithm": HASHING, "tags": ""})
            perms.append({"user": record.key_id, "vhost": vhost, **permissions(name, record.key_id)})
    return {"users": users, "vhosts": [{"name": vhost}], "permissions": perms}


class BrokerUsers:
    """The users of one exchange (``name`` on ``vhost``) on a broker of ours, kept in step with a keyring."""

    def __init__(self, keyring: Keyring, ctl: Ctl, workdir: Path, vhost: str, name: str) -> None:
        self.keyring = keyring
        self.ctl = ctl
        self.workdir = workdir
        self.vhost = vhost
        self.name = name
        self.exchange = exchange_login(keyring.directory)
        self._exchange_hash = rabbit_password_hash(self.exchange.password)
        self._present: set[str] = set()  # key users we made on the broker
        self._seen = -1  # the keyring's reload count at the last sync
        self.syncs = 0

    def _run(self, *args: str) -> str:
        done = self.ctl(*args, timeout=60)
        if done.returncode != 0:
            raise BrokerUsersError(f"rabbitmqctl {args[0]} failed ({done.returncode}): {(done.stderr or done.stdout)[-400:]}")
        return str(done.stdout)

    def sync(self) -> bool:
        """Make the broker's users those of the keyring, if it changed since the last sync; whether it did."""
        self.keyring.refresh()
        if self.keyring.reloads == self._seen:
            return False
        self._seen = self.keyring.reloads
        records = self.keyring.records()
        wanted = {r.key_id for r in records if key_user(r)}
        path = self.workdir / f"definitions-{secrets.token_hex(4)}.json"
        write_private(path, json.dumps(definitions(records, self.vhost, self.name, self.exchange, self._exchange_hash)))
        try:
            self._run("import_definitions", str(path))
        finally:
            path.unlink(missing_ok=True)
        for key_id in sorted(self._present - wanted):  # revoked or removed: the broker closes their connections
            self._delete_user(key_id)
        self._present = wanted
        self._wait_for({self.exchange.user, *wanted})
        self.syncs += 1
        return True

    def _delete_user(self, user: str) -> None:
        done = self.ctl("delete_user", user, timeout=60)
        if done.returncode != 0 and not _no_such_user(done):
            raise BrokerUsersError(f"rabbitmqctl delete_user failed: {(done.stderr or done.stdout)[-400:]}")

    def _wait_for(self, users: set[str], timeout: float = 30.0) -> None:
        """Until every user in ``users`` has its permissions on the vhost (the import is asynchronous)."""
        deadline = time.monotonic() + timeout
        while True:
            listed = self._run("list_permissions", "-p", self.vhost, "--formatter", "json")
            with contextlib.suppress(ValueError):
                if users <= {str(p.get("user")) for p in json.loads(listed)}:
                    return
            if time.monotonic() > deadline:
                raise BrokerUsersError(f"the broker did not list the users of vhost {self.vhost} within {timeout:g}s")
            time.sleep(0.1)

    def remove(self, delete_users: bool = True) -> None:
        """Delete this exchange's vhost (its users can then open nothing) and, with ``delete_users``, the users we made."""
        with contextlib.suppress(Exception):
            self.ctl("delete_vhost", self.vhost, timeout=60)
        if not delete_users:
            return
        for user in sorted(self._present | {self.exchange.user}):
            with contextlib.suppress(Exception):
                self._delete_user(user)
        self._present.clear()


def delete_guest(ctl: Ctl) -> None:
    """No guest on a broker whose users come from a keyring."""
    done = ctl("delete_user", "guest", timeout=60)
    if done.returncode != 0 and not _no_such_user(done):
        raise BrokerUsersError(f"rabbitmqctl delete_user guest failed: {(done.stderr or done.stdout)[-400:]}")


def _no_such_user(done: subprocess.CompletedProcess[str]) -> bool:
    """Whether ``rabbitmqctl delete_user`` failed because the user is already gone (a second dex-amqp on one broker)."""
    said = done.stdout + done.stderr
    return "no_such_user" in said or "does not exist" in said  # RabbitMQ 3.10's CLI says the latter
