"""How operator tooling reaches a server: one description of the gRPC target, its HTTP side,
TLS (a private CA, a client certificate for mutual TLS, or the system's roots) and the
credential, used alike for gRPC calls and for reading `/metrics`.

The CLI builds it from its connection options (`vexil.cli.credentials`); the operations code
(`vexil.ops.gather`) only uses it, so every command that talks to a server speaks TLS the same
way, and none opens a plaintext channel or an `http://` URL behind the operator's back.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass

import grpc

from vexil.security.tls import TlsConfigError, channel_credentials, read_pem
from vexil.sendable import CERTIFICATE, PRIVATE_KEY, header_problem

DEFAULT_HTTP_PORT = 3001


class ConnectionOptionsError(ValueError):
    """Unusable connection options (a missing half of a client certificate, an unreadable file)."""


_SCHEME = re.compile(r"^dns:(//[^/]*/)?")
"""gRPC's `dns:` scheme, with or without an authority (`dns:///host:port`, `dns://8.8.8.8/host:port`)."""


def target_address(target: str) -> tuple[str, int | None]:
    """The host and port a gRPC target dials ("" for a host it does not name: `unix:` sockets,
    `:50051`), so the HTTP side and the TLS check reach the same machine as the channel.  Knows
    the forms gRPC resolves: `host:port`, `dns:[//authority/]host:port`, `ipv4:a.b.c.d:port`,
    `ipv6:[::1]:port` and `[::1]:port` (the first address of a list)."""
    rest = _SCHEME.sub("", target, count=1)
    for scheme in ("ipv4:", "ipv6:"):
        if rest.startswith(scheme):
            rest = rest.removeprefix(scheme).split(",", 1)[0]
    if rest.startswith(("unix:", "unix-abstract:", "vsock:")):
        return "", None
    if rest.startswith("["):
        host, _, after = rest[1:].partition("]")
        port = after.removeprefix(":")
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    else:
        host, port = rest, ""  # a bare host (gRPC's default port), or an IPv6 address without one
    return host, int(port) if port.isdigit() else None


class _VerifyAs(ssl.SSLContext):
    """A client context whose connections verify the server's certificate as `name` (and ask for
    it by SNI), whatever host they dial, as `grpc.ssl_target_name_override` does for the channel:
    `http.client` would otherwise check the URL's host, and a certificate naming the service
    fails against the IP address a replica is reached at."""

    name = ""

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side,
            do_handshake_on_connect,
            suppress_ragged_eofs,
            server_hostname=self.name or server_hostname,
            session=session,
        )


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
        host = target_address(self.target)[0] or "127.0.0.1"
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{DEFAULT_HTTP_PORT}"

    def metrics_url(self) -> str:
        return self.base_url() + "/metrics"

    def ssl_context(self) -> ssl.SSLContext | None:
        """For `https` URLs: the same trust, client certificate and server name as the gRPC
        channel, so `/metrics` is verified exactly as the channel is (`server_name` too)."""
        if not self.base_url().startswith("https:"):
            return None
        return self._tls_context()

    def _tls_context(self) -> ssl.SSLContext:
        self.check()
        context = _VerifyAs(ssl.PROTOCOL_TLS_CLIENT)
        context.name = self.server_name
        try:
            if self.ca_cert:
                context.load_verify_locations(cafile=self.ca_cert)
            else:
                context.load_default_certs()
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
