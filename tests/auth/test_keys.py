"""Keys, signatures and limits, below the wires: what every wire's authentication rests on."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import RejectReason
from transports.core.auth import Authenticator, add_auth_options, auth_from_options, is_loopback
from transports.core.keys import CLIENTS_DIR, RELOAD_CHECK_S, Credential, Keyring, create_key, dev_credential, revoke_key
from transports.core.ratelimit import KeyLimiter, RateLimited
from transports.core.signing import AuthFailure, RequestStamper, now_ms, payload, sign, sign_request

ROOT = Path(__file__).resolve().parents[2]


def _verify(auth: Authenticator, credential: Credential, **over: str | int) -> str:
    """The trader ``auth`` finds for a request signed by ``credential`` (``over`` replaces what was sent)."""
    signed = sign_request(credential, "POST", "/orders", "", b"{}")
    sent: dict[str, str | int] = {"key_id": signed.key_id, "timestamp": signed.timestamp_ms, "window": signed.window_ms}
    sent["signature"] = signed.signature
    sent.update(over)
    key_id, signature = str(sent["key_id"]), str(sent["signature"])
    return auth.verify_signed(key_id, sent["timestamp"], sent["window"], signature, "POST", "/orders", "", b"{}").trader


def _cause(auth: Authenticator, credential: Credential, **over: str | int) -> str:
    with pytest.raises(AuthFailure) as caught:
        _verify(auth, credential, **over)
    assert caught.value.reason is RejectReason.UNAUTHENTICATED
    return caught.value.cause


@pytest.mark.parametrize("scheme", ["ed25519", "hmac"])
def test_a_signed_request_proves_its_trader_and_every_tampering_is_refused_with_its_cause(tmp_path: Path, scheme: str) -> None:
    alice = create_key(tmp_path, "alice", scheme=scheme)  # type: ignore[arg-type]
    auth = Authenticator(Keyring(tmp_path))
    assert _verify(auth, alice) == "alice"
    assert _cause(auth, alice, signature="") == "missing_credentials"
    assert _cause(auth, alice, window=600_000) == "malformed_credentials"
    assert _cause(auth, alice, key_id="nobody-0000") == "unknown_key"
    assert _cause(auth, alice, timestamp=now_ms() - 60_000) == "stale_request"
    forged = sign(alice, payload(now_ms(), 5000, "POST", "/orders", "", b'{"qty": "1000"}'))  # signed another body
    assert _cause(auth, alice, signature=forged) == "bad_signature"


def test_a_signed_request_is_accepted_once(tmp_path: Path) -> None:
    alice = create_key(tmp_path, "alice")
    auth = Authenticator(Keyring(tmp_path))
    signed = sign_request(alice, "POST", "/orders", "", b"{}")
    args = (signed.key_id, signed.timestamp_ms, signed.window_ms, signed.signature, "POST", "/orders", "", b"{}")
    assert auth.verify_signed(*args).trader == "alice"
    with pytest.raises(AuthFailure, match="replayed_request"):
        auth.verify_signed(*args)


@pytest.mark.parametrize("scheme", ["ed25519", "hmac"])
def test_the_same_request_signed_again_within_one_millisecond_is_a_new_request_not_a_replay(tmp_path: Path, scheme: str) -> None:
    alice = create_key(tmp_path, "alice", scheme=scheme)  # type: ignore[arg-type]
    auth = Authenticator(Keyring(tmp_path))
    stamper = RequestStamper(clock_ms=lambda: now_ms() // 1000 * 1000)  # a clock that stands still: every retry in its ms
    accepted = set()
    for _ in range(5):  # a client retrying one cancel
        stamp, message = stamper.payload(alice.key_id, 5000, "POST", "/orders", "", b"{}")
        signature = sign(alice, message)
        assert auth.verify_signed(alice.key_id, stamp, 5000, signature, "POST", "/orders", "", b"{}").trader == "alice"
        accepted.add(stamp)
    assert len(accepted) == 5 and max(accepted) - min(accepted) == 4  # each retry one ms later, no further
    other_stamp, _ = stamper.payload(alice.key_id, 5000, "POST", "/orders", "", b'{"other": 1}')
    assert other_stamp == max(accepted)  # another request is not moved: the stamps stay on the clock
    for _ in range(3):
        signed = sign_request(alice, "DELETE", "/orders", "", b"{}")
        args = (signed.key_id, signed.timestamp_ms, signed.window_ms, signed.signature, "DELETE", "/orders", "", b"{}")
        assert auth.verify_signed(*args).trader == "alice"


def test_the_keyring_stores_no_private_key_and_credentials_are_private_files(tmp_path: Path) -> None:
    alice = create_key(tmp_path, "alice")
    keyring_text = (tmp_path / "keyring.json").read_text()
    assert alice.private_key not in keyring_text and alice.curve_secret not in keyring_text
    assert alice.amqp_password not in keyring_text
    for path in (tmp_path / "keyring.json", tmp_path / CLIENTS_DIR / f"{alice.key_id}.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert Credential.load(tmp_path / CLIENTS_DIR / f"{alice.key_id}.json") == alice


def test_a_revoked_key_stops_authenticating_within_one_reload_without_a_restart(tmp_path: Path) -> None:
    alice = create_key(tmp_path, "alice")
    keyring = Keyring(tmp_path)
    assert keyring.lookup(alice.key_id) is not None
    bob = create_key(tmp_path, "bob")  # added beside a running server: seen within one reload too
    revoke_key(tmp_path, alice.key_id)
    time.sleep(RELOAD_CHECK_S + 0.05)
    assert keyring.lookup(alice.key_id) is None
    assert keyring.lookup(bob.key_id) is not None


def test_an_unreadable_keyring_keeps_the_last_good_one(tmp_path: Path) -> None:
    alice = create_key(tmp_path, "alice")
    keyring = Keyring(tmp_path)
    (tmp_path / "keyring.json").write_text("{ half a file")
    time.sleep(RELOAD_CHECK_S + 0.05)
    assert keyring.lookup(alice.key_id) is not None


def test_development_credentials_are_created_once_per_trader(tmp_path: Path) -> None:
    first = dev_credential(tmp_path, "alice")
    assert dev_credential(tmp_path, "alice") == first
    assert dev_credential(tmp_path, "alice", role="admin").key_id != first.key_id
    assert len(Keyring(tmp_path).records()) == 2


def test_the_rate_limiter_refuses_over_the_rate_and_over_the_requests_in_flight() -> None:
    now = [0.0]
    limiter = KeyLimiter(rate_per_s=3, max_in_flight=2, clock=lambda: now[0])
    limiter.acquire("k")
    limiter.acquire("k")
    with pytest.raises(RateLimited, match="in flight"):
        limiter.acquire("k")
    limiter.release("k")
    limiter.acquire("k")  # the third token
    limiter.release("k")
    with pytest.raises(RateLimited, match="per second") as caught:
        limiter.acquire("k")
    assert caught.value.reason is RejectReason.RATE_LIMITED
    now[0] += 1 / 3  # one token back after a third of a second
    limiter.acquire("k")
    limiter.acquire("other")  # limits are per key


def _options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_auth_options(parser)
    return parser.parse_args(list(argv))


def test_auth_off_is_for_loopback_only_and_a_public_server_needs_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    assert auth_from_options(_options("--auth", "off"), "127.0.0.1") is None
    assert "authentication is off" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="loopback only"):
        auth_from_options(_options("--auth", "off"), "0.0.0.0")
    with pytest.raises(SystemExit, match="needs keys"):
        auth_from_options(_options("--auth", "keys", "--keys", str(tmp_path)), "0.0.0.0")
    create_key(tmp_path, "alice")
    assert auth_from_options(_options("--auth", "keys", "--keys", str(tmp_path)), "0.0.0.0") is not None
    assert auth_from_options(_options("--auth", "keys", "--keys", str(tmp_path / "empty")), "127.0.0.1") is not None


def _dex_keys(directory: Path, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "transports.core.keys_cli", "--keys", str(directory), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.stdout


def test_dex_keys_creates_lists_and_revokes_and_never_prints_a_secret(tmp_path: Path) -> None:
    out = _dex_keys(tmp_path, "create", "alice")
    key_id = out.split()[1]
    credential = Credential.load(tmp_path / CLIENTS_DIR / f"{key_id}.json")
    _dex_keys(tmp_path, "create", "ops", "--admin", "--hmac", "--rate", "50")
    listed = json.loads(_dex_keys(tmp_path, "list", "--json"))["keys"]
    assert {(k["trader"], k["role"], k["scheme"]) for k in listed} == {("alice", "trader", "ed25519"), ("ops", "admin", "hmac")}
    assert next(k for k in listed if k["trader"] == "ops")["rate_per_s"] == 50
    revoked = _dex_keys(tmp_path, "revoke", key_id)
    text = out + revoked + _dex_keys(tmp_path, "list") + json.dumps(listed)
    assert credential.private_key not in text and "secret" not in json.dumps(listed)
    assert Keyring(tmp_path).lookup(key_id) is None
    kept = _dex_keys(tmp_path, "ensure", "ops", "--admin")
    assert kept.startswith("kept ") and len(Keyring(tmp_path).records()) == 2  # set-up scripts may run it every start
    assert _dex_keys(tmp_path, "ensure", "bob").startswith("created ")
    tls = _dex_keys(tmp_path, "tls")
    assert (tmp_path / "server" / "tls" / "server.pem").exists() and "CA certificate" in tls


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("create", ""), "UNAUTHORIZED: a trader is required"),
        (("create", "x" * 65), "MALFORMED_MESSAGE: a trader is at most 64 characters"),
        (("ensure", "a\x07b"), "MALFORMED_MESSAGE: a trader name has no control"),
        (("create", "bob", "--rate", "-1"), "--rate and --in-flight are 0"),
    ],
)
def test_dex_keys_refuses_a_bad_trader_or_limit_with_its_reason_and_writes_no_key(tmp_path: Path, argv: tuple[str, ...], said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "transports.core.keys_cli", "--keys", str(tmp_path), *argv],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr
    assert Keyring(tmp_path).records() == []
