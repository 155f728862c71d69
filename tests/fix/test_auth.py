"""Signed FIX Logons (docs/security.md, "FIX"), byte by byte: what the generic suite (tests/auth) cannot see.

Logons are built here from their fields (Username 553, RawData 95/96,
SendingTime, DEX_RECV_WINDOW) and sent over a real socket to ``serve_fix``
with an ``Authenticator``: the same Logon bytes sent again are refused
(``replayed_request``), one signed outside its window is ``stale_request``,
one whose SenderCompID is not the key's trader is ``UNAUTHORIZED``, a
password instead of a signature is ``missing_credentials``. Each refusal is a
Logout naming its cause and reason (never a crash: a good Logon is served
after them) and is counted. ``dex-fix`` takes ``--auth``/``--keys`` and
refuses passwords beside keys.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
import simplefix

from engine import Engine, RejectReason
from transports.core.auth import Authenticator
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.keys import Credential, Keyring, create_key
from transports.core.signing import now_ms, sign
from transports.fix import protocol as p
from transports.fix.server import parse_args, serve_fix
from transports.fix.settings import parse_url
from transports.instruments import select_instruments


def _logon(credential: Credential, sender: str, *, stamp: int | None = None, window: int = 5_000, seq: int = 1) -> bytes:
    """A signed Logon as a foreign engine would build it from the documented fields."""
    stamp = now_ms() if stamp is None else stamp
    moment = dt.datetime.fromtimestamp(stamp // 1000, dt.UTC).replace(microsecond=stamp % 1000 * 1000)
    signature = sign(credential, p.logon_payload(stamp, window, seq, sender, "DEX"))
    message = p.new_message(p.LOGON)
    message.append_pair(p.ENCRYPT_METHOD, 0)
    message.append_pair(p.HEART_BT_INT, 30)
    message.append_pair(p.RESET_SEQ_NUM_FLAG, "Y")
    message.append_pair(p.USERNAME, credential.key_id)
    message.append_pair(p.DEX_RECV_WINDOW, window)
    message.append_data(p.RAW_DATA_LENGTH, p.RAW_DATA, signature)
    return p.encode(message, sender, "DEX", seq, sent=p.sending_time(moment))


async def _answer(url: str, data: bytes) -> simplefix.FixMessage:
    """The server's first message after ``data`` on a fresh connection (a Logon, or a Logout saying why not)."""
    address = parse_url(url)
    reader, writer = await asyncio.open_connection(address.host, address.port)
    try:
        writer.write(data)
        frames = p.FrameReader(64 * 1024)
        for _ in range(100):
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            assert chunk, "the server closed without answering"
            frames.feed(chunk)
            for frame in frames.frames():
                assert frame.message is not None
                return frame.message
        raise AssertionError("no answer")
    finally:
        writer.close()


def _cause(answer: simplefix.FixMessage) -> tuple[bytes | None, RejectReason, str]:
    text = (answer.get(p.TEXT) or b"").decode()
    return answer.get(p.MSG_TYPE), p.reject_reason(answer.get(p.DEX_REASON)), text


def test_replayed_stale_foreign_and_password_logons_are_refused_and_counted(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    alice = create_key(keys, "alice")

    async def main() -> None:
        gateway = Gateway(Engine(), GatewayConfig(journal=None))
        await gateway.start(select_instruments("BTC-USD"))
        try:
            async with serve_fix(gateway, auth=Authenticator(Keyring(keys))) as url:
                good = _logon(alice, "alice")
                assert (await _answer(url, good)).get(p.MSG_TYPE) == p.LOGON
                await asyncio.sleep(0.2)  # the first session has seen its connection close
                kind, reason, text = _cause(await _answer(url, good))  # the same bytes again
                assert (kind, reason) == (p.LOGOUT, RejectReason.UNAUTHENTICATED) and "replayed_request" in text
                kind, reason, text = _cause(await _answer(url, _logon(alice, "alice", stamp=now_ms() - 10_000)))
                assert (kind, reason) == (p.LOGOUT, RejectReason.UNAUTHENTICATED) and "stale_request" in text
                kind, reason, text = _cause(await _answer(url, _logon(alice, "bob")))  # alice's key, bob's SenderCompID
                assert (kind, reason) == (p.LOGOUT, RejectReason.UNAUTHORIZED) and "key's trader" in text
                password = p.new_message(p.LOGON)
                for tag, value in ((p.ENCRYPT_METHOD, 0), (p.HEART_BT_INT, 30), (p.RESET_SEQ_NUM_FLAG, "Y"), (p.PASSWORD, "x")):
                    password.append_pair(tag, value)
                kind, reason, text = _cause(await _answer(url, p.encode(password, "alice", "DEX", 1)))
                assert (kind, reason) == (p.LOGOUT, RejectReason.UNAUTHENTICATED) and "missing_credentials" in text
                refused = gateway.stats_dict()["refused_by_reason"]
                assert refused.get("UNAUTHENTICATED", 0) >= 3 and refused.get("UNAUTHORIZED", 0) >= 1
                fresh = await _answer(url, _logon(alice, "alice"))  # the server still serves
                assert fresh.get(p.MSG_TYPE) == p.LOGON
        finally:
            await gateway.stop()

    asyncio.run(main())


def test_dex_fix_reads_keys_and_refuses_passwords_beside_them(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    create_key(keys, "alice")
    settings = parse_args(["--auth", "keys", "--keys", str(keys), "--no-journal", "--state-dir", str(tmp_path)])
    assert settings.auth is not None and settings.auth.keyring.lookup("nope") is None
    assert parse_args(["--no-journal", "--state-dir", str(tmp_path)]).auth is None  # --auth off: the default, on loopback
    with pytest.raises(SystemExit):
        parse_args(["--auth", "keys", "--keys", str(keys), "--password", "x", "--no-journal", "--state-dir", str(tmp_path)])
