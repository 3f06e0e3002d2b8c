"""Why `vexil serve` could not start, as one line a person can act on and an exit code.

| code | start-up failure |
|---|---|
| 2 | bad configuration (a setting, a TLS file) |
| 3 | the DynamoDB table does not exist |
| 4 | an address is in use (the gRPC or HTTP port) |
| 5 | no AWS credentials (or AWS refused them) |
| 6 | DynamoDB unreachable |
| 1 | anything else (the message, and `--log-level DEBUG` for the traceback) |

The codes are those of the CLI's one table (`vexil.cli.exitcodes.ExitCode`), which the README
documents; a test holds the two together.
"""

from __future__ import annotations

import errno
import socket

from vexil.cli.exitcodes import ExitCode
from vexil.config import Settings
from vexil.errors import CannotListen, VexilError
from vexil.store.dynamodb_client import NoCredentials, TableNotFound

ACCESS_DENIED = ("AccessDenied", "UnrecognizedClient", "InvalidSignature", "ExpiredToken")


def ports_in_use(settings: Settings) -> str:
    """Before starting: the listening addresses another process holds, as the one-line message
    (the gRPC core would otherwise log its own multi-line bind error first); "" when free."""
    wanted = [("gRPC", settings.port)] + ([("HTTP", settings.http_port)] if settings.http_port else [])
    busy = []
    for what, port in wanted:
        if not port:
            continue
        try:
            family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((settings.host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                busy.append(f"{settings.host}:{port} ({what})")
    if not busy:
        return ""
    return (
        f"cannot listen on {', '.join(busy)}: address already in use; choose another port"
        " (--port, --http-port) or stop what holds it"
    )


def explain(exc: BaseException, settings: Settings) -> tuple[ExitCode, str]:
    """(exit code, message) for an exception that ended the server's start."""
    if isinstance(exc, CannotListen):
        return (
            ExitCode.CONFLICT,
            f"{exc.message}; choose another port (--port, --http-port) or stop what holds it",
        )
    where = f"region {settings.dynamodb_region}" + (
        f", endpoint {settings.dynamodb_endpoint}" if settings.dynamodb_endpoint else ""
    )
    if isinstance(exc, TableNotFound):
        return ExitCode.NOT_FOUND, (
            f"DynamoDB table {settings.table} not found ({where}): create it with"
            f" `vexil dynamodb create-table --env {settings.env} --table {settings.table}"
            + (f" --dynamodb-endpoint {settings.dynamodb_endpoint}`" if settings.dynamodb_endpoint else "`")
        )
    if isinstance(exc, NoCredentials):
        return ExitCode.NOT_ALLOWED, exc.message
    if isinstance(exc, VexilError):
        if any(word in exc.message for word in ACCESS_DENIED):
            return ExitCode.NOT_ALLOWED, f"AWS refused the credentials ({where}): {exc.message}"
        if exc.code == "UNAVAILABLE":
            return ExitCode.UNAVAILABLE, f"{exc.message} ({where})"
        if exc.code == "INVALID_ARGUMENT":
            return ExitCode.USAGE, exc.message
        return ExitCode.FAILURE, exc.message
    return ExitCode.FAILURE, f"{type(exc).__name__}: {exc} (run with --log-level DEBUG for the traceback)"
