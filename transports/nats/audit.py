"""Audit of the durable path: read both streams back and check the guarantees users rely on.

``audit(js, instruments)`` reads DEX_ORDERS and DEX_RESULTS in full and checks:

* results: exactly one per input, result N carrying ``Dex-Input-Seq: N``;
* no duplicate ``Nats-Msg-Id`` stored in the input stream (resends de-duplicated);
* no order filled beyond its accepted quantity (summing engine trades by order id);
* the state hash of a fresh replay of the input stream (what every replica must equal).

Used by the fault tests, the benchmark and ``python -m transports.nats.audit URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext

from engine import Instrument, OrderAccepted, TradeExecuted
from transports.codec.proto_codec import decode_replies, pb
from transports.instruments import select_instruments
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.replica import replay
from transports.nats.settings import INPUT_SEQ_HEADER, LEADER_HEADER, MSG_ID_HEADER, ORDERS_STREAM, RESULTS_STREAM


@dataclass(slots=True)
class StoredMsg:
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]


@dataclass
class AuditReport:
    inputs: int = 0
    results: int = 0
    problems: list[str] = field(default_factory=list)
    replay_hash: str = ""
    leaders: list[str] = field(default_factory=list)  # the writer of each result, in order
    accepted: int = 0
    trades: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


async def read_stream(js: JetStreamContext, stream: str, timeout: float = 60.0) -> list[StoredMsg]:
    """Every message of ``stream`` up to its last sequence now, in order (an ordered consumer)."""
    last = (await js.stream_info(stream)).state.last_seq
    out: list[StoredMsg] = []
    if last == 0:
        return out
    done = asyncio.Event()

    async def take(msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if out and seq <= out[-1].seq:
            return
        out.append(StoredMsg(seq, msg.subject, msg.data, dict(msg.headers or {})))
        if seq >= last:
            done.set()

    info = await js.stream_info(stream)
    subject = info.config.subjects[0] if info.config.subjects else ">"
    sub = await js.subscribe(
        subject,
        stream=stream,
        cb=take,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        pending_msgs_limit=10_000_000,
        pending_bytes_limit=4 * 1024**3,
    )
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await sub.unsubscribe()
    return out


def check(instruments: Iterable[Instrument], inputs: Sequence[StoredMsg], results: Sequence[StoredMsg]) -> AuditReport:
    instruments = list(instruments)
    report = AuditReport(inputs=len(inputs), results=len(results))
    # one result per input, in order
    for i, result in enumerate(results):
        expected = i + 1
        if result.seq != expected or int(result.headers.get(INPUT_SEQ_HEADER, "0")) != result.seq:
            report.problems.append(f"result at stream seq {result.seq} names input {result.headers.get(INPUT_SEQ_HEADER)}")
            break
        report.leaders.append(result.headers.get(LEADER_HEADER, ""))
    if len(results) > len(inputs):
        report.problems.append(f"{len(results)} results for {len(inputs)} inputs")
    ids = Counter(m.headers.get(MSG_ID_HEADER, "") for m in inputs)
    doubled = [k for k, n in ids.items() if k and n > 1]
    if doubled:
        report.problems.append(f"{len(doubled)} message ids stored twice, e.g. {doubled[:3]}")
    # quantities: no order filled beyond what was accepted
    lookup = {i.symbol: i for i in instruments}.get
    accepted_qty: dict[int, int] = {}
    filled: Counter[int] = Counter()
    for result in results:
        try:
            replies = decode_replies(pb.ReplyBatch.FromString(result.data), lookup)
        except Exception:  # a refused input: no events
            continue
        for events in replies:
            for event in events:
                if isinstance(event, OrderAccepted):
                    accepted_qty[event.order_id] = event.qty
                    report.accepted += 1
                elif isinstance(event, TradeExecuted):
                    report.trades += 1
                    filled[event.maker_order_id] += event.qty
                    filled[event.taker_order_id] += event.qty
    over = [oid for oid, qty in filled.items() if oid in accepted_qty and qty > accepted_qty[oid]]
    if over:
        report.problems.append(f"{len(over)} orders filled beyond their quantity, e.g. {over[:3]}")
    replica = replay(instruments, ((m.seq, m.data, m.headers) for m in inputs))
    report.replay_hash = replica.state_hash()
    return report


async def audit(js: JetStreamContext, instruments: Iterable[Instrument]) -> tuple[AuditReport, list[StoredMsg], list[StoredMsg]]:
    inputs = await read_stream(js, ORDERS_STREAM)
    results = await read_stream(js, RESULTS_STREAM)
    return check(instruments, inputs, results), inputs, results


async def _main(url: str, symbols: str) -> int:
    nc = await connect(url, "dex-nats audit", ConnectionErrors())
    try:
        report, _, _ = await audit(nc.jetstream(), select_instruments(symbols))
    finally:
        await nc.close()
    summary: dict[str, Any] = {
        "inputs": report.inputs,
        "results": report.results,
        "accepted": report.accepted,
        "trades": report.trades,
        "replay_state_hash": report.replay_hash,
        "problems": report.problems,
    }
    print(json.dumps(summary, indent=2))
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transports.nats.audit", description="Check the durable order path's streams.")
    parser.add_argument("url", nargs="?", default="nats://127.0.0.1:4222")
    parser.add_argument("--symbols", default="")
    args = parser.parse_args(argv)
    return asyncio.run(_main(args.url, args.symbols))


if __name__ == "__main__":
    raise SystemExit(main())
