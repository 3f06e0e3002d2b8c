"""The one vocabulary of `VEXIL_*` environment variables that callers of a server read: the
`vexil` command and this client SDK name each thing the same way, from this table.

The server's settings are the other half: each reads `VEXIL_<SETTING>` (`VEXIL_PORT`,
`VEXIL_TLS_CERT`, ...; `vexil.config`), and so do the CLI's commands that work on the DynamoDB
table.  Where two names meant the same thing, the first is the name and the others stay accepted
as aliases (the name wins when both are set).  This module imports nothing of the server, so the
SDK can use it on its own; the README's table of variables is checked against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CLI = "cli"
SDK = "sdk"
SERVER = "server"


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    readers: tuple[str, ...]
    """Who reads it: `cli` (the `vexil` command), `sdk` (this client), `server`."""
    meaning: str
    aliases: tuple[str, ...] = ()
    """Older names still accepted (the README documents them as aliases)."""


TARGET = "VEXIL_TARGET"
ENVIRONMENT = "VEXIL_ENVIRONMENT"
TOKEN = "VEXIL_TOKEN"
TLS = "VEXIL_TLS"
CA_CERT = "VEXIL_CA_CERT"
CLIENT_CERT = "VEXIL_CLIENT_CERT"
CLIENT_KEY = "VEXIL_CLIENT_KEY"
TLS_SERVER_NAME = "VEXIL_TLS_SERVER_NAME"
HTTP_URL = "VEXIL_HTTP_URL"
CONFIG = "VEXIL_CONFIG"

VARIABLES: tuple[Variable, ...] = (
    Variable(TARGET, (CLI, SDK), "host:port of the vexil server (any gRPC target)"),
    Variable(ENVIRONMENT, (CLI, SDK), "environment to work in; default: the credential's, else the server's"),
    Variable(
        TOKEN,
        (CLI, SDK),
        "credential sent as `authorization: Bearer`: an API key or an admin JWT",
        aliases=("VEXIL_API_KEY",),
    ),
    Variable(TLS, (CLI, SDK), "`1`/`true`: TLS with the system's trusted roots"),
    Variable(CA_CERT, (CLI, SDK), "PEM CA file to trust (implies TLS)", aliases=("VEXIL_TLS_ROOT_CERTS",)),
    Variable(CLIENT_CERT, (CLI, SDK), "PEM client certificate for mutual TLS (with the key)"),
    Variable(CLIENT_KEY, (CLI, SDK), "PEM private key of the client certificate"),
    Variable(TLS_SERVER_NAME, (CLI, SDK), "name to verify the server's certificate as"),
    Variable(HTTP_URL, (CLI,), "the server's HTTP side for `/metrics` (`vexil status`, `vexil ops check`)"),
    Variable(CONFIG, (SERVER, CLI), "TOML file of server settings (`vexil serve` and the table commands)"),
    Variable("VEXIL_MODE", (SDK,), "`remote` (an RPC per evaluation) or `local` (in-process from Watch)"),
    Variable("VEXIL_DEADLINE_MS", (SDK,), "milliseconds an evaluation RPC may take"),
    Variable("VEXIL_STALE_GRACE_MS", (SDK,), "milliseconds disconnected before the state turns ERROR"),
    Variable(
        "VEXIL_IDLE_TIMEOUT_MS",
        (SDK,),
        "milliseconds without a Watch message before reconnecting (45,000; never less than twice the "
        "heartbeat interval the server's stream states, plus 1 s)",
    ),
    Variable("VEXIL_FLAGS_FILE", (SDK,), "flagd file served (local mode) until the server answers"),
    Variable("VEXIL_SNAPSHOT_FILE", (SDK,), "where local mode persists its last snapshot"),
    Variable("VEXIL_RETRY_MAX_ATTEMPTS", (SDK,), "attempts of an evaluation call that met UNAVAILABLE"),
    Variable("VEXIL_RETRY_INITIAL_BACKOFF_MS", (SDK,), "first Watch reconnect delay cap"),
    Variable("VEXIL_RETRY_MAX_BACKOFF_MS", (SDK,), "largest Watch reconnect delay cap"),
    Variable("VEXIL_RETRY_MULTIPLIER", (SDK,), "growth of the reconnect delay cap"),
)
"""Every variable a caller of the server reads, by its name (server settings: `VEXIL_<SETTING>`)."""

BY_NAME = {v.name: v for v in VARIABLES}
ALIASES = {alias: v.name for v in VARIABLES for alias in v.aliases}
"""Accepted older name -> the name."""

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


def lookup(environ: Mapping[str, str], name: str) -> tuple[str, str]:
    """`(variable, value)` for the variable `name` (or, unset, its first set alias); `(name, "")`
    when none is set.  The variable is returned so a message can say which one was wrong."""
    for var in (name, *BY_NAME[name].aliases):
        value = environ.get(var, "")
        if value != "":
            return var, value
    return name, ""


def get(environ: Mapping[str, str], name: str, default: str = "") -> str:
    """The value of `name` (or an alias), else `default`."""
    return lookup(environ, name)[1] or default


def flag(raw: str) -> bool:
    """A boolean variable's value (`1`, `true`, `yes`, `on` / `0`, `false`, `no`, `off`, empty);
    anything else is a ValueError, so a typo is refused rather than read as one or the other."""
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(raw)
