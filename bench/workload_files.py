"""Workloads as files: what one ``dex-bench`` run measures, read from YAML (``bench/workloads/*.yaml``).

The shape follows the OpenMessaging Benchmark's workload files (one file per
run description, plain keys, a driver per platform), with our own modes: an
order is matched, not merely delivered, and every run is reconciled with the
server's counters.

A file is either one **workload** (it has ``mode``) or a **suite** (it has
``suite``: a list of workload files, relative to the suite's folder, run in
that order). ``make bench`` runs ``bench/workloads/default.yaml``, a suite;
``make bench WORKLOAD=path.yaml`` runs any file, a user's own included.

Invariants:

* Every key is known and typed: a misspelt key, a wrong type or an unknown
  transport is refused with ``WorkloadError`` naming the file and the key,
  before anything starts (a benchmark that silently ignores a setting
  measures something else than its reader thinks).
* Defaults live here, once, in ``Workload``'s fields; the docs
  (``docs/benchmarks.md``) list the same keys.
* Rates and counts are integers or plain numbers; nothing about prices
  (the harness draws prices from its seeded workload).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from transports.registry import TRANSPORTS

WORKLOADS_DIR: Final = Path(__file__).resolve().parent / "workloads"
DEFAULT_SUITE: Final = WORKLOADS_DIR / "default.yaml"

# closed: as fast as replies come back; fixed: open loop at `rate` orders/s in total.
ORDER_PATH_MODES: Final = ("closed", "fixed")
MODES: Final = (*ORDER_PATH_MODES, "rate-search", "fanout", "burst", "recovery")
DURABILITY: Final = ("fsync", "off")
AUTH: Final = ("off", "keys")
KEY_SCHEMES: Final = ("ed25519", "hmac")  # transports.core.keys.SCHEMES: the development keys' scheme (auth: keys only)
# The keyring of authenticated runs: servers read it, the harness creates its traders' development keys in it.
BENCH_KEYS: Final = str(Path(__file__).resolve().parents[1] / "build" / "bench-keys")
# Transports whose keyed broker users need an Ed25519 key: an HMAC key has none (a NATS user is an NKEY).
NO_HMAC: Final = {"nats": "a NATS user is an NKEY, an Ed25519 key: an HMAC key has no user on the broker"}
DEPLOYMENTS: Final = ("single", "nats-auto", "dht")
INPROC: Final = "inproc"
QUICK_RATES: Final = (500.0, 1000.0, 2000.0)  # a rate search's ladder in a smoke run
QUICK_JOURNAL_BYTES: Final = 8 << 20


class WorkloadError(ValueError):
    """A workload or suite file that cannot be run as written; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Workload:
    """One run description. Field names are the file's keys."""

    name: str
    mode: str
    description: str = ""
    transports: tuple[str, ...] = ()  # empty: every registered transport
    durability: str = "fsync"  # fsync: every reply waits for its journal fsync (the servers' default); off: --fsync off
    auth: str = "off"  # keys: the server runs --auth keys and every trader proves an API key (docs/security.md)
    key_scheme: str = "ed25519"  # with auth keys: the traders' development keys, Ed25519 or HMAC-SHA256 (dex-trader --key-scheme)
    batch: int = 1  # orders per submit
    traders: int = 1  # concurrent traders (the harness's --workers)
    procs: int = 1  # harness processes, each running `traders` traders
    symbols: tuple[str, ...] = ()  # empty: every symbol the server lists
    rate: float = 0.0  # orders/s offered in total (fixed, fanout, burst's normal rate when no rate search ran)
    duration_s: float = 3.0
    warmup_s: float = 1.0
    repeats: int = 3
    seed: int = 42
    # rate-search
    rates: tuple[float, ...] = ()  # the ladder of offered rates; empty: the search's own geometric ladder
    bounds_ms: tuple[float, ...] = (5.0, 50.0)
    # fanout
    subscribers: tuple[int, ...] = (1, 10, 100, 1000)
    pause_s: float = 5.0  # the slow consumer's pause
    # burst
    factor: float = 10.0
    burst_s: float = 2.0
    after_s: float = 4.0
    # recovery
    deployments: tuple[str, ...] = DEPLOYMENTS
    kills: int = 5
    journal_bytes: int = 1 << 30
    source: str = field(default="", compare=False)  # the file it came from

    def targets(self, registered: Sequence[str] = tuple(TRANSPORTS)) -> tuple[str, ...]:
        """The transports it runs on; order-path modes also run in process (the ceiling they are measured against)."""
        names = self.transports or tuple(registered)
        if self.mode in ORDER_PATH_MODES and INPROC not in names:
            names = (INPROC, *names)
        return names

    def harness_args(self) -> list[str]:
        """``dex-trader`` arguments of an order-path workload (closed or fixed)."""
        rate = 0.0 if self.mode == "closed" else self.rate
        args = ["--duration", f"{self.duration_s:g}s", "--warmup", f"{self.warmup_s:g}s", "--seed", str(self.seed)]
        args += ["--batch", str(self.batch), "--workers", str(self.traders), "--rate", f"{rate:g}"]
        if self.procs > 1:
            args += ["--procs", str(self.procs)]
        if self.auth == "keys":
            args += ["--keys", BENCH_KEYS, "--key-scheme", self.key_scheme, "--run-id", self.auth_run_id]
        if self.symbols:
            args += ["--symbols", ",".join(self.symbols)]
        return args

    @property
    def auth_run_id(self) -> str:
        """The run id of an authenticated workload's traders: its name, so their keys are known before a broker starts.

        A broker's users (NATS, RabbitMQ) are written from the keyring when it starts, so the bench creates the
        keys of ``auth_traders`` first; a fixed run id keeps them the same in every repeat and every run (no key
        piles up in the keyring), and every point has a fresh server, so no client order id is ever seen twice.
        """
        return "".join(c if c.isascii() and (c.isalnum() or c in "_.") else "_" for c in self.name)

    def auth_traders(self) -> list[str]:
        """Every trader an authenticated order-path workload's ``dex-trader`` acts as (its keys must exist first)."""
        from traders.harness.config import HarnessConfig
        from traders.harness.keys import traders_of

        return traders_of(HarnessConfig(transport="http", workers=self.traders, procs=self.procs, run_id=self.auth_run_id))

    def server_args(self) -> tuple[str, ...]:
        durability = ("--fsync", "off") if self.durability == "off" else ()
        return (*durability, "--auth", "keys", "--keys", BENCH_KEYS) if self.auth == "keys" else durability

    def scaled(self, *, duration_s: float | None = None, warmup_s: float | None = None, repeats: int | None = None) -> Workload:
        """The same workload with shorter points or fewer repeats (``--quick``, ``--duration``, ``--repeat``)."""
        changes: dict[str, Any] = {}
        if duration_s is not None:
            changes["duration_s"] = duration_s
        if warmup_s is not None:
            changes["warmup_s"] = warmup_s
        if repeats is not None:
            changes["repeats"] = repeats
        return dataclasses.replace(self, **changes)

    def quick(self) -> Workload:
        """A smoke version that still runs every part of its mode (``dex-bench --quick``, which ``make test`` runs)."""
        return dataclasses.replace(
            self,
            duration_s=min(self.duration_s, 1.0),
            warmup_s=min(self.warmup_s, 0.3),
            repeats=1,
            rates=self.rates[:3] or QUICK_RATES,
            subscribers=tuple(n for n in self.subscribers if n <= 10) or (1,),
            pause_s=min(self.pause_s, 1.0),
            burst_s=min(self.burst_s, 1.0),
            after_s=min(self.after_s, 1.0),
            kills=1,
            journal_bytes=min(self.journal_bytes, QUICK_JOURNAL_BYTES),
        )


_FIELDS: Final = {f.name: f for f in dataclasses.fields(Workload) if f.name != "source"}
_TUPLE_ITEM: Final = {"transports": str, "symbols": str, "rates": float, "bounds_ms": float, "subscribers": int, "deployments": str}
_POSITIVE: Final = ("batch", "traders", "procs", "duration_s", "repeats", "factor", "burst_s", "kills", "journal_bytes")


def _typed(key: str, value: Any, where: str) -> Any:
    """``value`` as the type of field ``key``, or ``WorkloadError``."""
    if key in _TUPLE_ITEM:
        if key == "transports" and value == "all":
            return ()
        items = value if isinstance(value, list) else [value]
        kind = _TUPLE_ITEM[key]
        if not all(isinstance(v, kind) or (kind is float and isinstance(v, int) and not isinstance(v, bool)) for v in items):
            raise WorkloadError(f"{where}: {key} must be a list of {kind.__name__}, got {value!r}")
        return tuple(kind(v) for v in items)
    if key in ("durability", "auth") and value is False:  # YAML 1.1 reads a bare `off` as false: it means "off"
        return "off"
    default = _FIELDS[key].default
    if default is dataclasses.MISSING:  # name and mode: required strings
        default = ""
    if isinstance(default, bool) or isinstance(value, bool):
        raise WorkloadError(f"{where}: {key} cannot be {value!r}")
    if isinstance(default, float) and isinstance(value, int | float):
        return float(value)
    if isinstance(default, int) and isinstance(value, int):
        return value
    if isinstance(default, str) and isinstance(value, str):
        return value
    raise WorkloadError(f"{where}: {key} must be {type(default).__name__}, got {value!r}")


def _check(w: Workload, where: str, registered: Sequence[str]) -> None:
    if w.mode not in MODES:
        raise WorkloadError(f"{where}: mode must be one of {', '.join(MODES)}, got {w.mode!r}")
    if w.auth not in AUTH:
        raise WorkloadError(f"{where}: auth must be one of {', '.join(AUTH)}, got {w.auth!r}")
    if w.key_scheme not in KEY_SCHEMES:
        raise WorkloadError(f"{where}: key_scheme must be one of {', '.join(KEY_SCHEMES)}, got {w.key_scheme!r}")
    cannot = [t for t in (w.transports or registered) if t in NO_HMAC] if w.key_scheme == "hmac" else []
    if cannot:
        reasons = "; ".join(f"{t}: {NO_HMAC[t]}" for t in cannot)
        raise WorkloadError(f"{where}: key_scheme hmac cannot run on {', '.join(cannot)} ({reasons}); list the transports")
    if w.durability not in DURABILITY:
        raise WorkloadError(f"{where}: durability must be one of {', '.join(DURABILITY)}, got {w.durability!r}")
    unknown = [t for t in w.transports if t not in registered and t != INPROC]
    if unknown:
        raise WorkloadError(f"{where}: unknown transport(s) {', '.join(unknown)}; registered: {', '.join(registered)}")
    for key in _POSITIVE:
        if getattr(w, key) <= 0:
            raise WorkloadError(f"{where}: {key} must be positive, got {getattr(w, key)!r}")
    if w.warmup_s < 0 or w.rate < 0 or w.pause_s < 0 or w.after_s < 0:
        raise WorkloadError(f"{where}: warmup_s, rate, pause_s and after_s cannot be negative")
    if w.mode == "fixed" and w.rate <= 0:
        raise WorkloadError(f"{where}: a fixed-rate workload needs rate > 0 (orders/s in total)")
    if any(n < 1 for n in w.subscribers) or any(r <= 0 for r in w.rates) or any(b <= 0 for b in w.bounds_ms):
        raise WorkloadError(f"{where}: subscribers, rates and bounds_ms must be positive")
    bad = [d for d in w.deployments if d not in DEPLOYMENTS]
    if bad:
        raise WorkloadError(f"{where}: unknown deployment(s) {', '.join(bad)}; known: {', '.join(DEPLOYMENTS)}")


def workload_from(data: Mapping[str, Any], where: str, registered: Sequence[str] = tuple(TRANSPORTS)) -> Workload:
    """A checked ``Workload`` from one parsed mapping (``where`` names it in errors)."""
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise WorkloadError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    for key in ("name", "mode"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise WorkloadError(f"{where}: {key} is required (a non-empty string)")
    values = {key: _typed(key, value, where) for key, value in data.items()}
    if "key_scheme" in values and values.get("auth") != "keys":
        raise WorkloadError(f"{where}: key_scheme is the scheme of the traders' API keys: it needs auth: keys")
    workload = Workload(**values, source=where)
    _check(workload, where, registered)
    return workload


def _read(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise WorkloadError(f"{path}: a workload file is a mapping of keys (see docs/benchmarks.md)")
    return data


def load(path: Path, registered: Sequence[str] = tuple(TRANSPORTS)) -> list[Workload]:
    """The workloads ``path`` describes, in run order: itself, or every file its ``suite`` lists."""
    data = _read(path)
    if "suite" not in data:
        return [workload_from(data, str(path), registered)]
    if set(data) - {"suite", "description"} or not isinstance(data["suite"], list) or not data["suite"]:
        raise WorkloadError(f"{path}: a suite has only `suite` (a non-empty list of workload files) and `description`")
    workloads = []
    for entry in data["suite"]:
        if not isinstance(entry, str):
            raise WorkloadError(f"{path}: suite entries are file names, got {entry!r}")
        member = (path.parent / entry).resolve()
        member_data = _read(member)
        if "suite" in member_data:
            raise WorkloadError(f"{member}: a suite cannot list another suite")
        workloads.append(workload_from(member_data, str(member), registered))
    names = [w.name for w in workloads]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise WorkloadError(f"{path}: workload names must be unique in a suite; repeated: {', '.join(repeated)}")
    return workloads
