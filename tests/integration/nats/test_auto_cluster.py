"""``make auto-cluster`` / ``scripts/auto-cluster.sh`` as a user runs it: it ends by itself after DURATION, a
Ctrl-C (SIGINT to the whole terminal group) ends it with a summary and an audit, never a traceback, and
no ``dex-auto-cluster-*`` folder is left in the temporary directory. Real nats-server and nats-auto processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "auto-cluster.sh"


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp)}  # a temp directory of the test's own: what is left there is ours


def _check(out: str, tmp: Path) -> None:
    assert "Traceback" not in out, out[-3000:]
    assert "auto-cluster summary: 2 nodes for" in out and "traders sent" in out, out[-3000:]
    assert "auto-cluster summary: audit ok:" in out, out[-3000:]
    assert not list(tmp.glob("dex-auto-cluster-*")), "the folder of logs and NATS data was left behind"


def test_it_ends_by_itself_after_the_duration_and_leaves_nothing_behind(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [str(SCRIPT), "2", "--duration", "4", "--lease-ttl", "3"],
        check=False, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert time.monotonic() - started < 60
    assert "[node1] " in out and "Leader: " in out
    _check(out, tmp_path)


def test_ctrl_c_stops_it_cleanly_with_a_summary(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    process = subprocess.Popen(
        [str(SCRIPT), "2", "--duration", "0", "--lease-ttl", "3"],
        cwd=ROOT, env=_env(tmp_path), stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "is the leader" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline and process.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group gets it
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    _check(log.read_text(errors="replace"), tmp_path)


def test_make_auto_cluster_passes_duration() -> None:
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "auto-cluster", "N=3", "DURATION=7"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert "scripts/auto-cluster.sh 3 --duration 7" in dry.stdout, dry.stdout[-2000:] + dry.stderr[-2000:]


def test_a_lone_nats_auto_with_a_duration_says_no_second_node_joined_and_ends(tmp_path: Path) -> None:
    nats_auto = Path(sys.executable).with_name("nats-auto")
    started = time.monotonic()
    done = subprocess.run(
        [str(nats_auto), "--duration", "3s", "--beacon-dir", str(tmp_path / "beacons"), "--data-dir", str(tmp_path / "data")],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]  # it waited for a second node and traded nothing: not a success
    assert "no second node joined within --duration 3s: nothing was traded" in out and "Traceback" not in out
    assert time.monotonic() - started < 60  # bounded by --duration (checked between JetStream's 5 s probes)
