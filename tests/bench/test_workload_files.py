"""Workload files (``bench/workload_files.py``): what ``make bench`` and a user's own file describe.

Every shipped file loads; a file written wrongly is refused before anything
runs, naming the file and the key; and the worked example in
``docs/benchmarks.md`` runs as written through ``make bench WORKLOAD=...``.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from bench.workload_files import BENCH_KEYS, DEFAULT_SUITE, MODES, WORKLOADS_DIR, Workload, WorkloadError, load

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"


def _write(tmp_path: Path, text: str, name: str = "w.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_suite_covers_every_mode_and_every_shipped_file_loads() -> None:
    suite = load(DEFAULT_SUITE)
    assert {w.mode for w in suite} == set(MODES) - {"fixed"}  # the rate search's 1,000/s rung stands for it
    shipped = [w for path in sorted(WORKLOADS_DIR.glob("*.yaml")) for w in load(path)]
    assert {w.mode for w in shipped} == set(MODES)
    names = [w.name for w in suite]
    assert names.index("single") < names.index("batch")  # the latency mode before the book grows
    for path in sorted(WORKLOADS_DIR.glob("*.yaml")):
        assert load(path), path


def test_order_path_workloads_become_harness_and_server_arguments(tmp_path: Path) -> None:
    by_name = {w.name: w for w in load(DEFAULT_SUITE) + load(WORKLOADS_DIR / "order-path.yaml")}
    rate = by_name["rate"].harness_args()
    assert rate[rate.index("--rate") + 1] == "1000" and rate[rate.index("--workers") + 1] == "16"
    batch = by_name["batch"].harness_args()
    assert batch[batch.index("--rate") + 1] == "0" and batch[batch.index("--batch") + 1] == "1000"
    assert by_name["batch_fsync_off"].server_args() == ("--fsync", "off") and by_name["batch"].server_args() == ()
    (bare,) = load(_write(tmp_path, "name: x\nmode: closed\ndurability: off\n"))  # YAML reads a bare off as false
    assert bare.server_args() == ("--fsync", "off")
    assert by_name["batch"].targets()[0] == "inproc"  # the ceiling runs beside every order-path workload


def test_an_authenticated_workload_proves_keys_of_its_scheme_as_traders_known_in_advance() -> None:
    by_name = {w.name: w for w in load(WORKLOADS_DIR / "auth.yaml")}
    assert "single_auth_hmac" not in {w.name for w in load(DEFAULT_SUITE)}  # the auth suite only (the default's 30 minutes)
    for name, scheme in (("batch_auth", "ed25519"), ("batch_auth_hmac", "hmac")):
        args = by_name[name].harness_args()
        assert args[args.index("--key-scheme") + 1] == scheme and args[args.index("--run-id") + 1] == name
        assert by_name[name].server_args() == ("--auth", "keys", "--keys", BENCH_KEYS)
    assert {"nats", "amqp"} <= set(by_name["single_auth"].targets()) and "nats" not in by_name["single_auth_hmac"].targets()
    # the traders whose keys the bench creates before a broker writes its users: the same names the harness uses
    assert by_name["batch_auth"].auth_traders() == [*(f"trader-batch_auth-0-{i}" for i in range(4)), "trader-control", "trader-watchdog-0"]
    assert "--key-scheme" not in by_name["batch"].harness_args()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("name: x\nmode: closed\nbatchsize: 10\n", "unknown key(s) batchsize"),
        ("name: x\nmode: closed\nbatch: ten\n", "batch must be int"),
        ("name: x\nmode: sprint\n", "mode must be one of"),
        ("name: x\nmode: closed\ntransports: [zmq, smoke-signals]\n", "unknown transport(s) smoke-signals"),
        ("name: x\nmode: fixed\n", "needs rate > 0"),
        ("name: x\nmode: closed\ndurability: true\n", "durability cannot be True"),
        ("name: x\nmode: closed\ndurability: never\n", "durability must be one of fsync, off"),
        ("name: x\nmode: closed\nrepeats: 0\n", "repeats must be positive"),
        ("mode: closed\n", "name is required"),
        ("name: x\nmode: recovery\ndeployments: [single, mainframe]\n", "unknown deployment(s) mainframe"),
        ("- just\n- a list\n", "a mapping of keys"),
        ("name: x\nmode: closed\nbatch: [\n", "not valid YAML"),
        ("name: x\nmode: closed\nkey_scheme: hmac\n", "key_scheme is the scheme of the traders' API keys: it needs auth: keys"),
        ("name: x\nmode: closed\nauth: keys\nkey_scheme: rsa\n", "key_scheme must be one of ed25519, hmac"),
        ("name: x\nmode: closed\nauth: keys\nkey_scheme: hmac\n", "key_scheme hmac cannot run on nats"),  # all: nats too
    ],
)
def test_a_wrong_file_is_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, complaint: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(WorkloadError) as refused:
        load(path)
    assert str(path) in str(refused.value) and complaint in str(refused.value)


def test_a_suite_lists_files_relative_to_itself_and_refuses_repeated_names(tmp_path: Path) -> None:
    _write(tmp_path, "name: a\nmode: closed\nbatch: 5\n", "a.yaml")
    assert [w.batch for w in load(_write(tmp_path, "suite: [a.yaml]\n", "s.yaml"))] == [5]
    with pytest.raises(WorkloadError, match="repeated: a"):
        load(_write(tmp_path, "suite: [a.yaml, a.yaml]\n", "twice.yaml"))
    with pytest.raises(WorkloadError, match="cannot list another suite"):
        load(_write(tmp_path, "suite: [s.yaml]\n", "nested.yaml"))
    with pytest.raises(WorkloadError, match="cannot read"):
        load(_write(tmp_path, "suite: [missing.yaml]\n", "broken.yaml"))


def test_quick_keeps_every_part_of_a_mode_but_shortens_it() -> None:
    by_name = {w.name: w.quick() for w in load(DEFAULT_SUITE)}
    assert by_name["fanout"].subscribers == (1, 10) and by_name["fanout"].repeats == 1
    assert by_name["recovery"].kills == 1 and by_name["recovery"].journal_bytes < by_name["recovery"].journal_bytes * 2
    assert by_name["rate_search"].rates and by_name["batch"].duration_s <= 1.0


def _doc_example() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## A worked example") :]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "docs/benchmarks.md lost its worked example"
    return match.group(1)


def test_the_documented_example_loads_as_described(tmp_path: Path) -> None:
    (workload,) = load(_write(tmp_path, _doc_example(), "my-workload.yaml"))
    assert isinstance(workload, Workload)
    assert (workload.mode, workload.transports, workload.batch, workload.traders) == ("closed", ("zmq", "grpc"), 50, 8)
    assert workload.server_args() == ("--fsync", "off") and workload.symbols == ("BTC-USD", "ETH-USD")


@pytest.mark.slow
def test_the_documented_example_runs_through_make_bench(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc_example(), "my-workload.yaml")
    done = subprocess.run(
        ["make", "-s", "bench", f"WORKLOAD={path}", f"ARGS=--quick --out-dir {tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "workload-my-workload.json").read_text())
    assert report["transports"] == ["inproc", "zmq", "grpc"]
    for name in report["transports"]:
        point = report["summary"][name]["baskets"]
        assert point["runs"] == 1 and point["all_reconciled"] and point["throughput_per_s"]["median"] > 0, (name, point)
    md = (tmp_path / "workload-my-workload.md").read_text()
    assert "## Which transport for what" in md and "| zmq |" in md and "baskets" in md
