"""Signed requests on HTTP and WebSocket, beyond the registry's suite (tests/auth/test_wires.py).

What a client of a Binance- or Kraken-style API would notice: the signature
covers the body, path and query (a changed byte is ``bad_signature``); a
request signed by hand as docs/security.md says, with an Ed25519 or an
HMAC-SHA256 key, is accepted; each refusal has its status, reason and cause;
the private fills stream needs a signed upgrade while market data stays
public; no signature or secret reaches the server's log, access log
included; a server on a public address refuses to start without keys; and
``dex-trader`` runs authenticated against ``turbo-dex --auth keys``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import connect as ws_connect

from engine import OrderAccepted, Side
from tests.auth.test_wires import PX, SYM, Keys, Venue, order, resting, venue
from transports.core.keys import Credential, Keyring, create_key
from transports.http.client import HttpClient
from transports.http.local import LocalServer
from transports.http.signed import signed_headers, signed_query
from transports.launcher import served

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BODY = json.dumps({"symbol": SYM, "side": "buy", "price": "29999.00", "qty": "1.000", "client_order_id": "by-hand"}).encode()


def run(tmp_path: Path, scenario: Callable[[Venue], Awaitable[None]], *, rate_limited: bool = False) -> None:
    keys = Keys(tmp_path / "keys")

    async def main() -> None:
        async with venue("http", keys, rate_limited=rate_limited) as v:
            await asyncio.wait_for(scenario(v), 60)

    asyncio.run(main())


def by_hand(credential: Credential, method: str, path: str, query: str, body: bytes) -> dict[str, str]:
    """The four headers as docs/security.md tells a client in another language to make them (no project code)."""
    stamp, window = str(int(time.time() * 1000)), "5000"
    message = "\n".join([stamp, window, method, path, query]).encode() + b"\n" + body
    secret = base64.b64decode(credential.private_key)
    if credential.scheme == "hmac":
        signature = hmac.new(secret, message, hashlib.sha256).hexdigest()
    else:
        signature = base64.b64encode(Ed25519PrivateKey.from_private_bytes(secret).sign(message)).decode()
    return {"DEX-KEY": credential.key_id, "DEX-TIMESTAMP": stamp, "DEX-WINDOW": window, "DEX-SIGNATURE": signature}


# ------------------------------------------------------------ signing
@pytest.mark.parametrize("scheme", ["ed25519", "hmac"])
def test_a_request_signed_by_hand_is_accepted_with_either_kind_of_key(scheme: str, tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        hank = create_key(v.keys.directory, "hank", scheme=scheme)  # type: ignore[arg-type]
        await asyncio.sleep(0.5)  # one keyring reload
        async with httpx.AsyncClient(base_url=v.url) as http:
            reply = await http.post("/orders", content=BODY, headers=by_hand(hank, "POST", "/orders", "", BODY))
            assert reply.status_code == 200, reply.text
            assert reply.json()["events"][0]["trader"] == "hank"
            mine = await http.get("/orders", params={"symbol": SYM}, headers=by_hand(hank, "GET", "/orders", f"symbol={SYM}", b""))
            assert [o["client_order_id"] for o in mine.json()["orders"]] == ["by-hand"]
        async with HttpClient("ignored", v.url, credential=hank) as client:  # the project's client signs the same way
            events = (await client.submit([order("h2", trader="bob", price=PX - 200)]))[0]
            assert any(isinstance(e, OrderAccepted) and e.trader == "hank" for e in events)
        assert resting(v, "hank") == [PX - 100, PX - 200]

    run(tmp_path, scenario)


def test_the_signature_covers_body_path_and_query(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        alice = v.keys.alice
        async with httpx.AsyncClient(base_url=v.url) as http:
            changed = BODY.replace(b"29999.00", b"29000.00")
            for method, path, body, headers in [
                ("POST", "/orders", changed, signed_headers(alice, "POST", "/orders", "", BODY)),  # another body
                ("POST", "/orders/batch", b"[" + BODY + b"]", signed_headers(alice, "POST", "/orders", "", b"[" + BODY + b"]")),
                ("GET", "/orders?symbol=ETH-USD", b"", signed_headers(alice, "GET", "/orders", f"symbol={SYM}", b"")),  # query
            ]:
                reply = await http.request(method, path, content=body, headers=headers)
                assert reply.status_code == 401, reply.text
                assert reply.json()["reason"] == "UNAUTHENTICATED" and reply.json()["code"] == 505
                assert reply.json()["message"].startswith("bad_signature")
                assert 'error="bad_signature"' in reply.headers["www-authenticate"]
            accepted = await http.post("/orders", content=BODY, headers=signed_headers(alice, "POST", "/orders", "", BODY))
            assert accepted.status_code == 200, accepted.text  # the same signer, the right body
        assert resting(v, "alice") == [PX - 100]

    run(tmp_path, scenario)


# ------------------------------------------------------------ refusals, as statuses
def test_each_refusal_has_its_status_reason_and_cause(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        async with httpx.AsyncClient(base_url=v.url) as http:
            missing = await http.get("/orders", headers={"X-Trader": "alice"})  # the name alone proves nothing
            assert missing.status_code == 401 and missing.json()["message"].startswith("missing_credentials")
            assert missing.headers["www-authenticate"].startswith("DEX-SIGNATURE")
            stale = signed_headers(v.keys.alice, "GET", "/orders", "", b"") | {"dex-timestamp": "1"}
            assert (await http.get("/orders", headers=stale)).json()["message"].startswith("stale_request")
            add = json.dumps({"type": "add_instrument", "symbol": "ETH-USD", "tick_size": "0.01", "lot_size": "0.001"}).encode()
            forbidden = await http.post("/orders", content=add, headers=signed_headers(v.keys.alice, "POST", "/orders", "", add))
            assert forbidden.status_code == 403 and forbidden.json()["reason"] == "UNAUTHORIZED"
            admin = await http.post("/orders", content=add, headers=signed_headers(v.keys.admin, "POST", "/orders", "", add))
            assert admin.status_code == 200, admin.text
            for path in (f"/book/{SYM}", "/instruments", "/ticker", "/health"):  # public: no key needed
                assert (await http.get(path)).status_code == 200, path

    run(tmp_path, scenario)


def test_a_key_over_its_rate_is_429_with_retry_after(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        async with httpx.AsyncClient(base_url=v.url) as http:
            statuses = []
            for _ in range(12):  # bounded: 12 requests against 5 per second
                reply = await http.get("/orders", headers=signed_headers(v.keys.limited, "GET", "/orders", "", b""))
                statuses.append(reply.status_code)
                if reply.status_code == 429:
                    assert reply.json()["reason"] == "RATE_LIMITED" and reply.headers["retry-after"] == "1"
            assert statuses.count(429) >= 5, statuses

    run(tmp_path, scenario, rate_limited=True)


# ------------------------------------------------------------ WebSocket
def test_the_private_fills_stream_needs_a_signed_upgrade_and_market_data_does_not(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        ws_url = "ws" + v.url.removeprefix("http")
        async with ws_connect(f"{ws_url}/ws/fills", additional_headers={"X-Trader": "alice"}) as unsigned:
            refusal = json.loads(await asyncio.wait_for(unsigned.recv(), 5))
            assert refusal["reason"] == "UNAUTHENTICATED" and refusal["message"].startswith("missing_credentials")
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(unsigned.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        # A browser cannot set headers on a WebSocket: the same four values as query parameters.
        async with ws_connect(f"{ws_url}/ws/fills?{signed_query(v.keys.alice, '/ws/fills')}") as fills:
            for _ in range(200):  # bounded: until the server holds the subscription
                if v.gateway.fills.subscriber_count == 1:
                    break
                await asyncio.sleep(0.01)
            async with HttpClient("", v.url, credential=v.keys.alice) as alice, HttpClient("", v.url, credential=v.keys.bob) as bob:
                await alice.submit([order("maker")])
                await bob.submit([order("taker", side=Side.SELL)])
            fill = json.loads(await asyncio.wait_for(fills.recv(), 5))
            assert fill["client_order_id"] == "maker" and fill["maker"] is True
        async with ws_connect(f"{ws_url}/ws/marketdata/{quote(SYM)}") as market:  # public, unsigned
            assert json.loads(await asyncio.wait_for(market.recv(), 5))["symbol"] == SYM

    run(tmp_path, scenario)


# ------------------------------------------------------------ processes
@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, Path]]:
    """turbo-dex --auth keys over an empty development keyring, logging at debug (uvicorn's access log on)."""
    workdir = tmp_path_factory.mktemp("turbo-dex-keys")
    keys = workdir / "keys"
    server = LocalServer(workdir, ("--auth", "keys", "--keys", str(keys), "--log-level", "debug")).start()
    try:
        yield server, keys
    finally:
        assert server.stop() == 0, server.log_tail()


def test_no_signature_or_secret_reaches_the_server_log(keyed_server: tuple[LocalServer, Path]) -> None:
    server, keys = keyed_server
    carol = create_key(keys, "carol-logs")
    time.sleep(0.5)  # one keyring reload
    sent: list[str] = []

    async def talk() -> None:
        async with httpx.AsyncClient(base_url=server.url) as http:
            headers = signed_headers(carol, "POST", "/orders", "", BODY)
            sent.append(headers["dex-signature"])
            assert (await http.post("/orders", content=BODY, headers=headers)).status_code == 200
            assert (await http.post("/orders", content=BODY, headers=headers)).status_code == 401  # a replay, refused
        ws_url = "ws" + server.url.removeprefix("http")
        query = signed_query(carol, "/ws/fills")
        sent.append(query.rpartition("dex-signature=")[2])
        async with ws_connect(f"{ws_url}/ws/fills?{query}"):  # the upgrade's request line holds the signature
            await asyncio.sleep(0.2)
        headers = signed_headers(carol, "GET", "/ws/fills", "", b"")
        sent.append(headers["dex-signature"])
        async with ws_connect(f"{ws_url}/ws/fills", additional_headers=headers):  # a header websockets logs at debug
            await asyncio.sleep(0.2)

    asyncio.run(talk())
    time.sleep(0.2)  # the server writes its log lines as it answers; give the last one time to land
    log = server.log_path.read_text()
    # The lines that could have held them are there: the access log, the upgrades' request lines and headers.
    assert '"POST /orders HTTP/1.1" 200' in log and "WebSocket /ws/fills" in log and "dex-signature: [redacted]" in log
    for secret in [*sent, *(s.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=") for s in sent), carol.private_key]:
        assert secret not in log


def test_dex_trader_with_keys_creates_them_trades_and_reconciles(keyed_server: tuple[LocalServer, Path], tmp_path: Path) -> None:
    server, keys = keyed_server
    out = tmp_path / "run.json"
    done = _dex_trader(
        "--transport", "http", "--server", server.url, "--keys", str(keys), "--workers", "2", "--batch", "20",
        "--duration", "1s", "--warmup", "200ms", "--trader-prefix", "keyed", "--json", str(out), "--quiet", "--strict-reconcile",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["orders_sent"] > 0 and report["errors"] == 0, report
    assert report["reconciliation"]["ok"], report["reconciliation"]
    traders = {r.trader for r in Keyring(keys).records()}
    assert {f"keyed-{report['run_id']}-0-0", f"keyed-{report['run_id']}-0-1", "keyed-control"} <= traders


def test_dex_trader_with_one_key_acts_as_its_trader(keyed_server: tuple[LocalServer, Path], tmp_path: Path) -> None:
    server, keys = keyed_server
    dana = create_key(keys, "dana")
    key_file = keys / "clients" / f"{dana.key_id}.json"
    done = _dex_trader(
        "--server", server.url, "--key", str(key_file), "--workers", "2", "--batch", "10", "--duration", "1s",
        "--warmup", "200ms", "--trader-prefix", "one-key", "--json", str(tmp_path / "run.json"), "--quiet", "--strict-reconcile",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "run.json").read_text())["reconciliation"]["ok"]


def test_dex_trader_refuses_keys_on_a_transport_that_cannot_authenticate(tmp_path: Path) -> None:
    done = _dex_trader("--transport", "inproc", "--keys", str(tmp_path / "keys"), "--duration", "1s", timeout=60)
    assert done.returncode == 2
    assert "inproc transport cannot authenticate yet" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("transports", ["http", *[f"http,{name}" for name in served() if name != "http"][:1]])
def test_a_server_on_a_public_address_refuses_to_start_without_keys(transports: str, tmp_path: Path) -> None:
    base = [str(BIN / "turbo-dex"), "--transports", transports, "--host", "0.0.0.0", "--port", "0", "--no-journal"]
    off = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False)
    assert off.returncode != 0 and "refused on 0.0.0.0" in off.stderr and "listening" not in off.stdout, off.stderr
    empty = subprocess.run([*base, "--auth", "keys", "--keys", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False)
    assert empty.returncode != 0 and "no live key" in empty.stderr and "listening" not in empty.stdout, empty.stderr


def _dex_trader(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "dex-trader"), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
