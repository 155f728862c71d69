"""TLS material for the exchange's servers: a private CA and a server certificate signed by it.

``dex-keys tls`` writes, under ``<keyring>/server/tls/``:

* ``ca.pem``: the CA certificate clients trust (hand it to them);
* ``ca.key``: the CA's private key (mode 0600; keep it off the servers if you can);
* ``server.pem`` and ``server.key``: the servers' certificate, valid for the
  names and addresses given (default ``localhost`` and ``127.0.0.1``), and its
  key (mode 0600).

Invariants: keys are P-256 ECDSA, which every TLS stack (gRPC's
BoringSSL, OpenSSL, Node) accepts; certificates last ``VALID_DAYS``;
running it again replaces the server certificate and keeps the CA, so
clients need not be handed a new CA to rotate a server's key.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from transports.core.keys import SERVER_DIR, write_private

VALID_DAYS: Final = 825
TLS_DIR: Final = "tls"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path
    ca_key: Path
    cert: Path
    key: Path

    @classmethod
    def under(cls, keyring: str | Path) -> TlsFiles:
        base = Path(keyring) / SERVER_DIR / TLS_DIR
        return cls(base / "ca.pem", base / "ca.key", base / "server.pem", base / "server.key")

    def exist(self) -> bool:
        return all(p.exists() for p in (self.ca, self.cert, self.key))


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if files.ca.exists() and files.ca_key.exists():
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return x509.load_pem_x509_certificate(files.ca.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("dex exchange CA"))
        .issuer_name(_name("dex exchange CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_private(files.ca_key, _pem_key(key))
    files.ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def issue_server_certificate(keyring: str | Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TlsFiles:
    """Write (or rotate) the server certificate for ``names`` under ``keyring``; the files."""
    files = TlsFiles.under(keyring)
    files.ca.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca, ca_key = _ca(files)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(files.key, _pem_key(key))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files
