"""Client configuration: constructor arguments over `VEXIL_*` environment variables over defaults.

Everything a deployment varies (where the server is, which credentials, local or remote
evaluation, TLS, deadlines, retries, bootstrap files) can be set without code changes through
the environment, while tests and explicit callers pass arguments.  A bad value fails at
construction with a message naming the setting and where it came from, never later on the
evaluation path (which must not raise).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict

from vexil.client import envvars
from vexil.sendable import CERTIFICATE, PRIVATE_KEY, header_problem, is_pem, key_pair_problem

DEFAULT_TARGET = "127.0.0.1:50051"


class ConfigError(ValueError):
    """A client setting is invalid; the message names it and its source."""


class Mode(StrEnum):
    """Where evaluation happens."""

    REMOTE = "remote"
    """Every evaluation is an `Evaluate` RPC (always the server's latest data; one round trip)."""
    LOCAL = "local"
    """Evaluate in-process from a snapshot kept current by `Watch` (microseconds, no network)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the client retries.

    `max_attempts` applies to unary evaluation calls that fail with UNAVAILABLE, and all attempts
    share the one evaluation deadline (gRPC's transparent retry), so a retry never makes a caller
    wait longer.  The backoff settings drive Watch reconnects: exponential growth from
    `initial_backoff` to `max_backoff` with full jitter (a random delay between 0 and the cap),
    so a fleet of clients that lost the same server does not reconnect in lockstep.
    """

    max_attempts: int = 3
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0

    def cap(self, attempt: int) -> float:
        """The largest delay before reconnect attempt `attempt` (0-based)."""
        try:
            grown = self.initial_backoff * self.multiplier**attempt
        except OverflowError:
            grown = self.max_backoff
        return min(self.max_backoff, grown)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Resolved client settings (see `load_config` for how they are gathered)."""

    target: str = DEFAULT_TARGET
    """host:port of a vexil server (or any gRPC target string, e.g. `dns:///vexil:50051`)."""
    environment: str = ""
    """Environment to evaluate in; empty: the API key's environment, else the server's default."""
    api_key: str = field(default="", repr=False)
    """Sent as `authorization: Bearer <key>` on every call."""
    mode: Mode = Mode.REMOTE
    tls: bool = False
    """Use TLS.  False (plaintext) suits the local profile on loopback only."""
    root_certificates: str = ""
    """PEM file of the CAs to trust (default: the system's); setting it implies TLS."""
    client_certificate: str = ""
    """PEM client certificate chain for mutual TLS (with `client_key`); setting it implies TLS."""
    client_key: str = field(default="", repr=False)
    """PEM private key of `client_certificate`."""
    tls_server_name: str = ""
    """Override the name checked in the server's certificate (tests, IP targets)."""
    deadline: float = 0.2
    """Seconds an evaluation RPC may take before the caller gets its default."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stale_grace: float = 10.0
    """Seconds disconnected (STALE) before the state turns ERROR; data keeps being served."""
    idle_timeout: float = 45.0
    """Seconds without any Watch message before reconnecting; never less than twice the heartbeat
    interval the server's stream states (15 s by default), plus 1 s."""
    flags_file: str = ""
    """flagd flag-definition file to serve (local mode) until the server has answered."""
    snapshot_file: str = ""
    """Where the last snapshot is persisted, and loaded from at start (local mode)."""

    def __post_init__(self) -> None:
        validate(self)

    @property
    def uses_tls(self) -> bool:
        return self.tls or bool(self.root_certificates or self.client_certificate)


class ClientOptions(TypedDict, total=False):
    """Keyword arguments accepted by `Client`, `AsyncClient` and `load_config`."""

    target: str
    environment: str
    api_key: str
    mode: Mode | str
    tls: bool
    root_certificates: str
    client_certificate: str
    client_key: str
    tls_server_name: str
    deadline: float
    retry: RetryPolicy
    stale_grace: float
    idle_timeout: float
    flags_file: str
    snapshot_file: str


def _millis(raw: str) -> float:
    return float(raw) / 1000.0


# Environment variable (`vexil.client.envvars`, shared with the `vexil` command; its aliases too)
# -> (field, parser).  Durations are milliseconds in the environment (the unit operators use for
# deadlines) and seconds in Python.
ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    envvars.TARGET: ("target", str),
    envvars.ENVIRONMENT: ("environment", str),
    envvars.TOKEN: ("api_key", str),
    "VEXIL_MODE": ("mode", str),
    envvars.TLS: ("tls", envvars.flag),
    envvars.CA_CERT: ("root_certificates", str),
    envvars.CLIENT_CERT: ("client_certificate", str),
    envvars.CLIENT_KEY: ("client_key", str),
    envvars.TLS_SERVER_NAME: ("tls_server_name", str),
    "VEXIL_DEADLINE_MS": ("deadline", _millis),
    "VEXIL_STALE_GRACE_MS": ("stale_grace", _millis),
    "VEXIL_IDLE_TIMEOUT_MS": ("idle_timeout", _millis),
    "VEXIL_FLAGS_FILE": ("flags_file", str),
    "VEXIL_SNAPSHOT_FILE": ("snapshot_file", str),
}
RETRY_ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "VEXIL_RETRY_MAX_ATTEMPTS": ("max_attempts", int),
    "VEXIL_RETRY_INITIAL_BACKOFF_MS": ("initial_backoff", _millis),
    "VEXIL_RETRY_MAX_BACKOFF_MS": ("max_backoff", _millis),
    "VEXIL_RETRY_MULTIPLIER": ("multiplier", float),
}
_FIELDS = {f.name for f in dataclasses.fields(ClientConfig)}


def load_config(
    config: ClientConfig | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> ClientConfig:
    """Settings from, lowest to highest precedence: defaults (or `config`), `VEXIL_*`, `options`.

    When a whole `config` is given the environment is not consulted (the caller has decided).
    """
    unknown = set(options) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown client option(s): {', '.join(sorted(unknown))}")
    if config is not None:
        return dataclasses.replace(config, **_coerced(options)) if options else config
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var, (name, parse) in ENVIRONMENT.items():
        used, raw = envvars.lookup(environ, var)
        if raw != "":
            values[name] = _parse(used, raw, parse)
    retry: dict[str, Any] = {}
    for var, (name, parse) in RETRY_ENVIRONMENT.items():
        raw = environ.get(var, "")
        if raw != "":
            retry[name] = _parse(var, raw, parse)
    if retry:
        values["retry"] = _retry(retry, "VEXIL_RETRY_*")
    values.update(_coerced({k: v for k, v in options.items() if v is not None}))
    return ClientConfig(**values)


def _parse(var: str, raw: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not valid") from None


def _retry(values: Mapping[str, Any], source: str) -> RetryPolicy:
    try:
        return RetryPolicy(**values)
    except TypeError as exc:
        raise ConfigError(f"retry (from {source}): {exc}") from None


def _coerced(options: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(options)
    if "mode" in out:
        out["mode"] = str(out["mode"]).lower()
    return out


def validate(config: ClientConfig) -> None:
    """Refuse settings that cannot work (called for every `ClientConfig`)."""
    try:
        mode = Mode(str(config.mode).lower())
    except ValueError:
        raise ConfigError(f"mode must be 'remote' or 'local', not {config.mode!r}") from None
    object.__setattr__(config, "mode", mode)
    if not config.target:
        raise ConfigError("target is required (host:port of a vexil server)")
    for name in ("deadline", "stale_grace", "idle_timeout"):
        if not getattr(config, name) > 0:
            raise ConfigError(f"{name} must be greater than 0, got {getattr(config, name)!r}")
    retry = config.retry
    if not isinstance(retry, RetryPolicy):
        raise ConfigError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    if retry.max_attempts < 1:
        raise ConfigError("retry.max_attempts must be at least 1")
    if not 0 < retry.initial_backoff <= retry.max_backoff:
        raise ConfigError("retry backoff must satisfy 0 < initial_backoff <= max_backoff")
    if retry.multiplier < 1:
        raise ConfigError("retry.multiplier must be at least 1")
    if bool(config.client_certificate) != bool(config.client_key):
        raise ConfigError("client_certificate and client_key go together (mutual TLS): set both or neither")
    problem = header_problem(config.api_key)
    if problem:
        raise ConfigError(f"api_key holds characters a header cannot carry: {problem}")
    for name, what in (
        ("root_certificates", CERTIFICATE),
        ("client_certificate", CERTIFICATE),
        ("client_key", PRIVATE_KEY),
    ):
        path = getattr(config, name)
        if path and not os.path.isfile(path):
            raise ConfigError(f"{name}: no such file: {path}")
        if path and not is_pem(Path(path).read_bytes(), what):
            raise ConfigError(f"{name}: not a PEM {what}: {path}")
    pair = config.client_certificate, config.client_key
    problem = key_pair_problem(*pair) if config.client_certificate else ""
    if problem:
        raise ConfigError(f"client_key {config.client_key} {problem}")
    if config.flags_file and not os.path.isfile(config.flags_file):
        raise ConfigError(f"flags_file: no such file: {config.flags_file}")
