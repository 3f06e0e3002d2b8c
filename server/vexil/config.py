"""Server configuration: environment profiles and settings from file, environment and flags.

Precedence, lowest to highest: built-in defaults (from the environment profile), a TOML config
file (`--config` or `VEXIL_CONFIG`), `VEXIL_*` environment variables, command-line flags.
Everything is validated once at start-up, and a bad value stops the server with a message that
names the setting and its source instead of failing later in some unrelated place.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vexil.model import ENVIRONMENT_PATTERN


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it and where it came from."""


@dataclass(frozen=True, slots=True)
class CacheProfile:
    ttl_seconds: float
    """Full reload interval: bounds staleness if the change feed stalls, picks up hand-written items."""
    maxsize: int
    """Most flags one environment snapshot may hold; a load beyond it is refused loudly."""


# From the operations guide; staging mirrors production.
PROFILES: dict[str, CacheProfile] = {
    "local": CacheProfile(ttl_seconds=60, maxsize=100),
    "dev": CacheProfile(ttl_seconds=300, maxsize=1000),
    "staging": CacheProfile(ttl_seconds=600, maxsize=10000),
    "prod": CacheProfile(ttl_seconds=600, maxsize=10000),
}

STORES = ("memory", "dynamodb")


@dataclass(frozen=True)
class Settings:
    env: str = "local"
    """The environment profile, and the default environment of requests that name none."""
    environments: tuple[str, ...] = ()
    """Environments this server serves (default: just `env`)."""
    host: str = "127.0.0.1"
    port: int = 50051
    http_port: int = 3001
    """The HTTP side (OFREP, /healthz, /readyz); 0 turns it off."""
    store: str = "memory"
    flags: str = ""
    """A flagd flag-definition file (JSON or YAML) to serve and hot-reload."""
    dynamodb_table: str = ""
    """Default `feature-flags-<env>`, as in the operations guide."""
    dynamodb_region: str = "ap-northeast-1"
    dynamodb_endpoint: str = ""
    cache_ttl: float = 0.0
    """0: from the profile."""
    cache_maxsize: int = 0
    """0: from the profile."""
    poll_interval: float = 1.0
    heartbeat_seconds: float = 15.0
    watch_queue_size: int = 256
    shutdown_grace: float = 10.0
    log_level: str = "INFO"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Where each non-default setting came from, for error messages."""

    @property
    def profile(self) -> CacheProfile:
        base = PROFILES.get(self.env, PROFILES["prod"])
        return CacheProfile(
            ttl_seconds=self.cache_ttl or base.ttl_seconds,
            maxsize=self.cache_maxsize or base.maxsize,
        )

    @property
    def served_environments(self) -> tuple[str, ...]:
        return self.environments or (self.env,)

    @property
    def table(self) -> str:
        return self.dynamodb_table or f"feature-flags-{self.env}"


FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "sources"}


def _coerce(name: str, raw: Any, source: str) -> Any:
    kind = FIELDS[name].type
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "tuple[str, ...]":
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} (from {source}): {raw!r} is not a valid {kind}") from None


def load(
    *,
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Merge defaults, config file, environment and command-line values, then validate."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    path = config_file or environ.get("VEXIL_CONFIG", "")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        for key, raw in data.items():
            name = key.replace("-", "_")
            if name not in FIELDS:
                raise ConfigError(f"config file {path}: unknown setting '{key}'")
            values[name] = _coerce(name, raw, f"config file {path}")
            sources[name] = f"config file {path}"

    for name in FIELDS:
        var = f"VEXIL_{name.upper()}"
        if var in environ and environ[var] != "":
            values[name] = _coerce(name, environ[var], var)
            sources[name] = var

    for name, raw in (cli or {}).items():
        if raw is None:
            continue
        if name not in FIELDS:
            raise ConfigError(f"unknown setting '{name}'")
        flag = "--" + name.replace("_", "-")
        values[name] = _coerce(name, raw, flag)
        sources[name] = flag

    settings = Settings(**values, sources=sources)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    def where(name: str) -> str:
        return settings.sources.get(name, "default")

    if settings.env not in PROFILES:
        raise ConfigError(
            f"env (from {where('env')}): '{settings.env}' is not a profile; use one of {', '.join(PROFILES)}"
        )
    for env in settings.served_environments:
        if not ENVIRONMENT_PATTERN.fullmatch(env):
            raise ConfigError(f"environments (from {where('environments')}): '{env}' is not a valid name")
    if not 0 < settings.port < 65536:
        raise ConfigError(f"port (from {where('port')}): {settings.port} is not a TCP port")
    if not 0 <= settings.http_port < 65536:
        raise ConfigError(
            f"http_port (from {where('http_port')}): {settings.http_port} is not a TCP port (0 turns it off)"
        )
    if settings.http_port == settings.port:
        raise ConfigError(f"http_port (from {where('http_port')}): {settings.http_port} is the gRPC port")
    if settings.store not in STORES:
        raise ConfigError(
            f"store (from {where('store')}): '{settings.store}' is unknown; use {' or '.join(STORES)}"
        )
    if settings.flags and not Path(settings.flags).is_file():
        raise ConfigError(f"flags (from {where('flags')}): no such file: {settings.flags}")
    for name in ("poll_interval", "heartbeat_seconds", "shutdown_grace"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} (from {where(name)}): must be greater than 0")
    for name in ("cache_ttl", "cache_maxsize"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name} (from {where(name)}): must not be negative (0 means the profile's)")
    if settings.watch_queue_size < 1:
        raise ConfigError(f"watch_queue_size (from {where('watch_queue_size')}): must be at least 1")
