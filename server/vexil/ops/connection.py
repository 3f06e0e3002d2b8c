"""How operator tooling reaches a server: one description of the gRPC target, its HTTP side,
TLS (a private CA, a client certificate for mutual TLS, or the system's roots) and the
credential, used alike for gRPC calls and for reading `/metrics`.

The CLI builds it from its connection options (`vexil.cli.credentials`); the operations code
(`vexil.ops.gather`) only uses it, so every command that talks to a server speaks TLS the same
way, and none opens a plaintext channel or an `http://` URL behind the operator's back.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import grpc

from vexil.security.tls import TlsConfigError, channel_credentials, read_pem
from vexil.sendable import CERTIFICATE, PRIVATE_KEY, header_problem

DEFAULT_HTTP_PORT = 3001


class ConnectionOptionsError(ValueError):
    """Unusable connection options (a missing half of a client certificate, an unreadable file)."""


@dataclass(frozen=True)
class Connection:
    target: str = "localhost:50051"
    token: str = ""
    timeout: float = 10.0
    tls: bool = False
    """TLS with the system's trusted roots (implied by `ca_cert` or `client_cert`)."""
    ca_cert: str = ""
    client_cert: str = ""
    client_key: str = ""
    server_name: str = ""
    """Name to verify the server's certificate as, when it differs from the target's host."""
    http_url: str = ""
    """The server's HTTP side; "" means the target's host on port 3001, `https` under TLS."""

    @property
    def secure(self) -> bool:
        return bool(self.tls or self.ca_cert or self.client_cert)

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    @property
    def http_headers(self) -> dict[str, str]:
        """The credential for the HTTP side (`/metrics` outside the local profile)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def check(self) -> None:
        """Refuse what cannot work before connecting (each would fail later as a misleading gRPC
        status): half a client certificate, a token a header cannot carry, a TLS file that cannot
        be read or is not PEM."""
        if bool(self.client_cert) != bool(self.client_key):
            raise ConnectionOptionsError("--client-cert and --client-key go together")
        problem = header_problem(self.token)
        if problem:
            raise ConnectionOptionsError(
                f"the token (--token, VEXIL_TOKEN) holds characters a header cannot carry: {problem}"
            )
        for path, what in (
            (self.ca_cert, CERTIFICATE),
            (self.client_cert, CERTIFICATE),
            (self.client_key, PRIVATE_KEY),
        ):
            if path:
                try:
                    read_pem(path, what)
                except TlsConfigError as exc:
                    raise ConnectionOptionsError(str(exc)) from None

    def channel(self) -> grpc.Channel:
        """A blocking channel to `target`: TLS if any TLS option is given, else plaintext."""
        self.check()
        if not self.secure:
            return grpc.insecure_channel(self.target)
        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        try:
            creds = channel_credentials(self.ca_cert, self.client_cert, self.client_key)
        except TlsConfigError as exc:
            raise ConnectionOptionsError(str(exc)) from None
        return grpc.secure_channel(self.target, creds, options=options)

    def base_url(self) -> str:
        if self.http_url:
            return self.http_url.rstrip("/")
        host = self.target.rsplit(":", 1)[0] if ":" in self.target else self.target
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{host or '127.0.0.1'}:{DEFAULT_HTTP_PORT}"

    def metrics_url(self) -> str:
        return self.base_url() + "/metrics"

    def ssl_context(self) -> ssl.SSLContext | None:
        """For `https` URLs: the same trust and client certificate as the gRPC channel.  The
        certificate is checked against the URL's host (`server_name` is for gRPC only: name the
        host in `http_url` instead)."""
        if not self.base_url().startswith("https:"):
            return None
        self.check()
        try:
            context = ssl.create_default_context(cafile=self.ca_cert or None)
            if self.client_cert:
                context.load_cert_chain(self.client_cert, self.client_key)
        except ssl.SSLError as exc:
            raise ConnectionOptionsError(f"TLS files for {self.base_url()}: {exc}") from None
        except OSError as exc:
            files = exc.filename or " / ".join(
                f for f in (self.ca_cert, self.client_cert, self.client_key) if f
            )
            raise ConnectionOptionsError(f"cannot read TLS file {files}: {exc.strerror}") from None
        return context
