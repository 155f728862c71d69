"""Compile the engine's and the codec's hot modules with mypyc, in place.

The compiled modules (``*.so`` beside their sources) shadow the ``.py`` files on import;
the sources stay the single truth and are what the type checker and the
import-linter contract read. ``make`` rebuilds whenever a source is newer
than the build stamp; ``make clean-native`` returns to the interpreted engine.

If compilation fails the interpreted engine still works (about half as fast);
under ``CI=true`` a failure is an error, so CI always tests what ships.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Enum modules stay interpreted: mypyc mishandles IntEnum members in tuples.
MODULES = [
    "engine/record.py",
    "engine/instruments.py",
    "engine/risk.py",
    "engine/commands.py",
    "engine/events.py",
    "engine/queries.py",
    "engine/book.py",
    "engine/engine.py",
    # The codec runs once per command and per event on every wire (proto_codec: about 20% faster compiled).
    "transports/codec/decimals.py",
    "transports/codec/json_codec.py",
    "transports/codec/compact.py",
    "transports/codec/proto_codec.py",
    # The lean path: columnar order batches and outcomes, the gateway's per-command loop, the harness's order flow.
    "transports/codec/lean.py",
    # Limit checks on every request's bytes (count and id scans): a Python loop per field, 20 ms on a refused flood.
    "transports/codec/wire_count.py",
    "transports/core/apply.py",
    "transports/core/workload.py",
]
NATIVE_DIRS = ["engine", "transports/codec", "transports/core", "traders"]


def clean() -> None:
    for folder in NATIVE_DIRS:
        for path in (ROOT / folder).glob("*.so"):
            path.unlink()
    for path in ROOT.glob("*__mypyc*.so"):
        path.unlink()
    shutil.rmtree(ROOT / "build" / "mypyc", ignore_errors=True)


def main() -> int:
    if "--clean" in sys.argv:
        clean()
        return 0
    clean()
    sources = MODULES
    env = dict(os.environ, MYPYC_OPT_LEVEL="3")
    cmd = [sys.executable, "-m", "mypyc", *sources]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        clean()
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        if os.environ.get("CI") == "true":
            sys.stderr.write("mypyc build failed (CI=true: this is an error)\n")
            return 1
        sys.stderr.write("warning: mypyc build failed; the engine runs interpreted\n")
        return 0
    # mypyc leaves its build tree in ./build; keep it out of the way. The dot files are make's stamps
    # (protobuf code, system and npm packages): they stay, or make would redo those steps.
    build = ROOT / "build"
    target = build / "mypyc"
    target.mkdir(parents=True, exist_ok=True)
    for item in list(build.iterdir()):
        if item.name != "mypyc" and not item.name.startswith("."):
            shutil.move(str(item), target / item.name)
    compiled = [p for folder in NATIVE_DIRS for p in (ROOT / folder).glob("*.so")]
    print(f"compiled {len(compiled)} modules with mypyc (engine and codec)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
