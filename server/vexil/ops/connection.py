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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from vexil.errors import Unauthenticated
from vexil.security.tls import TlsConfigError, channel_credentials, read_pem
from vexil.sendable import CERTIFICATE, PRIVATE_KEY, header_problem, key_pair_problem

DEFAULT_HTTP_PORT = 3001


class ConnectionOptionsError(ValueError):
    """Unusable connection options (a missing half of a client certificate, an unreadable file)."""


class HandshakeRefused(Unauthenticated):
    """The server refused this client's TLS certificate, or the lack of one (mutual TLS)."""


class TlsMismatch(Exception):
    """The client and the server do not agree on TLS: a plaintext client and a TLS server (or
    the reverse), a server certificate the client does not trust or that names another host.
    gRPC reports each as UNAVAILABLE, like a server that is down; this says what to change.
    Not a `VexilError`: it is found on the client and never sent, so it has no reason to send."""

    code = "UNAVAILABLE"


_VERIFY_FAILED = re.compile(r"CERTIFICATE_VERIFY_FAILED: ([^:]+)")
"""gRPC's words for a server certificate that did not verify, and BoringSSL's reason after them."""

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


CLIENT_CERTIFICATE_ALERTS = frozenset(
    {
        "CERTIFICATE_REQUIRED",
        "BAD_CERTIFICATE",
        "UNKNOWN_CA",
        "CERTIFICATE_UNKNOWN",
        "CERTIFICATE_EXPIRED",
        "CERTIFICATE_REVOKED",
        "UNSUPPORTED_CERTIFICATE",
        "ACCESS_DENIED",
    }
)
"""TLS alerts with which a server refuses the client's certificate (or its absence)."""


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
        problem = key_pair_problem(self.client_cert, self.client_key) if self.client_cert else ""
        if problem:
            raise ConnectionOptionsError(f"--client-key {self.client_key} {problem}")

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
                # check() refused an encrypted key already; a password given never prompts.
                context.load_cert_chain(self.client_cert, self.client_key, password=b"")
        except ssl.SSLError as exc:
            raise ConnectionOptionsError(f"TLS files for {self.base_url()}: {exc}") from None
        except OSError as exc:
            files = exc.filename or " / ".join(
                f for f in (self.ca_cert, self.client_cert, self.client_key) if f
            )
            raise ConnectionOptionsError(f"cannot read TLS file {files}: {exc.strerror}") from None
        return context

    def refusal(self, exc: grpc.RpcError) -> str:
        """Why a call that failed UNAVAILABLE was really the server refusing this client's TLS
        certificate (or its lack of one); "" when it was not that.

        gRPC reports such a refusal only as a closed socket, the same UNAVAILABLE as a server that
        is down.  So shake hands once more with the same files through Python's TLS: a server
        that refuses the certificate says so with a TLS alert during the handshake (TLS 1.2) or
        ends the connection right after it without a byte of HTTP/2 (TLS 1.3, as gRPC's server
        does), where one that accepts it sends its HTTP/2 settings at once."""
        if not self.secure or exc.code() is not grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
            return ""
        context = self._tls_context()
        context.set_alpn_protocols(["h2"])
        try:
            with self._handshake(context) as tls:
                if tls.recv(1):
                    return ""  # the server speaks: the handshake was not the problem
                how = "it closed the connection right after the TLS handshake"
        except ssl.SSLError as refused:
            alert = str(refused.reason or "").partition("_ALERT_")[2]
            if alert not in CLIENT_CERTIFICATE_ALERTS:
                return ""
            how = f"TLS alert {alert.lower().replace('_', ' ')}"
        except OSError:
            return ""  # unreachable, or silent: nothing to add to gRPC's own message
        if not self.client_cert:
            return (
                f"the server refused the TLS connection ({how}), as a server requiring mutual TLS"
                " does without a client certificate: give --client-cert and --client-key"
                " (VEXIL_CLIENT_CERT, VEXIL_CLIENT_KEY)"
            )
        return (
            f"the server refused the TLS connection ({how}), as a server requiring mutual TLS does"
            f" with a client certificate it does not accept: --client-cert {self.client_cert} must"
            " be signed by a CA the server trusts for clients, and be valid now"
        )

    def mismatch(self, exc: grpc.RpcError) -> str:
        """What to change when a call failed UNAVAILABLE because the client and the server do not
        agree on TLS; "" when it was not that.

        gRPC names the cause only in the words of its message (its TLS library's), so these are
        matched: a certificate that did not verify, one that names another host, a server that
        answered a TLS hello in plaintext.  A plaintext client to a TLS server sees only a closed
        socket, so that case shakes hands once through Python's TLS to see whether the server
        speaks it."""
        if exc.code() is not grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
            return ""
        details = exc.details() or ""  # type: ignore[attr-defined]
        if self.secure:
            failed = _VERIFY_FAILED.search(details)
            if failed:
                return self._untrusted(failed.group(1).strip())
            if "Hostname Verification Check failed" in details:
                return self._misnamed()
            if "WRONG_VERSION_NUMBER" in details:
                return (
                    f"the server at {self.target} did not answer in TLS: it serves plaintext, or this"
                    " is another port; for a plaintext server drop --tls and --ca-cert (VEXIL_TLS,"
                    " VEXIL_CA_CERT), else check --target"
                )
            return ""
        if "Socket closed" in details and self._certificate(verify=False) is not None:
            return (
                f"the server at {self.target} serves TLS and this client sent plaintext: give --ca-cert"
                " (VEXIL_CA_CERT) the CA that signed the server's certificate, or --tls (VEXIL_TLS=1)"
                " when the system trusts it"
            )
        return ""

    def _untrusted(self, why: str) -> str:
        if "expired" in why or "not yet valid" in why:
            return (
                f"the server's certificate is not valid now ({why}): the server needs a current"
                " one (vexil serve --tls-cert)"
            )
        signer = "no CA this system trusts signed it"
        if self.ca_cert:
            signer = f"--ca-cert {self.ca_cert} did not sign it"
        return (
            f"the server's certificate did not verify ({why}): {signer}; give --ca-cert"
            " (VEXIL_CA_CERT) the CA that signed the server's certificate"
        )

    def _misnamed(self) -> str:
        asked = self.server_name or target_address(self.target)[0]
        certificate = self._certificate(verify=True)
        names = [value for _kind, value in (certificate or {}).get("subjectAltName", ())]
        holds = f" (it names {', '.join(map(str, names))})" if names else ""
        return (
            f"the server's certificate does not name {asked}{holds}: give --tls-server-name"
            " (VEXIL_TLS_SERVER_NAME) a name it holds"
        )

    def _certificate(self, *, verify: bool) -> dict[str, Any] | None:
        """The server's certificate from one TLS handshake (its fields as `getpeercert` gives them;
        {} when not verified, which leaves it undecoded), or None when no TLS handshake completes.
        `verify`: check the chain with this client's trust, but not the name."""
        try:
            if verify:
                context: ssl.SSLContext = self._tls_context()
                context.check_hostname = False
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            with self._handshake(context) as tls:
                return tls.getpeercert() or {}
        except (OSError, ConnectionOptionsError):  # ssl.SSLError is an OSError
            return None

    @contextmanager
    def _handshake(self, context: ssl.SSLContext) -> Iterator[ssl.SSLSocket]:
        """One TLS handshake with the target through Python's TLS, within the call timeout (at
        most 5 s).  OSError (`ssl.SSLError` for TLS's own failures) when it does not complete,
        and for a target with no host and port to dial (`unix:`)."""
        host, port = target_address(self.target)
        if not host or port is None:
            raise OSError(f"{self.target} names no host and port to dial")
        with (
            socket.create_connection((host, port), timeout=min(self.timeout, 5.0)) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            yield tls

    def explained(self, exc: grpc.RpcError) -> HandshakeRefused | TlsMismatch | None:
        """A failed call as what the operator must change (`refusal`, `mismatch`), or None when
        gRPC's own status and message are all there is to say."""
        why = self.mismatch(exc)
        if why:
            return TlsMismatch(why)
        why = self.refusal(exc)
        if why:
            return HandshakeRefused(why)
        return None

    def described(self, exc: grpc.RpcError) -> tuple[str, str]:
        """A failed call's status name and message, as `explained` has it where it can."""
        error = self.explained(exc)
        if error is not None:
            return error.code, str(error)
        return exc.code().name, exc.details()  # type: ignore[attr-defined]

    @contextmanager
    def refusals_explained(self) -> Iterator[None]:
        """Within it, a call that failed for TLS raises what to change (`explained`): a refused
        client certificate as `HandshakeRefused`, a refused credential (exit 5), instead of gRPC's
        UNAVAILABLE (exit 6, "try again later", which would never help); a TLS mismatch as
        `TlsMismatch`, still UNAVAILABLE, with the option to change."""
        try:
            yield
        except grpc.RpcError as exc:
            error = self.explained(exc)
            if error is not None:
                raise error from None
            raise
