"""``dex-engine``: run the engine over a file of commands, offline.

``dex-engine replay FILE`` reads commands as JSON Lines (docs/json-format.md)
and writes every event as JSON Lines to stdout. A line that cannot be decoded
produces one ``{"type": "error", ...}`` line naming the input line, and the
replay goes on: the engine never sees it. Output is deterministic: the same
file gives byte-identical output on every machine.

``dex-engine replay --journal PATH`` rebuilds a server's state offline, as its
next start would (the snapshot ``PATH.snapshot`` if one applies, then the
journal's tail), without locking or changing either file, and prints the
engine seq and state hash: compare them with a running server's, or with
another replica's.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from engine import Engine, ExchangeError
from transports.codec import decode_command, dumps, encode_event, error_reply, loads
from transports.core.journal import plan_recovery, read_records, replay_records


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


def replay_journal(path: Path) -> Engine:
    """The state a server would start with from the journal at ``path`` (and its snapshot); progress on stderr."""
    started = time.monotonic()
    plan = plan_recovery(path, read_records(path).records)
    if plan.note and plan.note != "no snapshot":
        print(f"dex-engine: {plan.note}", file=sys.stderr)
    engine = plan.snapshot.restore() if plan.snapshot is not None else Engine()
    if plan.snapshot is not None:
        print(f"dex-engine: snapshot at seq {plan.snapshot.seq} loaded in {time.monotonic() - started:.2f}s", file=sys.stderr)

    def progress(done: int, total: int, commands: int) -> None:
        print(f"dex-engine: {done}/{total} records, {commands} commands", file=sys.stderr, flush=True)

    commands = replay_records(engine, plan.tail, progress)
    print(f"dex-engine: replayed {commands} commands in {time.monotonic() - started:.2f}s", file=sys.stderr)
    return engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dex-engine", description="Offline tools for the matching engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("replay", help="read commands as JSON Lines, write events as JSON Lines; or check a server's journal")
    rp.add_argument("file", nargs="?", help="commands file (JSON Lines), or - for stdin")
    rp.add_argument("--state-hash", action="store_true", help="print the final state hash to stderr")
    rp.add_argument("--journal", metavar="PATH", help="rebuild a server journal (and PATH.snapshot) instead; print its seq and state hash")
    args = parser.parse_args(argv)
    if args.journal is not None:
        if args.file is not None:
            parser.error("give a commands file or --journal, not both")
        try:
            engine = replay_journal(Path(args.journal))
        except OSError as exc:
            print(f"dex-engine: cannot read {args.journal}: {exc.strerror}", file=sys.stderr)
            return 2
        except ExchangeError as exc:
            print(f"dex-engine: {args.journal}: {exc}", file=sys.stderr)
            return 1
        print(f"engine_seq {engine.seq}\nstate_hash {engine.state_hash()}")
        return 0
    if args.file is None:
        parser.error("a commands file (or --journal PATH) is required")
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
