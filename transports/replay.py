"""``dex-engine``: run the engine over a file of commands, offline.

``dex-engine replay FILE`` reads commands as JSON Lines (docs/json-format.md)
and writes every event as JSON Lines to stdout. A line that cannot be decoded
produces one ``{"type": "error", ...}`` line naming the input line, and the
replay goes on: the engine never sees it. Output is deterministic: the same
file gives byte-identical output on every machine.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import IO

from engine import Engine, ExchangeError
from transports.codec import decode_command, dumps, encode_event, error_reply, loads


def replay_lines(lines: Iterable[str | bytes], engine: Engine | None = None) -> Iterator[bytes]:
    """Yield one encoded JSON line (without newline) per output record."""
    engine = engine if engine is not None else Engine()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            command = decode_command(loads(line), engine.instrument)
        except ExchangeError as exc:
            yield dumps({**error_reply(exc), "line": number})
            continue
        for event in engine.handle(command):
            yield dumps(encode_event(event, engine.instrument))


def replay(source: IO[str], sink: IO[bytes], engine: Engine | None = None) -> Engine:
    engine = engine if engine is not None else Engine()
    for out in replay_lines(source, engine):
        sink.write(out + b"\n")
    return engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dex-engine", description="Offline tools for the matching engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("replay", help="read commands as JSON Lines, write events as JSON Lines")
    rp.add_argument("file", help="commands file (JSON Lines), or - for stdin")
    rp.add_argument("--state-hash", action="store_true", help="print the final state hash to stderr")
    args = parser.parse_args(argv)
    try:
        source: IO[str] = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"dex-engine: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        engine = replay(source, sys.stdout.buffer)
    finally:
        if source is not sys.stdin:
            source.close()
    sys.stdout.flush()
    if args.state_hash:
        print(f"state_hash {engine.state_hash()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
