"""The CLI's security options: TLS and credentials for remote commands, security flags for `serve`.

Remote commands send `--token` (or `VEXIL_TOKEN`) as `authorization: Bearer`, and talk TLS when
given a CA (`--ca-cert`, for a private CA), a client certificate (mutual TLS) or `--tls` (the
system's trusted roots).  Every option also reads a `VEXIL_*` variable, so a shell can be set up
once.  Secrets never go on a command line of `serve`: the JWT secret is a file, and the bootstrap
admin key comes from `VEXIL_BOOTSTRAP_ADMIN_KEY` (or the config file).
"""

from __future__ import annotations

import argparse
import os

import grpc

from vexil.ops.connection import Connection, ConnectionOptionsError

SERVE_SETTINGS = (
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "auth_mode",
    "insecure",
    "jwt_secret_file",
    "jwt_public_key",
    "jwt_jwks_file",
    "jwt_issuer",
    "jwt_audience",
    "jwt_clock_skew",
    "rate_limits",
    "rate_limit_admin",
    "rate_limit_admin_roles",
    "rate_limit_evaluation",
    "rate_limit_evaluation_client",
    "rate_limit_evaluation_roles",
    "rate_limit_evaluation_keys",
    "key_cache_ttl",
    "key_lifetime_days",
    "key_max_lifetime_days",
    "key_rotation_overlap_hours",
)
"""The security settings `vexil serve` takes as flags (the names of `vexil.config.Settings`)."""


def _flag_value(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def add_serve_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("security (see the README's Security section)")
    g.add_argument("--tls-cert", help="PEM certificate chain: serve TLS on both ports (with --tls-key)")
    g.add_argument("--tls-key", help="PEM private key of --tls-cert")
    g.add_argument("--tls-client-ca", help="PEM CA bundle: require client certificates it signed (mTLS)")
    g.add_argument(
        "--auth-mode",
        choices=["required", "none"],
        help="require credentials (default: required outside the local profile)",
    )
    g.add_argument(
        "--insecure",
        nargs="?",
        const=True,
        type=_flag_value,
        help="allow a profile other than local without TLS or authentication (development only)",
    )
    g.add_argument("--jwt-secret-file", help="file holding the HS256 shared secret for admin JWTs")
    g.add_argument("--jwt-public-key", help="PEM public key for RS256/ES256 admin JWTs")
    g.add_argument("--jwt-jwks-file", help="JWKS file with the admin JWT signing keys")
    g.add_argument("--jwt-issuer", help="required 'iss' of admin JWTs")
    g.add_argument("--jwt-audience", help="required 'aud' of admin JWTs")
    g.add_argument("--jwt-clock-skew", type=float, help="seconds of clock skew tolerated (default 30)")
    g.add_argument("--rate-limits", choices=["on", "off"], help="default: on when authentication is")
    g.add_argument("--rate-limit-admin", type=float, help="admin calls per minute per client (default 100)")
    g.add_argument("--rate-limit-admin-roles", help="per-role admin limits, e.g. admin=600,editor=200")
    g.add_argument(
        "--rate-limit-evaluation", type=float, help="evaluation calls per second, server-wide (default 10000)"
    )
    g.add_argument(
        "--rate-limit-evaluation-client",
        type=float,
        help="evaluation calls per second per client: key, JWT subject or anonymous address (default 1000)",
    )
    g.add_argument(
        "--rate-limit-evaluation-roles", help="per-role evaluation quotas, e.g. evaluator=5000,anonymous=50"
    )
    g.add_argument("--rate-limit-evaluation-keys", help="per-key evaluation quotas by key id, e.g. <id>=8000")
    g.add_argument(
        "--key-cache-ttl", type=float, help="seconds API key lookups are cached (default 30, max 60)"
    )
    g.add_argument("--key-lifetime-days", type=float, help="default API key lifetime (default 90)")
    g.add_argument(
        "--key-max-lifetime-days", type=float, help="longest API key lifetime a request may ask (default 365)"
    )
    g.add_argument(
        "--key-rotation-overlap-hours", type=float, help="old secret's grace after a rotation (default 24)"
    )


def add_connection_options(
    p: argparse.ArgumentParser, *, output: bool = True, environment: bool = True, http: bool = False
) -> None:
    """What every command that talks to a server takes: where, which environment, how to print,
    how long to wait, which credential, and TLS; with `http`, where the server's HTTP side is.
    `output`/`environment` False: the command defines its own `--json` / `-e`."""
    env = os.environ.get
    p.add_argument("--target", default=env("VEXIL_TARGET", "localhost:50051"), help="server address")
    if environment:
        p.add_argument(
            "-e",
            "--environment",
            default=env("VEXIL_ENVIRONMENT", ""),
            help="environment (default: the credential's, else the server's)",
        )
    if output:
        p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default 10)")
    p.add_argument(
        "--token",
        default=env("VEXIL_TOKEN", ""),
        help="credential sent as 'authorization: Bearer' (also VEXIL_TOKEN)",
    )
    if http:
        p.add_argument(
            "--http-url",
            default=env("VEXIL_HTTP_URL", ""),
            help="the server's HTTP side, e.g. https://vexil.internal:3001 (also VEXIL_HTTP_URL;"
            " default: the target's host, port 3001, https when TLS is on)",
        )
    add_tls_options(p)


def add_tls_options(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument(
        "--tls",
        action="store_true",
        default=env("VEXIL_TLS", "") not in ("", "0", "false"),
        help="use TLS with the system's trusted roots (also VEXIL_TLS=1)",
    )
    p.add_argument("--ca-cert", default=env("VEXIL_CA_CERT", ""), help="PEM CA to trust (implies TLS)")
    p.add_argument(
        "--client-cert", default=env("VEXIL_CLIENT_CERT", ""), help="PEM client certificate (mTLS)"
    )
    p.add_argument("--client-key", default=env("VEXIL_CLIENT_KEY", ""), help="PEM key of --client-cert")
    p.add_argument(
        "--tls-server-name", default=env("VEXIL_TLS_SERVER_NAME", ""), help="name to verify the server as"
    )


def connection(args: argparse.Namespace) -> Connection:
    """The connection options of `add_connection_options` as one `Connection`."""
    return Connection(
        target=args.target,
        token=args.token,
        timeout=args.timeout,
        tls=args.tls,
        ca_cert=args.ca_cert,
        client_cert=args.client_cert,
        client_key=args.client_key,
        server_name=args.tls_server_name,
        http_url=getattr(args, "http_url", ""),
    )


def channel(args: argparse.Namespace, usage_error: type[Exception] = ValueError) -> grpc.Channel:
    """A channel to `args.target`: TLS if any TLS option is given, else plaintext (local).
    Unusable options raise `usage_error` (the CLI's own, so it exits with its usage code)."""
    try:
        return connection(args).channel()
    except ConnectionOptionsError as exc:
        raise usage_error(str(exc)) from None


def bearer_metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")] if token else []
