"""Compile the engine's hot modules with mypyc, in place.

The compiled modules (``engine/*.so``) shadow their ``.py`` sources on import;
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
MODULES = ["record", "instruments", "risk", "commands", "events", "queries", "book", "engine"]


def clean() -> None:
    for path in (ROOT / "engine").glob("*.so"):
        path.unlink()
    for path in ROOT.glob("*__mypyc*.so"):
        path.unlink()
    shutil.rmtree(ROOT / "build" / "mypyc", ignore_errors=True)


def main() -> int:
    if "--clean" in sys.argv:
        clean()
        return 0
    clean()
    sources = [f"engine/{name}.py" for name in MODULES]
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
    # mypyc leaves its build tree in ./build; keep it out of the way.
    build = ROOT / "build"
    target = build / "mypyc"
    target.mkdir(parents=True, exist_ok=True)
    for item in list(build.iterdir()):
        if item.name not in {"mypyc", ".native-stamp"}:
            shutil.move(str(item), target / item.name)
    compiled = sorted(p.name for p in (ROOT / "engine").glob("*.so"))
    print(f"compiled {len(compiled)} engine modules with mypyc")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
