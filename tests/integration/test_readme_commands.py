"""Every command line of README.md's Quick start and Commands sections, run as a user types it (tests/integration/readme.py).

Servers are started with their README command on their default ports (which
must be free: on a developer machine with a server already running, this
test says which port to free), probed until they accept connections, used by
the README's client lines (``--duration`` shortened), and stopped by their
process group. Commands that cannot run here are listed with the reason in
``readme.NOT_RUN``; the first test fails on any README line in neither list.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration import readme
from tests.integration.readme import NOT_RUN, ROOT, RUN, Run


def _clients() -> set[str]:
    return {client for run in RUN.values() for client in run.clients}


def _top_level(slow: bool) -> list[str]:
    """README commands a test runs directly (clients run inside their server's test)."""
    clients = _clients()
    return [c for c, run in RUN.items() if c not in clients and run.slow == slow]


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


def run_command(command: str, tmp_path: Path) -> None:
    """Run one README command as its ``Run`` says; assert what a user would see."""
    run = RUN[command]
    if run.kind == "server":
        _run_server(command, run, tmp_path)
        return
    typed = readme.shortened(command, run.shorten)
    done = readme.run_once(typed, run.timeout_s)
    assert done.returncode == 0, f"{typed!r} exited {done.returncode}:\n{done.stdout[-4000:]}"
    if run.expect:
        assert run.expect in done.stdout, f"{typed!r}: no {run.expect!r} in its output:\n{done.stdout[-4000:]}"


def _run_server(command: str, run: Run, tmp_path: Path) -> None:
    busy = [p for p in run.ports if not readme.port_free(p)]
    if busy:
        pytest.fail(
            f"{command!r} serves on 127.0.0.1 port(s) {busy}, which another process holds: the README's commands use "
            "their default ports, so stop that process (or run this test on a quiet machine, as CI does)"
        )
    log = tmp_path / "server.log"
    server = readme.start_server(command, log)
    try:
        deadline = time.monotonic() + run.timeout_s
        while not readme.ports_ready(run.ports):
            if server.poll() is not None:
                pytest.fail(f"{command!r} exited {server.returncode} before serving:\n{log.read_text(errors='replace')[-4000:]}")
            if time.monotonic() > deadline:
                output = log.read_text(errors="replace")[-4000:]
                pytest.fail(f"{command!r} did not serve {run.ports} within {run.timeout_s:.0f} s:\n{output}")
            time.sleep(0.2)
        for client in run.clients:
            run_command(client, tmp_path)
        assert server.poll() is None, f"{command!r} stopped by itself:\n{log.read_text(errors='replace')[-4000:]}"
    finally:
        readme.stop_group(server)
    assert all(readme.port_free(p) for p in run.ports), f"{command!r} left a process on {run.ports}"


@pytest.mark.parametrize("command", _top_level(slow=False))
def test_readme_command_works_as_written(command: str, tmp_path: Path) -> None:
    run_command(command, tmp_path)


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
