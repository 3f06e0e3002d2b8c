"""Server configuration: environment profiles and settings from file, environment and flags.

Precedence, lowest to highest: built-in defaults (from the environment profile), a TOML config
file (`--config` or `VEXIL_CONFIG`), `VEXIL_*` environment variables, command-line flags.
Everything is validated once at start-up, and a bad value stops the server with a message that
names the setting and its source instead of failing later in some unrelated place.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
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
FLAGS_MODES = ("seed", "sync")


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
    cors_origins: tuple[str, ...] = ()
    """Browser origins (`scheme://host[:port]`, or `*` for any) that may call OFREP: preflights
    answered and `Access-Control-Allow-Origin` sent (flagd's `cors-origin`); none by default."""
    store: str = "memory"
    flags: str = ""
    """A flagd flag-definition file (JSON or YAML) to serve and hot-reload."""
    flags_mode: str = ""
    """What `flags` may do to the store: `seed` (create missing flags only) or `sync` (also update
    and delete the flags the file created).  Required with the DynamoDB store, where the table is
    shared with other replicas and operators; the memory store defaults to `sync`."""
    dynamodb_table: str = ""
    """Default `feature-flags-<env>`, as in the operations guide."""
    dynamodb_region: str = "ap-northeast-1"
    dynamodb_endpoint: str = ""
    cache_ttl: float = 0.0
    """0: from the profile."""
    cache_maxsize: int = 0
    """0: from the profile."""
    poll_interval: float = 1.0
    change_log_retention: float = 7 * 24 * 3600.0
    """Seconds a change-log entry is kept (DynamoDB: its `expiresAt` TTL attribute).  A Watch
    resuming from an older version gets a snapshot instead of the changes.  Default: a week."""
    change_log_max_entries: int = 10_000
    """Most change-log entries kept per environment; older ones are trimmed after each write."""
    write_timeout: float = 5.0
    """The write deadline: seconds one admin write may take against the store, retries
    included, before it fails with UNAVAILABLE (instead of hanging on a stalled database)."""
    heartbeat_seconds: float = 15.0
    watch_queue_size: int = 256
    max_connections: int = 0
    """Most connections each listener (gRPC, HTTP) holds at once; one more is refused at once
    (gRPC UNAVAILABLE, HTTP 503).  0: 10,000, or the listeners' share of the open-file limit
    when that is lower (`vexil.connections`)."""
    http_client_timeout: float = 75.0
    """Seconds vexil waits on an HTTP client: for a request on an open connection (its head
    included: a head sent a byte at a time is cut off), and for a request's body once its head
    has come (then 408).  Keep it above the idle timeout of a load balancer in front (AWS ALB:
    60 s), so that the balancer closes idle connections first."""
    evaluation_budget_operations: int = 20_000
    """Operations one evaluation may spend where work grows with the data (iterations of
    map/filter/reduce/all/some/none times their sub-rule's size, merge, in over a computed
    array): a few ms at most.  Past it the flag resolves ERROR "evaluation budget exceeded"."""
    evaluation_budget_characters: int = 1_000_000
    """Characters of strings (cat, substr) and elements of arrays (merge) one evaluation may build."""
    evaluate_all_max_keys: int = 1000
    """Most `flag_keys` one EvaluateAll may name (duplicates count once)."""
    shutdown_grace: float = 10.0
    drain_seconds: float = 5.0
    """On SIGTERM: seconds of serving on while health says NOT_SERVING (load balancers move
    away), before new calls are refused and in-flight ones get `shutdown_grace`."""
    log_level: str = "INFO"
    workers: int = 1
    """Server processes on one port (SO_REUSEPORT): the parent starts `workers - 1` children, each a
    full server following the change log, so more than one needs a shared store (DynamoDB)."""
    cloudwatch_namespace: str = ""
    """Publish the alarm metrics (latency p50/p99, requests, server errors, DynamoDB throttles,
    snapshot age) to CloudWatch under this namespace, e.g. `Vexil/prod`; empty: off."""
    cloudwatch_interval: float = 60.0
    """Seconds between two PutMetricData batches (at least 1; 60 matches the alarms' periods)."""
    cloudwatch_region: str = ""
    """Region of the CloudWatch metrics; empty: `dynamodb_region`."""
    cloudwatch_endpoint: str = ""
    """CloudWatch endpoint URL (an emulator); empty: the region's."""
    advertise_address: str = ""
    """`host:port` the other replicas reach this one's gRPC port at (pokes after a write); empty:
    `host:port`, with this machine's host name when `host` is a wildcard (0.0.0.0, ::)."""
    replica_heartbeat: float = 2.0
    """Seconds between two writes of this replica's registry record (also written at once
    whenever it applies a new config_version)."""
    replica_expiry: float = 10.0
    """Seconds after its last heartbeat that a replica drops out of the registry (a replica that
    died); at least twice `replica_heartbeat`."""
    replica_pokes: bool = True
    """After a write, poke the other live replicas so they read the change log at once; off: they
    find the write at their next poll (`poll_interval`)."""

    # -- security (see vexil.security and the README's "Security" section) --
    tls_cert: str = ""
    """PEM certificate chain for both listeners; with `tls_key`, turns TLS on."""
    tls_key: str = ""
    tls_client_ca: str = ""
    """PEM CA bundle: clients must present a certificate it signed (mutual TLS)."""
    auth_mode: str = ""
    """`required` or `none`; default: `none` for the local profile unless credentials are
    configured (JWT key, bootstrap key), `required` for every other profile."""
    insecure: bool = False
    """Let a profile other than local run without TLS or authentication (a development loop)."""
    jwt_secret_file: str = ""
    """File holding the HS256 shared secret (a file, so the secret never appears in argv)."""
    jwt_public_key: str = ""
    """PEM public key file: RS256 (RSA) or ES256 (P-256)."""
    jwt_jwks_file: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_clock_skew: float = 30.0
    """Seconds of clock difference tolerated on exp/iat/nbf (at most 300)."""
    rate_limits: str = ""
    """`on` or `off`; default: on when authentication is required."""
    rate_limit_admin: float = 100.0
    """Admin API calls per minute per client (0: unlimited)."""
    rate_limit_admin_roles: tuple[str, ...] = ()
    """Per-role overrides of `rate_limit_admin`, e.g. `admin=600,editor=200`."""
    rate_limit_evaluation: float = 10000.0
    """Evaluation calls per second for the whole server (0: unlimited)."""
    rate_limit_evaluation_client: float = 1000.0
    """Evaluation calls per second per client: its API key, JWT subject, or peer address when
    anonymous (0: unlimited).  Checked before the server-wide cap, so one client over its quota
    never uses up the others' share."""
    rate_limit_evaluation_roles: tuple[str, ...] = ()
    """Per-role overrides of `rate_limit_evaluation_client`, e.g. `evaluator=5000,anonymous=50`."""
    rate_limit_evaluation_keys: tuple[str, ...] = ()
    """Per-API-key overrides (by key id), e.g. `0123456789abcdef=8000`."""
    key_cache_ttl: float = 30.0
    """Seconds a key lookup is cached: bounds how long a revocation takes on other replicas."""
    key_lifetime_days: float = 90.0
    """Lifetime of a key created or rotated without one."""
    key_max_lifetime_days: float = 365.0
    """The longest lifetime a key may be given; longer requests are refused (INVALID_ARGUMENT)."""
    key_rotation_overlap_hours: float = 24.0
    """How long a rotated key's old secret keeps working (default for RotateKey)."""
    replica_secret_file: str = ""
    """File holding the secret replicas authenticate their pokes with (the same file on every
    replica).  With authentication required, pokes are sent and accepted only with it."""
    replica_ca_cert: str = ""
    """PEM CA bundle trusted for the other replicas' TLS certificates when poking them (default:
    the system's roots); with `tls_client_ca`, this replica presents `tls_cert` as its client
    certificate."""
    replica_tls_server_name: str = ""
    """The name to verify the other replicas' TLS certificates against when poking them (their
    addresses are often pod IPs that the certificate does not name); empty: each address's host."""
    replica_poke_rate: float = 20.0
    """Pokes per second accepted from one caller (and ten times that from all callers); more are
    refused with RESOURCE_EXHAUSTED.  Each accepted poke costs at most one change-log read."""
    bootstrap_admin_key: str = field(default="", repr=False, metadata={"secret": True})
    """An admin token (`vexil keys create --bootstrap` prints one) registered at start if absent."""
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
    def file_mode(self) -> str:
        """`flags_mode`, or the memory store's default (`sync`: the process owns its store)."""
        return self.flags_mode or "sync"

    @property
    def served_environments(self) -> tuple[str, ...]:
        return self.environments or (self.env,)

    @property
    def table(self) -> str:
        return self.dynamodb_table or f"feature-flags-{self.env}"

    @property
    def replica_address(self) -> str:
        """Where other replicas reach this one (`advertise_address`, else host and port)."""
        if self.advertise_address:
            return self.advertise_address
        host = self.host
        if host in ("0.0.0.0", "::", "[::]", ""):
            import socket

            host = socket.gethostname()
        return f"[{host}]:{self.port}" if ":" in host and not host.startswith("[") else f"{host}:{self.port}"

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_secret_file or self.jwt_public_key or self.jwt_jwks_file)

    @property
    def auth_required(self) -> bool:
        """Whether every call but health and reflection needs credentials (see `auth_mode`)."""
        if self.auth_mode:
            return self.auth_mode == "required"
        return self.env != "local" or self.jwt_enabled or bool(self.bootstrap_admin_key)

    @property
    def rate_limits_active(self) -> bool:
        if self.rate_limits:
            return self.rate_limits == "on"
        return self.auth_required

    @property
    def admin_rate_limits(self) -> dict[str, float]:
        """`rate_limit_admin_roles` as role -> calls per minute (validated by `validate`)."""
        return _limits(self.rate_limit_admin_roles)

    @property
    def evaluation_role_quotas(self) -> dict[str, float]:
        """`rate_limit_evaluation_roles` as role -> calls per second (validated by `validate`)."""
        return _limits(self.rate_limit_evaluation_roles)

    @property
    def evaluation_key_quotas(self) -> dict[str, float]:
        """`rate_limit_evaluation_keys` as key id -> calls per second (validated by `validate`)."""
        return _limits(self.rate_limit_evaluation_keys)


def _limits(entries: tuple[str, ...]) -> dict[str, float]:
    """`name=number` entries as a mapping."""
    limits = {}
    for entry in entries:
        name, _, limit = entry.partition("=")
        limits[name.strip()] = float(limit)
    return limits


FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "sources"}
SECRET_SETTINGS = frozenset(name for name, f in FIELDS.items() if f.metadata.get("secret"))
"""Settings whose values are secrets: never printed, never passed on a command line."""
AUTH_MODES = ("none", "required")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
BOOTSTRAP_KEY = re.compile(r"vxk_[0-9a-f]{16}_[A-Za-z0-9_\-]{32,128}")
"""The API key token format (`vexil.security.apikeys`), checked here so a typo stops start-up."""
ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):[0-9]{1,5}")
"""`host:port` of `advertise_address` (an IPv6 host in brackets)."""
TABLE_NAME = re.compile(r"[A-Za-z0-9_.\-]{3,255}")
"""DynamoDB's rule for a table name: 3 to 255 of these characters."""
TABLE_NAME_RULE = "3 to 255 characters from A-Z a-z 0-9 _ . - (DynamoDB's rule for table names)"
ORIGIN = re.compile(r"(?i:https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
"""A browser origin as `Origin` headers carry it: scheme, host, optional port, nothing else."""
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


def _coerce(name: str, raw: Any, source: str) -> Any:
    kind = FIELDS[name].type
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in TRUE + FALSE:
                raise ValueError(text)
            return text in TRUE
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
    options: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, config file, environment and command-line values, then validate.
    `options`: the command's own option for a setting where it is not `--<setting>` (a message
    names the option the user typed)."""
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
        flag = (options or {}).get(name) or "--" + name.replace("_", "-")
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
    for setting in dataclasses.fields(settings):
        value = getattr(settings, setting.name)
        if isinstance(value, float) and not math.isfinite(value):
            # Every bound below would let inf or nan through (nan <= 0 is false), and a duration
            # of either breaks what waits on it.
            name = setting.name
            raise ConfigError(f"{name} (from {where(name)}): must be a finite number, not {value}")
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
    for origin in settings.cors_origins:
        if origin != "*" and not ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"cors_origins (from {where('cors_origins')}): {origin!r} is not an origin; write "
                "scheme://host[:port] without a path (e.g. https://app.example.com), or * for any"
            )
    if settings.store not in STORES:
        raise ConfigError(
            f"store (from {where('store')}): '{settings.store}' is unknown; use {' or '.join(STORES)}"
        )
    if not TABLE_NAME.fullmatch(settings.table):
        raise ConfigError(
            f"dynamodb_table (from {where('dynamodb_table')}): {settings.table[:80]!r} is not a table name;"
            f" use {TABLE_NAME_RULE}"
        )
    if settings.flags and not Path(settings.flags).is_file():
        raise ConfigError(f"flags (from {where('flags')}): no such file: {settings.flags}")
    if settings.flags_mode not in ("", *FLAGS_MODES):
        raise ConfigError(
            f"flags_mode (from {where('flags_mode')}): '{settings.flags_mode}' is unknown; "
            f"use {' or '.join(FLAGS_MODES)}"
        )
    if settings.flags and settings.store == "dynamodb" and not settings.flags_mode:
        raise ConfigError(
            f"flags (from {where('flags')}): the DynamoDB table is shared, so say what the file may do "
            "to it: --flags-mode seed (create missing flags only) or --flags-mode sync (also update "
            "and delete the flags the file created; never other flags, never a kill)"
        )
    positive = (
        "poll_interval",
        "write_timeout",
        "heartbeat_seconds",
        "shutdown_grace",
        "http_client_timeout",
    )
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} (from {where(name)}): must be greater than 0")
    for name in ("cache_ttl", "cache_maxsize"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name} (from {where(name)}): must not be negative (0 means the profile's)")
    if settings.drain_seconds < 0:
        raise ConfigError(f"drain_seconds (from {where('drain_seconds')}): must not be negative (0: none)")
    if settings.workers < 1:
        raise ConfigError(f"workers (from {where('workers')}): must be at least 1")
    if settings.workers > 1 and settings.store == "memory":
        raise ConfigError(
            f"workers (from {where('workers')}): {settings.workers} workers need a shared store; the "
            "memory store lives inside one process, so each worker would serve flags of its own. "
            "Use --store dynamodb, or run one worker"
        )
    if settings.change_log_retention <= 0:
        raise ConfigError(
            f"change_log_retention (from {where('change_log_retention')}): must be greater than 0"
        )
    if settings.change_log_max_entries < 1:
        raise ConfigError(
            f"change_log_max_entries (from {where('change_log_max_entries')}): must be at least 1"
        )
    if settings.cloudwatch_namespace:
        from vexil.observability.cloudwatch import MIN_INTERVAL_S, namespace_problem

        problem = namespace_problem(settings.cloudwatch_namespace)
        if problem:
            raise ConfigError(
                f"cloudwatch_namespace (from {where('cloudwatch_namespace')}): "
                f"{settings.cloudwatch_namespace!r} is not a CloudWatch namespace; {problem}"
            )
        if settings.cloudwatch_interval < MIN_INTERVAL_S:
            raise ConfigError(
                f"cloudwatch_interval (from {where('cloudwatch_interval')}): must be at least "
                f"{MIN_INTERVAL_S:g} seconds (CloudWatch's finest resolution)"
            )
    if settings.replica_heartbeat <= 0:
        raise ConfigError(f"replica_heartbeat (from {where('replica_heartbeat')}): must be greater than 0")
    if settings.replica_expiry < 2 * settings.replica_heartbeat:
        raise ConfigError(
            f"replica_expiry (from {where('replica_expiry')}): must be at least twice replica_heartbeat "
            f"({2 * settings.replica_heartbeat:g} s), or a live replica would flicker out of the registry"
        )
    if settings.advertise_address and not ADDRESS.fullmatch(settings.advertise_address):
        raise ConfigError(
            f"advertise_address (from {where('advertise_address')}): {settings.advertise_address!r} "
            "is not host:port (e.g. 10.0.0.5:50051 or vexil-0.vexil:50051)"
        )
    if settings.max_connections < 0:
        raise ConfigError(
            f"max_connections (from {where('max_connections')}): must not be negative "
            "(0: from the open-file limit)"
        )
    if settings.watch_queue_size < 1:
        raise ConfigError(f"watch_queue_size (from {where('watch_queue_size')}): must be at least 1")
    for name in ("evaluation_budget_operations", "evaluation_budget_characters", "evaluate_all_max_keys"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} (from {where(name)}): must be at least 1")
    validate_security(settings)


def validate_security(settings: Settings) -> None:
    """The security settings make sense together; key material is checked when it is loaded
    (`vexil.security.layer`), and whether this profile may serve so at all by `require_secure`."""

    def where(name: str) -> str:
        return settings.sources.get(name, "default")

    if settings.auth_mode not in ("", *AUTH_MODES):
        raise ConfigError(
            f"auth_mode (from {where('auth_mode')}): '{settings.auth_mode}' is unknown; use "
            f"{' or '.join(AUTH_MODES)}"
        )
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("tls_cert and tls_key go together: set both to turn TLS on, or neither")
    if settings.tls_client_ca and not settings.tls_cert:
        raise ConfigError(
            f"tls_client_ca (from {where('tls_client_ca')}): mutual TLS needs tls_cert and tls_key"
        )
    for name in (
        "tls_cert",
        "tls_key",
        "tls_client_ca",
        "jwt_secret_file",
        "jwt_public_key",
        "jwt_jwks_file",
        "replica_secret_file",
        "replica_ca_cert",
    ):
        path = getattr(settings, name)
        if path and not Path(path).is_file():
            raise ConfigError(f"{name} (from {where(name)}): no such file: {path}")
    jwt_keys = [n for n in ("jwt_secret_file", "jwt_public_key", "jwt_jwks_file") if getattr(settings, n)]
    if len(jwt_keys) > 1:
        raise ConfigError(f"{' and '.join(jwt_keys)}: configure one JWT key source, not several")
    if jwt_keys and not (settings.jwt_issuer and settings.jwt_audience):
        raise ConfigError(f"{jwt_keys[0]}: JWT authentication needs jwt_issuer and jwt_audience too")
    if (settings.jwt_issuer or settings.jwt_audience) and not jwt_keys:
        raise ConfigError(
            "jwt_issuer / jwt_audience: set a JWT key too (jwt_secret_file, jwt_public_key or jwt_jwks_file)"
        )
    if not 0 <= settings.jwt_clock_skew <= 300:
        raise ConfigError(f"jwt_clock_skew (from {where('jwt_clock_skew')}): must be 0 to 300 seconds")
    if settings.auth_mode == "none" and (jwt_keys or settings.bootstrap_admin_key):
        raise ConfigError(
            f"auth_mode (from {where('auth_mode')}): 'none' ignores the configured credentials "
            "(JWT key, bootstrap admin key); drop them or use auth_mode required"
        )
    if settings.rate_limits not in ("", "on", "off"):
        raise ConfigError(f"rate_limits (from {where('rate_limits')}): use on or off")
    for name in (
        "rate_limit_admin",
        "rate_limit_evaluation",
        "rate_limit_evaluation_client",
        "replica_poke_rate",
    ):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name} (from {where(name)}): must not be negative (0 means unlimited)")
    for entry in settings.rate_limit_admin_roles:
        role, sep, limit = entry.partition("=")
        try:
            valid = sep and role.strip() in ("evaluator", "editor", "admin") and float(limit) >= 0
        except ValueError:
            valid = False
        if not valid:
            raise ConfigError(
                f"rate_limit_admin_roles (from {where('rate_limit_admin_roles')}): '{entry}' is not "
                "<role>=<calls per minute> with role evaluator, editor or admin"
            )
    _check_limits(settings, "rate_limit_evaluation_roles", ("evaluator", "editor", "admin", "anonymous"))
    _check_limits(settings, "rate_limit_evaluation_keys", None)
    if not 0 < settings.key_cache_ttl <= 60:
        raise ConfigError(
            f"key_cache_ttl (from {where('key_cache_ttl')}): must be more than 0 and at most 60 seconds"
        )
    if not 0 < settings.key_max_lifetime_days <= 3650:
        raise ConfigError(
            f"key_max_lifetime_days (from {where('key_max_lifetime_days')}): must be more than 0 "
            "(at most 3650)"
        )
    if not 0 < settings.key_lifetime_days <= settings.key_max_lifetime_days:
        raise ConfigError(
            f"key_lifetime_days (from {where('key_lifetime_days')}): must be more than 0 and at most "
            f"key_max_lifetime_days ({settings.key_max_lifetime_days:g})"
        )
    if settings.key_rotation_overlap_hours < 0:
        raise ConfigError(
            f"key_rotation_overlap_hours (from {where('key_rotation_overlap_hours')}): must not be negative"
        )
    if settings.bootstrap_admin_key and not BOOTSTRAP_KEY.fullmatch(settings.bootstrap_admin_key):
        # Never repeat the value: it is a credential.
        raise ConfigError(
            f"bootstrap_admin_key (from {where('bootstrap_admin_key')}): not a vexil API key token "
            "(vxk_<16 hex digits>_<secret>); `vexil keys create --bootstrap` prints one"
        )


def _check_limits(settings: Settings, name: str, names: tuple[str, ...] | None) -> None:
    """Each entry of the setting is `<name>=<calls per second>` (name one of `names` if given)."""
    for entry in getattr(settings, name):
        key, sep, limit = entry.partition("=")
        try:
            valid = bool(sep and key.strip()) and float(limit) >= 0
        except ValueError:
            valid = False
        if valid and names is not None:
            valid = key.strip() in names
        if not valid:
            what = f"role ({', '.join(names)})" if names else "key id"
            raise ConfigError(
                f"{name} (from {settings.sources.get(name, 'default')}): '{entry}' is not "
                f"<{what.split(' ')[0]}>=<calls per second> with a {what}"
            )


def require_secure(settings: Settings) -> None:
    """Secure by default: refuse to *serve* outside the local profile without TLS and
    authentication, and in the local profile without authentication beyond loopback, unless
    `insecure` says this is a development loop.  (Checked when a server starts, not by `load`:
    operator commands such as `vexil dynamodb create-table --env prod` load prod settings too.)"""
    if settings.insecure:
        return
    if settings.env != "local":
        missing = [
            what
            for what, ok in (("TLS", bool(settings.tls_cert)), ("authentication", settings.auth_required))
            if not ok
        ]
        if missing:
            raise ConfigError(
                f"env '{settings.env}' serves only with TLS and authentication; missing: "
                f"{', '.join(missing)}. Set tls_cert and tls_key (and keep auth_mode required), "
                "or pass --insecure for a development loop"
            )
    elif not settings.auth_required and not is_loopback(settings.host):
        raise ConfigError(
            f"host (from {settings.sources.get('host', 'default')}): the local profile runs without "
            f"authentication, so it listens on loopback only, not {settings.host}; turn authentication "
            "on (auth_mode required) or pass --insecure"
        )


def is_loopback(host: str) -> bool:
    """Whether `host` listens on this machine only (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_reasons(settings: Settings) -> list[str]:
    """Why a server with these settings serves less than securely ([] when it does not): what
    `--insecure` let through outside the local profile, and plaintext or open access on an
    address other machines reach (in every profile). The server says each one loudly."""
    reasons = []
    remote = not is_loopback(settings.host)
    tls = bool(settings.tls_cert)
    if settings.env != "local" and not tls:
        reasons.append(f"env '{settings.env}' serves without TLS (--insecure)")
    if settings.env != "local" and not settings.auth_required:
        reasons.append(f"env '{settings.env}' serves without authentication (--insecure)")
    if remote and not tls:
        reasons.append(f"plaintext (no TLS) on the non-loopback address {settings.host}")
    if remote and not settings.auth_required and settings.env == "local":
        reasons.append(f"no authentication on the non-loopback address {settings.host} (--insecure)")
    return reasons
