"""Every command line of README.md's Quick start and Commands sections, run as a user types it (tests/integration/readme.py).

Servers are started with their README command on their default ports (which
must be free: on a developer machine with a server already running, this
test says which port to free), probed until they accept connections, used by
the README's client lines (``--duration`` shortened), and stopped by their
process group. Commands that cannot run here are listed with the reason in
``readme.NOT_RUN``; the first test fails on any README line in neither list.
The slow ones (a RabbitMQ with the bots, a DHT cluster) run in
tests/faults/test_readme_slow_commands.py (``make test-faults``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration import readme
from tests.integration.readme import NOT_RUN, ROOT, RUN


def test_every_readme_command_is_run_or_listed_with_a_reason():
    found = readme.commands()
    assert "make demo" in found and "make turbo-server" in found  # the parser reads the README's blocks
    unplanned = [c for c in found if c not in RUN and c not in NOT_RUN]
    assert not unplanned, f"README commands neither run nor listed in tests/integration/readme.py: {unplanned}"
    stale = [c for c in [*RUN, *NOT_RUN] if c not in found]
    assert not stale, f"tests/integration/readme.py names commands the README no longer has: {stale}"
    assert not set(RUN) & set(NOT_RUN)
    assert all(reason.strip() for reason in NOT_RUN.values())
    for run in RUN.values():
        assert all(client in RUN for client in run.clients)


def test_the_parser_splits_alternatives_and_drops_comments(tmp_path):
    text = (
        "# x\n\n## Quick start\n\n```bash\nmake a   # first\n```\n\n## Commands\n\n```bash\n"
        "make b / make c   # two\nmake d / e / f\n                 # a continuation\n"
        'make g ARGS="--x 1"  # with ARGS\n```\n\n## Later\n\n```bash\nmake h\n```\n'
    )
    path = tmp_path / "README.md"
    path.write_text(text)
    assert readme.commands(path) == ["make a", "make b", "make c", "make d", "make e", "make f", 'make g ARGS="--x 1"']
    assert readme.shortened('make g ARGS="--x 1"', "--duration 2s") == 'make g ARGS="--x 1 --duration 2s"'
    assert readme.shortened("make h", "--duration 2s") == 'make h ARGS="--duration 2s"'
    assert readme.shortened(".venv/bin/x --y", "--duration 2s") == ".venv/bin/x --y --duration 2s"


@pytest.mark.slow
@pytest.mark.parametrize("command", readme.top_level(slow=False))
def test_readme_command_works_as_written(command: str, tmp_path: Path) -> None:
    readme.run_command(command, tmp_path)


def test_clean_state_in_a_temporary_copy(tmp_path: Path) -> None:
    """``make clean-state`` removes var/ and data/ (run in a copy: this checkout's state stays)."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    for folder in ("var", "data"):
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "sub" / "state.journal").write_bytes(b"x" * 1000)
    done = subprocess.run(["make", "clean-state"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "var").exists() and not (tmp_path / "data").exists()
    assert "removing var/" in done.stdout
