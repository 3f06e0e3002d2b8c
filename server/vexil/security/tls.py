"""TLS for both listeners: server credentials for gRPC, an `ssl.SSLContext` for the HTTP side.

Both take the same files: a PEM certificate chain and key, and optionally a client CA bundle,
which turns on mutual TLS (a client must present a certificate signed by that CA).  The minimum
protocol version is TLS 1.2 on both: gRPC's TLS stack refuses older versions itself, and the
HTTP context says so explicitly.  Files are read once at start; to rotate certificates, restart
replicas one by one.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from vexil.sendable import CERTIFICATE, PRIVATE_KEY, is_pem


class TlsConfigError(ValueError):
    """A certificate, key or CA file cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: str
    key: str
    client_ca: str = ""

    def read(self) -> tuple[bytes, bytes, bytes | None]:
        def read(path: str) -> bytes:
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise TlsConfigError(f"cannot read {path}: {exc.strerror}") from None

        return read(self.cert), read(self.key), read(self.client_ca) if self.client_ca else None


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    cert, key, client_ca = files.read()
    return grpc.ssl_server_credentials(
        ((key, cert),), root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The HTTP side's context; also how start-up checks that certificate and key belong together."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert, files.key)
        if files.client_ca:
            context.load_verify_locations(cafile=files.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"TLS files {files.cert} / {files.key}: {exc}") from None
    return context


def read_pem(path: str, what: str) -> bytes:
    """A client-side TLS file (`what`: CERTIFICATE or PRIVATE_KEY) as bytes, once it is known to
    hold at least one PEM block of that kind: gRPC takes any bytes and fails only at the
    handshake, as if the server were unavailable.  TlsConfigError names the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read TLS file {path}: {exc.strerror}") from None
    if not is_pem(data, what):
        raise TlsConfigError(f"not a PEM {what}: {path}")
    return data


def channel_credentials(
    ca_cert: str = "", client_cert: str = "", client_key: str = ""
) -> grpc.ChannelCredentials:
    """Client side (CLI, tests): trust `ca_cert` (else the system roots), present a client
    certificate for mTLS if given.  A file that cannot be read or is not PEM: TlsConfigError."""

    def read(path: str, what: str) -> bytes | None:
        return read_pem(path, what) if path else None

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca_cert, CERTIFICATE),
        private_key=read(client_key, PRIVATE_KEY),
        certificate_chain=read(client_cert, CERTIFICATE),
    )
