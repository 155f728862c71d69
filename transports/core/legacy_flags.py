"""The single-dash spellings of the tools this project replaces, for every command.

Users of the old ``turbo-dex``, ``dex-trader``, ``zmq-trader`` and
``nats-auto`` typed ``-port 8080``, ``-server URL``, ``-workers 20``. Every
command here parses its arguments through ``parse_args`` (or ``modern_argv``),
which rewrites those spellings to the ``--`` option before argparse sees them.

Invariants:

* A single-dash word is rewritten only when it is one of ``OLD_SPELLINGS`` and
  the command has the matching ``--`` option; anything else reaches argparse
  untouched (so its own error names it). ``-name=value`` works too.
* Nothing after a bare ``--`` is touched.
* An option that does not exist yet or has no meaning for this command
  (``-shards`` but on turbo-dex, ``-workers`` on a server) is refused, in either spelling, with one line
  that says why, exit status 2, before anything starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

OLD_SPELLINGS = frozenset({"port", "server", "workers", "batch", "duration", "traders", "rate", "mode", "buffer", "nats", "shards"})

SHARDS_REASON = (
    "this command runs one gateway, a single writer holding every symbol's book; turbo-dex --shards N runs N shard "
    "processes behind one front (docs/shards.md)"
)
WORKERS_REASON = (
    "a server has no worker processes: its gateway is the one writer of the order book, and a second process would hold "
    "a second book where orders never meet (requests are already served concurrently); load generators take --workers (dex-trader)"
)
# Refused wherever the command has no such option (dex-trader has --workers, so it is not refused there).
REFUSED: Mapping[str, str] = {"shards": SHARDS_REASON, "workers": WORKERS_REASON}


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    return {s[2:] for action in parser._actions for s in action.option_strings if s.startswith("--")}


def _split(arg: str) -> tuple[str, str]:
    """``-name=value`` -> (``name``, ``=value``); ``--name`` -> (``name``, ``""``); other -> (``""``, ``""``)."""
    if not arg.startswith("-") or arg in ("-", "--") or not arg.lstrip("-")[:1].isalpha():
        return "", ""
    name, eq, value = arg.lstrip("-").partition("=")
    return name, eq + value


def modern_argv(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with old single-dash spellings as ``--`` options; refuses (exit 2) what ``REFUSED`` names."""
    known = _long_options(parser)
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[i:])
        name, rest = _split(arg)
        if name in REFUSED and arg.startswith("-") and name not in known:
            parser.exit(2, f"{parser.prog}: {arg.partition('=')[0]} is not supported: {REFUSED[name]}\n")
        if name in OLD_SPELLINGS and name in known and not arg.startswith("--"):
            arg = f"--{name}{rest}"
        out.append(arg)
    return out


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args`` over ``modern_argv`` (``argv`` None: the process's arguments)."""
    return parser.parse_args(modern_argv(parser, sys.argv[1:] if argv is None else argv))
