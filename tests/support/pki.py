"""A throwaway PKI made at test time with `cryptography`: no certificate or key is ever committed.

One CA signs a server certificate (for `localhost` and 127.0.0.1), a second server certificate
naming only the service (`SERVICE_NAME`, for clients that dial an address and verify a name) and
a client certificate (for mutual TLS); a second, unrelated CA signs a client certificate the
server must refuse.  P-256 keys keep generation fast.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_NAME = "vexil.internal"
"""The only name in `named_server_cert`: not the address a test dials (127.0.0.1)."""


@dataclass(frozen=True)
class PkiFiles:
    """Paths of the PEM files (see the module docstring)."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    rogue_client_cert: str
    rogue_client_key: str
    named_server_cert: str
    named_server_key: str
    rogue_ca: str
    """The CA that signed the rogue client certificate: it signed no server certificate."""
    expired_server_cert: str
    expired_server_key: str
    """A server certificate of the test CA for `localhost` whose validity ended an hour ago."""

    def read(self, name: str) -> bytes:
        return Path(getattr(self, name)).read_bytes()


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    common_name: str,
    *,
    server: bool,
    names: list[x509.GeneralName] | None = None,
    expired: bool = False,
) -> tuple[bytes, bytes]:
    ca_cert, ca_key = ca
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    if expired:  # valid for a day, which ended an hour ago
        now -= datetime.timedelta(days=1, hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names or local), critical=False)
    return _pem_cert(builder.sign(ca_key, hashes.SHA256())), _pem_key(key)


def make_pki(directory: Path) -> PkiFiles:
    """Generate the PKI into `directory` and return the file paths."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("vexil test CA")
    rogue = _ca("some other CA")
    server_cert, server_key = _leaf(ca, "localhost", server=True)
    client_cert, client_key = _leaf(ca, "test client", server=False)
    rogue_cert, rogue_key = _leaf(rogue, "rogue client", server=False)
    named_cert, named_key = _leaf(ca, SERVICE_NAME, server=True, names=[x509.DNSName(SERVICE_NAME)])
    expired_cert, expired_key = _leaf(ca, "localhost", server=True, expired=True)
    contents = {
        "ca": _pem_cert(ca[0]),
        "server_cert": server_cert,
        "server_key": server_key,
        "client_cert": client_cert,
        "client_key": client_key,
        "rogue_client_cert": rogue_cert,
        "rogue_client_key": rogue_key,
        "named_server_cert": named_cert,
        "named_server_key": named_key,
        "rogue_ca": _pem_cert(rogue[0]),
        "expired_server_cert": expired_cert,
        "expired_server_key": expired_key,
    }
    paths = {}
    for name, data in contents.items():
        path = directory / f"{name}.pem"
        path.write_bytes(data)
        path.chmod(0o600)
        paths[name] = str(path)
    return PkiFiles(**paths)
