"""`vexil serve`: run the server.

Its options are generated from the settings of `vexil.config.Settings`: one `--name-with-dashes`
per setting (secrets excepted: they come from the environment or the config file, never argv),
typed and constrained like the setting, so a new setting is a flag with no second list to keep in
step.  An option left out is None and `config.load` falls back on `VEXIL_<NAME>`, the config file,
then the profile: flags > environment > file > profile.  Start-up failures exit with the codes of
`vexil.cli.startup`, from the one table in `vexil.cli.exitcodes`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from vexil import config
from vexil.cli.exitcodes import ExitCode

if TYPE_CHECKING:
    from vexil.config import Settings

SECURITY_FROM = "tls_cert"
"""The first security setting of `Settings`: it and those after it form the "security" group."""

HELP: dict[str, str] = {
    "env": "environment profile: local, dev, staging, prod (default local)",
    "environments": "comma-separated environments to serve (default: --env)",
    "host": "address to listen on (default 127.0.0.1)",
    "port": "gRPC port (default 50051)",
    "http_port": "HTTP port: OFREP, /healthz, /readyz (default 3001; 0: off)",
    "cors_origins": "comma-separated browser origins allowed to call OFREP, e.g. https://app.example.com "
    "(* for any; default: none)",
    "store": "flag store (default memory)",
    "flags": "flagd flag-definition file (JSON/YAML) to serve and hot-reload",
    "flags_mode": "what --flags may do: seed (create missing flags) or sync (also update and delete the "
    "file's own flags); required with --store dynamodb (default with memory: sync)",
    "dynamodb_table": "table name (default feature-flags-<env>)",
    "dynamodb_region": "AWS region (default ap-northeast-1)",
    "dynamodb_endpoint": "endpoint URL, e.g. http://127.0.0.1:8000 for an emulator",
    "cache_ttl": "full reload interval in seconds (default: profile)",
    "cache_maxsize": "most flags per environment (default: profile)",
    "poll_interval": "change-log poll interval in seconds (default 1)",
    "write_timeout": "seconds a write may take, retries included (default 5)",
    "change_log_retention": "seconds a change-log entry is kept (default 604800)",
    "change_log_max_entries": "change-log entries kept per environment (default 10000)",
    "heartbeat_seconds": "Watch heartbeat interval (default 15)",
    "watch_queue_size": "changes buffered per subscriber before a resync",
    "max_connections": "most connections each port holds at once; more are refused (default 0: 10000, "
    "or less when the open-file limit is lower)",
    "http_client_timeout": "seconds an HTTP client has to send its next request, or a body (default 75; "
    "keep it above a load balancer's idle timeout)",
    "evaluation_budget_operations": "operations one evaluation may spend in loops over data "
    "(default 20000: a few ms)",
    "evaluation_budget_characters": "characters (and array elements) one evaluation may build "
    "(default 1000000)",
    "evaluate_all_max_keys": "most flag_keys per EvaluateAll (default 1000)",
    "shutdown_grace": "seconds in-flight calls get on SIGTERM (default 10)",
    "drain_seconds": "seconds still served on SIGTERM (default 5)",
    "log_level": "DEBUG, INFO, WARNING, ERROR (default INFO)",
    "cloudwatch_namespace": "CloudWatch namespace for the alarm metrics, e.g. Vexil/prod (default: off)",
    "cloudwatch_interval": "seconds between CloudWatch metric batches (default 60)",
    "cloudwatch_region": "CloudWatch region (default: --dynamodb-region)",
    "cloudwatch_endpoint": "CloudWatch endpoint URL, e.g. an emulator's",
    "advertise_address": "host:port other replicas reach this one at, for pokes (default --host:--port)",
    "replica_heartbeat": "seconds between registry heartbeats of this replica (default 2)",
    "replica_expiry": "seconds after its last heartbeat a replica leaves the registry (default 10)",
    "replica_pokes": "poke the other replicas after a write (default true; false: they poll)",
    "workers": "server processes on the port (SO_REUSEPORT; default 1); more than 1 needs --store dynamodb",
    "tls_cert": "PEM certificate chain: serve TLS on both ports (with --tls-key)",
    "tls_key": "PEM private key of --tls-cert",
    "tls_client_ca": "PEM CA bundle: require client certificates it signed (mTLS)",
    "auth_mode": "require credentials (default: required outside the local profile)",
    "insecure": "allow a profile other than local without TLS or authentication (development only)",
    "jwt_secret_file": "file holding the HS256 shared secret for admin JWTs",
    "jwt_public_key": "PEM public key for RS256/ES256 admin JWTs",
    "jwt_jwks_file": "JWKS file with the admin JWT signing keys",
    "jwt_issuer": "required 'iss' of admin JWTs",
    "jwt_audience": "required 'aud' of admin JWTs",
    "jwt_clock_skew": "seconds of clock skew tolerated (default 30)",
    "replica_secret_file": "file holding the secret replicas authenticate pokes with (same on all)",
    "replica_ca_cert": "PEM CA bundle trusted for other replicas' TLS certificates (pokes)",
    "replica_tls_server_name": "name the other replicas' TLS certificates are verified against "
    "when poking them (default: their address's host)",
    "replica_poke_rate": "pokes per second accepted per caller (default 20; 0: unlimited)",
    "rate_limits": "default: on when authentication is",
    "rate_limit_admin": "admin calls per minute per client (default 100)",
    "rate_limit_admin_roles": "per-role admin limits, e.g. admin=600,editor=200",
    "rate_limit_evaluation": "evaluation calls per second, server-wide (default 10000)",
    "rate_limit_evaluation_client": "evaluation calls per second per client: key, JWT subject or "
    "anonymous address (default 1000)",
    "rate_limit_evaluation_roles": "per-role evaluation quotas, e.g. evaluator=5000,anonymous=50",
    "rate_limit_evaluation_keys": "per-key evaluation quotas by key id, e.g. <id>=8000",
    "key_cache_ttl": "seconds API key lookups are cached (default 30, max 60)",
    "key_lifetime_days": "default API key lifetime (default 90)",
    "key_max_lifetime_days": "longest API key lifetime a request may ask (default 365)",
    "key_rotation_overlap_hours": "old secret's grace after a rotation (default 24)",
}
"""Each setting's one-line help (the README's Configuration reference says more)."""

CHOICES: dict[str, tuple[str, ...]] = {
    "store": config.STORES,
    "flags_mode": config.FLAGS_MODES,
    "auth_mode": config.AUTH_MODES,
    "rate_limits": ("on", "off"),
}
"""Settings with a closed set of values, checked as the flag is parsed."""


def flag_value(text: str) -> bool:
    """A boolean flag's value, spelled as the settings spell it (`config.TRUE` / `config.FALSE`)."""
    lowered = text.strip().lower()
    if lowered and lowered in config.TRUE + config.FALSE:
        return lowered in config.TRUE
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float}


def settings_options() -> list[str]:
    """The settings `vexil serve` takes as flags: every one but the secrets."""
    return [name for name in config.FIELDS if name not in config.SECRET_SETTINGS]


def option(name: str) -> str:
    """A setting's flag: `--name-with-dashes`."""
    return "--" + name.replace("_", "-")


def add_setting(p: argparse.ArgumentParser | argparse._ArgumentGroup, name: str) -> None:
    """One setting as a flag, typed like the setting; absent, it is None (the lower sources rule)."""
    kind = config.FIELDS[name].type
    help_text = HELP.get(name, f"the {name} setting (see the README's Configuration reference)")
    if kind == "bool":
        p.add_argument(option(name), nargs="?", const=True, type=flag_value, help=help_text)
        return
    choices = CHOICES.get(name)
    p.add_argument(option(name), type=TYPES.get(str(kind), str), choices=choices, help=help_text)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the vexil server")
    p.add_argument("--config", help="TOML config file (also VEXIL_CONFIG)")
    names = settings_options()
    split = names.index(SECURITY_FROM)
    for name in names[:split]:
        add_setting(p, name)
    p.add_argument("--worker-child", action="store_true", help=argparse.SUPPRESS)
    security = p.add_argument_group("security (see the README's Security section)")
    for name in names[split:]:
        add_setting(security, name)
    p.set_defaults(func=cmd_serve)


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """The server's settings: the flags given, over `VEXIL_*` (`environ`, default the process's),
    over the config file (`--config` or `VEXIL_CONFIG`), over the profile's defaults."""
    cli = {name: getattr(args, name) for name in settings_options()}
    return config.load(cli=cli, environ=environ, config_file=args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    from vexil.app import serve
    from vexil.cli.startup import explain, ports_in_use
    from vexil.security.layer import check as security_check

    try:
        settings = settings_from(args)
        security_check(settings)
    except config.ConfigError as exc:
        print(f"vexil serve: configuration error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from vexil.security import redaction

    redaction.install()  # no credential in the log, whoever writes the record
    if settings.log_level.upper() != "DEBUG":  # "Found credentials in environment variables", per client
        logging.getLogger("aiobotocore.credentials").setLevel(logging.WARNING)
    workers = () if args.worker_child or settings.workers == 1 else worker_command(settings)
    if not args.worker_child:  # the workers of a group share the parent's port on purpose
        busy = ports_in_use(settings)
        if busy:
            print(f"vexil serve: {busy}", file=sys.stderr)
            return ExitCode.CONFLICT
    try:
        asyncio.run(serve(settings, workers))
    except Exception as exc:  # a start-up failure: one line and its exit code (vexil.cli.startup)
        logging.getLogger("vexil").debug("start-up failed", exc_info=True)
        code, message = explain(exc, settings)
        print(f"vexil serve: {message}", file=sys.stderr)
        return code
    return ExitCode.OK


def worker_command(settings: Settings) -> list[str]:
    """How the parent of `--workers N` starts each child: every resolved setting spelled out as a
    flag, so a child runs exactly the parent's settings whatever their source (file, environment,
    flags).  Children leave `--flags` out: the parent alone syncs the flag file into the shared
    store, and every worker (the parent too) follows the store's change log."""
    command = [sys.executable, "-m", "vexil.cli.main", "serve", "--worker-child"]
    for name in settings_options():
        value = getattr(settings, name)
        if name == "flags" or value in ("", ()):
            continue
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        command += [option(name), text]
    return command
