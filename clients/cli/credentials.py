"""The CLI's connection options: where the server is, TLS and the credential, for every command
that talks to a server (`serve`'s own security flags are generated with its settings).

Remote commands send `--token` (or `VEXIL_TOKEN`) as `authorization: Bearer`, and talk TLS when
given a CA (`--ca-cert`, for a private CA), a client certificate (mutual TLS) or `--tls` (the
system's trusted roots).  Every option also reads a `VEXIL_*` variable, named as the client SDK
names it (`vexil.client.envvars`, aliases included), so a shell can be set up once for both.
"""

from __future__ import annotations

import argparse
import os

import grpc

from vexil.cli import numbers
from vexil.cli.output import add_output_options
from vexil.client import envvars
from vexil.ops.connection import Connection, ConnectionOptionsError

MOST_TIMEOUT = numbers.DAY
"""The longest `--timeout`: a day (gRPC cannot wait much beyond 2e9 seconds, and fails at once)."""


def add_connection_options(
    p: argparse.ArgumentParser, *, output: bool = True, environment: bool = True, http: bool = False
) -> None:
    """What every command that talks to a server takes: where, which environment, how to print,
    how long to wait, which credential, and TLS; with `http`, where the server's HTTP side is.
    `output`/`environment` False: the command defines its own `--json` / `-e`."""
    p.add_argument("--target", default=_env(envvars.TARGET, "localhost:50051"), help="server address")
    if environment:
        p.add_argument(
            "-e",
            "--environment",
            default=_env(envvars.ENVIRONMENT),
            help="environment (default: the credential's, else the server's)",
        )
    if output:
        add_output_options(p)
    p.add_argument(
        "--timeout",
        type=numbers.positive(MOST_TIMEOUT),
        default=10.0,
        help=f"seconds per call (default 10, at most {MOST_TIMEOUT:g})",
    )
    p.add_argument(
        "--token",
        default=_env(envvars.TOKEN),
        help="credential sent as 'authorization: Bearer' (also VEXIL_TOKEN, or VEXIL_API_KEY)",
    )
    if http:
        p.add_argument(
            "--http-url",
            default=_env(envvars.HTTP_URL),
            help="the server's HTTP side, e.g. https://vexil.internal:3001 (also VEXIL_HTTP_URL;"
            " default: the target's host, port 3001, https when TLS is on)",
        )
    add_tls_options(p)


def _env(name: str, default: str = "") -> str:
    """A connection option's default: its `VEXIL_*` variable (or an alias of it)."""
    return envvars.get(os.environ, name, default)


def add_tls_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="use TLS with the system's trusted roots (also VEXIL_TLS=1)",
    )
    p.add_argument(
        "--ca-cert", default=_env(envvars.CA_CERT), help="PEM CA to trust (implies TLS; also VEXIL_CA_CERT)"
    )
    p.add_argument("--client-cert", default=_env(envvars.CLIENT_CERT), help="PEM client certificate (mTLS)")
    p.add_argument("--client-key", default=_env(envvars.CLIENT_KEY), help="PEM key of --client-cert")
    p.add_argument(
        "--tls-server-name", default=_env(envvars.TLS_SERVER_NAME), help="name to verify the server as"
    )


def _tls(args: argparse.Namespace) -> bool:
    """`--tls`, else `VEXIL_TLS` read as the client SDK reads it; a value that is neither true nor
    false is refused (a usage error) rather than guessed."""
    if args.tls:
        return True
    name, raw = envvars.lookup(os.environ, envvars.TLS)
    try:
        return envvars.flag(raw)
    except ValueError:
        raise ConnectionOptionsError(f"{name}={raw!r}: use 1, true, yes, on or 0, false, no, off") from None


def connection(args: argparse.Namespace) -> Connection:
    """The connection options of `add_connection_options` as one `Connection`."""
    return Connection(
        target=args.target,
        token=args.token,
        timeout=args.timeout,
        tls=_tls(args),
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
