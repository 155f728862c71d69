"""Interop with an independent FIX engine: jspurefix (Node) as the initiator against a real dex-fix process.

jspurefix 5.11.4 is installed by ``make setup`` (npm ci in tests/fix/interop). A
missing node or package is a failure, never a skip. The scenario:

1. our own ``FixClient`` rests a sell; jspurefix logs on (ResetSeqNumFlag=Y),
   buys against it (New, then a Trade report with the fill), places a sell
   that rests, replaces it, cancels it, logs out;
2. the server process is stopped (SIGTERM) and started again on the same state
   directory: the book and both sides' sequence numbers survive;
3. jspurefix logs on again without a reset, its file store seeded three numbers
   ahead of what the server expects and three behind what the server sent: each
   side sees a gap, asks the other with a ResendRequest and is answered with a
   SequenceReset-GapFill; the session goes on, jspurefix places an order and
   logs out.

And with ``--auth keys``: jspurefix signs its Logon itself (Node's crypto, the
fields of docs/security.md "FIX") with a key ``dex-keys`` made, and trades; the
same initiator with a key the exchange never issued is not let in.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

from engine import PlaceOrder, Side
from transports.core.keys import create_key
from transports.fix.client import FixClient
from transports.fix.local import LocalFixServer
from transports.fix.store import SequenceStore

INTEROP = Path(__file__).parent / "interop"


def _run_initiator(phase: str, port: int, store: Path, *extra: str, expect_rc: int = 0) -> list[tuple[str, dict[str, str]]]:
    node = shutil.which("node")
    assert node, "node (v20) is needed for the FIX interop test"
    assert (INTEROP / "node_modules" / "jspurefix").is_dir(), "jspurefix missing: run `make setup` (npm ci in tests/fix/interop)"
    done = subprocess.run(
        [node, str(INTEROP / "initiator.js"), phase, str(port), "jsbuyer", str(store), *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == expect_rc, done.stdout[-3000:] + done.stderr[-2000:]
    lines = []
    for line in done.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind in ("MSG", "SESSION", "SENT"):
            lines.append((kind, json.loads(rest)))
    return lines


def _reports(lines: list[tuple[str, dict[str, str]]]) -> list[dict[str, str]]:
    return [m for kind, m in lines if kind == "MSG" and m.get("MsgType") == "8"]


def _types(lines: list[tuple[str, dict[str, str]]], kind: str) -> list[str]:
    return [m["msgType"] for k, m in lines if k == kind]


def test_jspurefix_trades_replaces_cancels_and_recovers_its_sequence_after_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "jspurefix-store"
    store.mkdir()
    server = LocalFixServer(tmp_path / "server").start()
    try:

        async def rest_a_sell() -> None:
            async with FixClient("pyseller", server.url) as seller:
                (events,) = await seller.submit([PlaceOrder("pyseller", "s1", "BTC-USD", Side.SELL, 5000, 3_000_000)])
                assert type(events[0]).__name__ == "OrderAccepted"

        asyncio.run(rest_a_sell())
        trade = _run_initiator("trade", server.port, store)
        reports = [(r["ClOrdID"], r["ExecType"], r["OrdStatus"]) for r in _reports(trade)]
        assert reports == [("js-1", "0", "0"), ("js-1", "F", "2"), ("js-2", "0", "0"), ("js-3", "5", "0"), ("js-4", "4", "4")]
        fill = _reports(trade)[1]
        assert (fill["LastPx"], fill["LastQty"], fill["CumQty"], fill["LeavesQty"]) == ("30000.00", "0.2000", "0.2000", "0.0000")
        replaced = _reports(trade)[3]
        assert (replaced["OrigClOrdID"], replaced["Price"], replaced["OrderQty"]) == ("js-2", "31500.00", "0.4000")
        assert _types(trade, "SESSION")[-1] == "5"  # our Logout answering theirs

        server.stop()
        server.start()  # same directory, same port: journal and sequence numbers come back
        numbers = SequenceStore(tmp_path / "server" / "fix-sessions").load("jsbuyer")
        assert (numbers.next_in, numbers.next_out) == (7, 8)  # Logon + 4 orders + Logout in; Logon + 5 reports + Logout out
        # jspurefix's file store (QuickFIX format): it has sent three more than we saw, and seen three fewer than we sent.
        (store / "FIX.4.4-jsbuyer-DEX.seqnums").write_text(f"{numbers.next_in + 3:>19} : {numbers.next_out - 3:>19}")
        recover = _run_initiator("recover", server.port, store)
        received = [m for k, m in recover if k == "SESSION"]
        ours = next(m for m in received if m["msgType"] == "2")
        assert "|7=7|" in ours["txt"]  # we asked for 7 onwards
        sent = [m for k, m in recover if k == "SENT"]
        assert any(m["msgType"] == "4" and "|123=Y|" in m["txt"] for m in sent)  # they gap-filled it
        theirs = next(m for m in sent if m["msgType"] == "2")
        assert "|7=5|" in theirs["txt"]  # they asked for 5 onwards ...
        assert any(m["msgType"] == "4" and "|123=Y|" in m["txt"] and "|34=5|" in m["txt"] for m in received)  # ... we gap-filled
        assert [(r["ClOrdID"], r["ExecType"]) for r in _reports(recover)] == [("js-r1", "0")]
        assert _types(recover, "SESSION")[-1] == "5"
    finally:
        server.stop()


def test_jspurefix_logs_on_with_a_signature_it_computes_and_a_foreign_key_is_not_let_in(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    credential = create_key(keys, "jsbuyer")
    stranger = create_key(tmp_path / "elsewhere", "jsbuyer")
    store = tmp_path / "jspurefix-store"
    store.mkdir()
    server = LocalFixServer(tmp_path / "server", ("--auth", "keys", "--keys", str(keys))).start()
    try:
        path = keys / "clients" / f"{credential.key_id}.json"
        signed = _run_initiator("signed", server.port, store, str(path))
        logon = next(m for k, m in signed if k == "SENT" and m["msgType"] == "A")
        assert f"|553={credential.key_id}|" in logon["txt"] and "|96=" in logon["txt"] and "|554=" not in logon["txt"]
        assert [(r["ClOrdID"], r["ExecType"]) for r in _reports(signed)] == [("js-s1", "0")]
        foreign = tmp_path / "elsewhere" / "clients" / f"{stranger.key_id}.json"
        refused = _run_initiator("signed", server.port, store, str(foreign), expect_rc=2)  # its launcher fails: the session ended at Logon
        logouts = [m["txt"] for k, m in refused if k == "SESSION" and m["msgType"] == "5"]
        assert logouts and all("unknown_key" in text and "|20001=505|" in text for text in logouts)
        assert not _reports(refused)
    finally:
        server.stop()
