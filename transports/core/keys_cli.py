"""``dex-keys``: create, list and revoke API keys, and issue the servers' TLS certificate (docs/security.md).

Commands::

    dex-keys create TRADER [--admin] [--hmac] [--rate N] [--in-flight N]
    dex-keys ensure TRADER [--admin]      (create only if TRADER has no live key: for set-up scripts)
    dex-keys list [--json]
    dex-keys revoke KEY_ID
    dex-keys tls [--name HOST ...]

Every command takes ``--keys DIR`` (default ``$DEX_KEYS``, else
``var/keys``). ``create`` prints the path of the new credential file (mode
0600) and never prints a private key or secret; ``list`` shows key ids,
traders, roles and schemes, never secrets. A running server sees a change
within one reload (``transports.core.keys.RELOAD_CHECK_S``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from engine import ExchangeError
from transports.core.keys import (
    CLIENTS_DIR,
    KEYRING_FILE,
    Keyring,
    Role,
    create_key,
    credential_for,
    keys_dir,
    locked,
    read_records,
    revoke_key,
    write_records,
)
from transports.core.tls import issue_server_certificate

USAGE = """commands:
  dex-keys create TRADER [--admin] [--hmac] [--rate N] [--in-flight N]
  dex-keys ensure TRADER [--admin]
  dex-keys list [--json]
  dex-keys revoke KEY_ID
  dex-keys tls [--name HOST ...]"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dex-keys",
        description="API keys and TLS certificates of the exchange (docs/security.md)",
        epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--keys", default=None, metavar="DIR", help="keyring directory (default $DEX_KEYS, else var/keys)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new key for a trader; prints its credential file")
    create.add_argument("trader")
    create.add_argument("--admin", action="store_true", help="the admin role: may add instruments")
    create.add_argument("--hmac", action="store_true", help="an HMAC-SHA256 secret instead of an Ed25519 key pair")
    create.add_argument("--rate", type=int, default=0, metavar="N", help="requests per second of this key (default: the server's)")
    create.add_argument("--in-flight", type=int, default=0, metavar="N", help="requests of this key served at once (default: the server's)")
    ensure = commands.add_parser("ensure", help="a key for a trader unless it has a live one (idempotent set-up)")
    ensure.add_argument("trader")
    ensure.add_argument("--admin", action="store_true", help="the admin role: may add instruments")
    listing = commands.add_parser("list", help="every key: id, trader, role, scheme, revoked")
    listing.add_argument("--json", action="store_true", help="one JSON document (no secrets)")
    revoke = commands.add_parser("revoke", help="revoke a key: servers refuse it within one reload")
    revoke.add_argument("key_id")
    tls = commands.add_parser("tls", help="a private CA and a server certificate (gRPC TLS)")
    tls.add_argument("--name", action="append", default=None, help="a host name or address the certificate is valid for (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args, keys_dir(args.keys))
    except ExchangeError as refused:  # a trader name outside the rule of every wire: said, not a traceback
        print(f"dex-keys: {refused}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, directory: Path) -> int:
    if args.command == "create":
        if args.rate < 0 or args.in_flight < 0:
            print("dex-keys: --rate and --in-flight are 0 (the server's default) or more", file=sys.stderr)
            return 2
        credential = create_key(directory, args.trader, role="admin" if args.admin else "trader", scheme="hmac" if args.hmac else "ed25519")
        if args.rate or args.in_flight:
            _set_limits(directory, credential.key_id, args.rate, args.in_flight)
        print(f"created {credential.key_id} for {credential.trader} ({credential.scheme}, {credential.role})")
        print(f"credential: {directory / CLIENTS_DIR / (credential.key_id + '.json')} (give it to the trader; keep it secret)")
    elif args.command == "ensure":
        role: Role = "admin" if args.admin else "trader"
        found = credential_for(directory, args.trader, role)
        credential = found if found is not None else create_key(directory, args.trader, role=role)
        print(f"{'kept' if found else 'created'} {credential.key_id} for {credential.trader} ({credential.role})")
        print(f"credential: {directory / CLIENTS_DIR / (credential.key_id + '.json')}")
    elif args.command == "list":
        records = Keyring(directory).records()
        if args.json:
            public = [{k: v for k, v in asdict(r).items() if k not in ("secret", "amqp_password_hash")} for r in records]
            print(json.dumps({"keyring": str(directory / KEYRING_FILE), "keys": public}, indent=2))
        for record in [] if args.json else records:
            state = "revoked" if record.revoked else "live"
            print(f"{record.key_id:<32} {record.trader:<20} {record.role:<6} {record.scheme:<8} {state}")
    elif args.command == "revoke":
        try:
            record = revoke_key(directory, args.key_id)
        except KeyError:
            print(f"no key {args.key_id!r} in {directory / KEYRING_FILE}", file=sys.stderr)
            return 1
        print(f"revoked {record.key_id} of {record.trader}")
    else:
        files = issue_server_certificate(directory, tuple(args.name or ("localhost", "127.0.0.1")))
        print(f"CA certificate: {files.ca} (clients trust it)")
        print(f"server certificate: {files.cert}, key: {files.key}")
    return 0


def _set_limits(directory: Path, key_id: str, rate: int, in_flight: int) -> None:
    with locked(directory):
        records = read_records(directory / KEYRING_FILE)
        records = [replace(r, rate_per_s=rate, max_in_flight=in_flight) if r.key_id == key_id else r for r in records]
        write_records(directory, records)


if __name__ == "__main__":
    sys.exit(main())
