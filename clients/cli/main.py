"""The `vexil` command: run the server, manage flags, evaluate and watch.

Output is a human-readable table by default and JSON with `--json`.  Exit codes are stable so
scripts can rely on them (see `EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format

from vexil.cli import credentials, dynamodb, keys, ops, output

if TYPE_CHECKING:
    from vexil.config import Settings

# Exit codes: 0 success; 1 unexpected failure; 2 bad usage or invalid argument; 3 not found;
# 4 conflict (stale version, already exists, precondition); 5 not allowed; 6 server unavailable
# (also: it ended a `watch` stream).
EXIT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: 2,
    grpc.StatusCode.OUT_OF_RANGE: 2,
    grpc.StatusCode.NOT_FOUND: 3,
    grpc.StatusCode.ABORTED: 4,
    grpc.StatusCode.ALREADY_EXISTS: 4,
    grpc.StatusCode.FAILED_PRECONDITION: 4,
    grpc.StatusCode.PERMISSION_DENIED: 5,
    grpc.StatusCode.UNAUTHENTICATED: 5,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 5,
    grpc.StatusCode.UNAVAILABLE: 6,
    grpc.StatusCode.DEADLINE_EXCEEDED: 6,
}


class UsageError(Exception):
    """Bad command-line input: exit code 2 with the message."""


class ServerGone(Exception):
    """The server ended a stream the command meant to keep open: exit code 6 with the message."""


def json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None


# -- serve ---------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from vexil import config
    from vexil.app import serve
    from vexil.security.layer import check as security_check

    cli = {
        name: getattr(args, name)
        for name in (
            "host",
            "port",
            "http_port",
            "env",
            "environments",
            "store",
            "flags",
            "flags_mode",
            "dynamodb_table",
            "dynamodb_region",
            "dynamodb_endpoint",
            "cache_ttl",
            "cache_maxsize",
            "poll_interval",
            "write_timeout",
            "heartbeat_seconds",
            "watch_queue_size",
            "evaluation_budget_operations",
            "evaluation_budget_characters",
            "evaluate_all_max_keys",
            "shutdown_grace",
            "drain_seconds",
            "log_level",
            "workers",
            "cloudwatch_namespace",
            "cloudwatch_interval",
            "cloudwatch_region",
            "cloudwatch_endpoint",
            *credentials.SERVE_SETTINGS,
        )
    }
    try:
        settings = config.load(cli=cli, config_file=args.config)
        security_check(settings)
    except config.ConfigError as exc:
        print(f"vexil serve: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level.upper() != "DEBUG":  # "Found credentials in environment variables", per client
        logging.getLogger("aiobotocore.credentials").setLevel(logging.WARNING)
    workers = () if args.worker_child or settings.workers == 1 else worker_command(settings)
    from vexil.cli.startup import explain, ports_in_use

    if not args.worker_child:  # the workers of a group share the parent's port on purpose
        busy = ports_in_use(settings)
        if busy:
            print(f"vexil serve: {busy}", file=sys.stderr)
            return 4
    try:
        asyncio.run(serve(settings, workers))
    except Exception as exc:  # a start-up failure: one line and its exit code (vexil.cli.startup)
        logging.getLogger("vexil").debug("start-up failed", exc_info=True)
        code, message = explain(exc, settings)
        print(f"vexil serve: {message}", file=sys.stderr)
        return code
    return 0


def worker_command(settings: Settings) -> list[str]:
    """How the parent of `--workers N` starts each child: every resolved setting spelled out as a
    flag, so a child runs exactly the parent's settings whatever their source (file, environment,
    flags).  Children leave `--flags` out: the parent alone syncs the flag file into the shared
    store, and every worker (the parent too) follows the store's change log."""
    from vexil import config

    command = [sys.executable, "-m", "vexil.cli.main", "serve", "--worker-child"]
    for name in config.FIELDS:
        value = getattr(settings, name)
        if name == "flags" or value in ("", ()) or name in config.SECRET_SETTINGS:  # secrets: via env
            continue
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        command += ["--" + name.replace("_", "-"), text]
    return command


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the vexil server")
    p.add_argument("--config", help="TOML config file (also VEXIL_CONFIG)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="gRPC port (default 50051)")
    p.add_argument("--http-port", type=int, help="HTTP port: OFREP, /healthz, /readyz (default 3001; 0: off)")
    p.add_argument("--env", help="environment profile: local, dev, staging, prod (default local)")
    p.add_argument("--environments", help="comma-separated environments to serve (default: --env)")
    p.add_argument("--store", choices=["memory", "dynamodb"], help="flag store (default memory)")
    p.add_argument("--flags", help="flagd flag-definition file (JSON/YAML) to serve and hot-reload")
    p.add_argument(
        "--flags-mode",
        choices=["seed", "sync"],
        help="what --flags may do: seed (create missing flags) or sync (also update and delete the "
        "file's own flags); required with --store dynamodb (default with memory: sync)",
    )
    p.add_argument("--dynamodb-table", help="table name (default feature-flags-<env>)")
    p.add_argument("--dynamodb-region", help="AWS region (default ap-northeast-1)")
    p.add_argument("--dynamodb-endpoint", help="endpoint URL, e.g. http://127.0.0.1:8000 for an emulator")
    p.add_argument("--cache-ttl", type=float, help="full reload interval in seconds (default: profile)")
    p.add_argument("--cache-maxsize", type=int, help="most flags per environment (default: profile)")
    p.add_argument("--poll-interval", type=float, help="change-log poll interval in seconds (default 1)")
    p.add_argument(
        "--write-timeout", type=float, help="seconds a write may take, retries included (default 5)"
    )
    p.add_argument("--heartbeat-seconds", type=float, help="Watch heartbeat interval (default 15)")
    p.add_argument("--watch-queue-size", type=int, help="changes buffered per subscriber before a resync")
    p.add_argument(
        "--evaluation-budget-operations",
        type=int,
        help="operations one evaluation may spend in loops over data (default 20000: a few ms)",
    )
    p.add_argument(
        "--evaluation-budget-characters",
        type=int,
        help="characters (and array elements) one evaluation may build (default 1000000)",
    )
    p.add_argument("--evaluate-all-max-keys", type=int, help="most flag_keys per EvaluateAll (default 1000)")
    p.add_argument("--shutdown-grace", type=float, help="seconds in-flight calls get on SIGTERM (default 10)")
    p.add_argument("--drain-seconds", type=float, help="seconds still served on SIGTERM (default 5)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    p.add_argument(
        "--workers",
        type=int,
        help="server processes on the port (SO_REUSEPORT; default 1); more than 1 needs --store dynamodb",
    )
    p.add_argument(
        "--cloudwatch-namespace",
        help="publish the alarm metrics to CloudWatch under this namespace, e.g. Vexil/prod (default: off)",
    )
    p.add_argument(
        "--cloudwatch-interval", type=float, help="seconds between CloudWatch metric batches (default 60)"
    )
    p.add_argument("--cloudwatch-region", help="CloudWatch region (default: --dynamodb-region)")
    p.add_argument("--cloudwatch-endpoint", help="CloudWatch endpoint URL, e.g. an emulator's")
    p.add_argument("--worker-child", action="store_true", help=argparse.SUPPRESS)
    credentials.add_serve_options(p)
    p.set_defaults(func=cmd_serve)


# -- remote commands -----------------------------------------------------------------------------


class Remote:
    """A connection to a vexil server for one CLI invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        from vexil.v1 import admin_pb2_grpc, evaluation_pb2_grpc

        self.args = args
        self.channel = credentials.channel(args, UsageError)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.evaluation = evaluation_pb2_grpc.EvaluationServiceStub(self.channel)
        self.environment = args.environment or ""
        self.metadata = credentials.connection(args).metadata

    def call(self, method: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        return method(request, timeout=timeout or self.args.timeout, metadata=self.metadata)


def to_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def flag_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Flag as a proto-JSON dict, from a --file and/or individual options (options win)."""
    flag: dict[str, Any] = dict(base or {})
    if getattr(args, "file", None):
        with open(args.file, encoding="utf-8") as fh:
            body = json_arg(fh.read(), f"--file {args.file}")
        if not isinstance(body, dict):
            raise UsageError("--file must hold one flag definition object")
        mapping = {"defaultVariant": "default_variant"}
        for key, value in body.items():
            flag[mapping.get(str(key), str(key))] = value
    if args.variants is not None:
        flag["variants"] = json_arg(args.variants, "--variants")
    if "variants" not in flag:
        flag["variants"] = {"on": True, "off": False}
        flag.setdefault("default_variant", "off")
    if args.default is not None:
        flag["default_variant"] = args.default
    if args.targeting is not None:
        flag["targeting"] = json_arg(args.targeting, "--targeting")
    for name in ("description", "owner"):
        if getattr(args, name) is not None:
            flag[name] = getattr(args, name)
    if args.tag:
        flag["tags"] = list(args.tag)
    if args.metadata is not None:
        flag["metadata"] = json_arg(args.metadata, "--metadata")
    if args.state is not None:
        flag["state"] = f"FLAG_STATE_{args.state.upper()}"
    if isinstance(flag.get("state"), str) and not flag["state"].startswith("FLAG_STATE_"):
        flag["state"] = f"FLAG_STATE_{flag['state']}"
    flag["key"] = args.key
    if args.environment:
        flag["environment"] = args.environment
    return flag


def parse_flag(flag: dict[str, Any]) -> Any:
    from vexil.v1 import flag_pb2

    try:
        return json_format.ParseDict(flag, flag_pb2.Flag())
    except json_format.ParseError as exc:
        raise UsageError(f"flag definition: {exc}") from None


def cmd_flags_list(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    flags: list[Any] = []
    token = ""
    while True:
        req = admin_pb2.ListFlagsRequest(
            environment=r.environment, owner=a.owner or "", tag=a.tag or "", page_size=500, page_token=token
        )
        resp = r.call(r.admin.ListFlags, req)
        flags.extend(resp.flags)
        token = resp.next_page_token
        if not token:
            break
    return [to_dict(f) for f in flags], output.flag_table


def cmd_flags_get(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    flag = r.call(r.admin.GetFlag, admin_pb2.GetFlagRequest(environment=r.environment, key=r.args.key))
    return to_dict(flag), output.flag_detail


def cmd_flags_create(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    flag = parse_flag(flag_from_args(r.args))
    resp = r.call(r.admin.CreateFlag, admin_pb2.CreateFlagRequest(flag=flag, reason=r.args.reason or ""))
    return to_dict(resp.flag), output.flag_detail


def cmd_flags_update(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    if a.state is not None:
        raise UsageError(
            "a flag's state is its kill switch, which an update never changes: use "
            f"`vexil flags kill {a.key} --reason ...` (or `vexil flags kill {a.key} --revive`; admin role)"
        )
    current = r.call(r.admin.GetFlag, admin_pb2.GetFlagRequest(environment=r.environment, key=a.key))
    base = to_dict(current)
    # "state" too: a request without one keeps the stored state, even if a kill lands meanwhile.
    for output_only in ("version", "created_at", "updated_at", "updated_by", "managed_by", "state"):
        base.pop(output_only, None)
    flag = parse_flag(flag_from_args(a, base))
    expected = a.expected_version if a.expected_version is not None else current.version
    resp = r.call(
        r.admin.UpdateFlag,
        admin_pb2.UpdateFlagRequest(flag=flag, expected_version=expected, reason=a.reason or ""),
    )
    return to_dict(resp.flag), output.flag_detail


def cmd_flags_delete(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    req = admin_pb2.DeleteFlagRequest(environment=r.environment, key=a.key, reason=a.reason or "")
    if a.expected_version is not None:
        req.expected_version = a.expected_version
    resp = r.call(r.admin.DeleteFlag, req)
    return to_dict(resp), lambda d: f"deleted {a.key} (was version {d.get('deleted_version', 0)})"


def cmd_flags_history(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    req = admin_pb2.GetFlagHistoryRequest(environment=r.environment, key=r.args.key, page_size=r.args.limit)
    resp = r.call(r.admin.GetFlagHistory, req)
    return [to_dict(rev) for rev in resp.revisions], output.history_table


def cmd_flags_rollback(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    req = admin_pb2.RollbackFlagRequest(
        environment=r.environment, key=a.key, to_version=a.to, reason=a.reason or ""
    )
    if a.expected_version is not None:
        req.expected_version = a.expected_version
    resp = r.call(r.admin.RollbackFlag, req)
    return to_dict(resp.flag), output.flag_detail


def cmd_flags_kill(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    if not a.key and not a.all:
        raise UsageError("name a flag, or pass --all to kill the whole environment")
    if a.key and a.all:
        raise UsageError("name a flag or pass --all, not both")
    req = admin_pb2.SetKillSwitchRequest(
        environment=r.environment, flag_key=a.key or "", killed=not a.revive, reason=a.reason or ""
    )
    resp = r.call(r.admin.SetKillSwitch, req)
    what = f"flag {a.key}" if a.key else "environment"
    verb = "revived" if a.revive else "killed"
    return to_dict(resp), lambda d: f"{what} {verb} (config_version {d.get('config_version', 0)})"


def cmd_flags_changes(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    req = admin_pb2.ListChangesRequest(
        environment=r.environment, since_version=a.since, page_size=a.limit, flag_key=a.key or ""
    )
    resp = r.call(r.admin.ListChanges, req)
    return [to_dict(c) for c in resp.changes], output.change_table


def cmd_flags_import(r: Remote) -> Any:
    from vexil.cli import flagfiles

    a = r.args
    try:
        data = flagfiles.run_import(
            r.call, r.admin, r.environment, a.file, dry_run=a.dry_run, reason=a.reason or ""
        )
    except flagfiles.FileProblem as exc:
        raise UsageError(str(exc)) from None
    return data, flagfiles.render_summary


def cmd_flags_export(r: Remote) -> Any:
    from vexil.cli import flagfiles

    data = flagfiles.run_export(r.call, r.admin, r.environment, r.args.file)
    return data, (lambda d: f"exported {d['flags']} flags to {d['file']}") if data else None


def cmd_evaluate(r: Remote) -> Any:
    from vexil.v1 import evaluation_pb2

    a = r.args
    context = json_arg(a.context, "--context")
    if not isinstance(context, dict):
        raise UsageError("--context must be a JSON object")
    req = evaluation_pb2.EvaluateRequest(flag_key=a.key, environment=r.environment)
    req.context.update(context)
    resp = r.call(r.evaluation.Evaluate, req)
    return to_dict(resp), output.resolution


def cmd_watch(r: Remote) -> Any:
    from vexil.v1 import evaluation_pb2

    a = r.args
    req = evaluation_pb2.WatchRequest(environment=r.environment, flag_keys=a.key or [])
    if a.since is not None:
        req.since_version = a.since
    stream = r.evaluation.Watch(req, metadata=r.metadata)
    received = 0
    try:
        for event in stream:
            data = to_dict(event)
            print(json.dumps(output.plain(data)) if a.json else output.watch_event(data), flush=True)
            received += 1
            if a.count and received >= a.count:
                stream.cancel()
                break
    except KeyboardInterrupt:
        stream.cancel()
        return None, None
    except grpc.RpcError as exc:
        if exc.code() is not grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
            raise
        # A draining server ends its streams UNAVAILABLE so that clients reconnect elsewhere.
        raise ServerGone(
            f"the server ended the Watch stream after {received} events: {exc.details()}"  # type: ignore[attr-defined]
        ) from None
    if not (a.count and received >= a.count):
        raise ServerGone(f"the server ended the Watch stream after {received} events")
    return None, None


def add_remote(sub: argparse._SubParsersAction) -> None:
    def definition(p: argparse.ArgumentParser) -> None:
        p.add_argument("--file", help="JSON file with one flagd flag definition")
        p.add_argument("--variants", help='variants as JSON, e.g. \'{"on": true, "off": false}\'')
        p.add_argument("--default", help="default variant name")
        p.add_argument("--targeting", help="JSONLogic targeting rule as JSON")
        p.add_argument("--description")
        p.add_argument("--owner")
        p.add_argument("--tag", action="append", help="tag (repeatable; replaces all tags)")
        p.add_argument("--metadata", help="metadata as a JSON object")
        p.add_argument(
            "--state",
            choices=["enabled", "disabled"],
            help="create: the initial state; update: refused, use `vexil flags kill` (the kill switch)",
        )
        p.add_argument("--reason", help="why (recorded in the change log)")

    flags = sub.add_parser("flags", help="manage flags").add_subparsers(dest="flags_command", required=True)
    p = flags.add_parser("list", help="list flags")
    p.add_argument("--owner")
    p.add_argument("--tag")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_list)
    p = flags.add_parser("get", help="show one flag")
    p.add_argument("key")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_get)
    p = flags.add_parser("create", help="create a flag (no --variants: a boolean on/off flag)")
    p.add_argument("key")
    definition(p)
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_create)
    p = flags.add_parser("update", help="change a flag (read, modify, write with its version)")
    p.add_argument("key")
    definition(p)
    p.add_argument("--expected-version", type=int, help="refuse if the flag is not at this version")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_update)
    p = flags.add_parser("delete", help="delete a flag (its history stays)")
    p.add_argument("key")
    p.add_argument("--expected-version", type=int)
    p.add_argument("--reason")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_delete)
    p = flags.add_parser("history", help="a flag's revisions, newest first")
    p.add_argument("key")
    p.add_argument("--limit", type=int, default=50)
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_history)
    p = flags.add_parser("rollback", help="make an earlier revision current again")
    p.add_argument("key")
    p.add_argument("--to", type=int, required=True, help="version to roll back to")
    p.add_argument("--expected-version", type=int)
    p.add_argument("--reason")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_rollback)
    p = flags.add_parser("kill", help="kill switch: a flag, or the whole environment with --all")
    p.add_argument("key", nargs="?")
    p.add_argument("--all", action="store_true", help="kill every flag of the environment")
    p.add_argument("--revive", action="store_true", help="turn the kill switch off again")
    p.add_argument("--reason", help="why (required when killing)")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_kill)
    p = flags.add_parser("changes", help="the change log (audit trail)")
    p.add_argument("--since", type=int, default=0, help="only after this config_version")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--key", help="only changes of this flag")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_changes)

    p = flags.add_parser("import", help="create/update flags from a flagd file (all or nothing)")
    p.add_argument("file", help="flagd flag-definition file (JSON or YAML)")
    p.add_argument("--dry-run", action="store_true", help="check and show what would change; write nothing")
    p.add_argument("--reason", help="why (recorded in the change log)")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_import)
    p = flags.add_parser("export", help="write the environment as a flagd file (JSON)")
    p.add_argument("file", nargs="?", help="where to write (default: standard output)")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_flags_export)

    p = sub.add_parser("evaluate", help="evaluate one flag for a context")
    p.add_argument("key")
    p.add_argument("--context", default="{}", help="evaluation context as a JSON object")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_evaluate)

    p = sub.add_parser("watch", help="stream flag changes")
    p.add_argument("--key", action="append", help="only this flag (repeatable)")
    p.add_argument("--since", type=int, help="resume after this config_version")
    p.add_argument("--count", type=int, default=0, help="stop after this many events")
    credentials.add_connection_options(p)
    p.set_defaults(remote=cmd_watch)


def build_parser() -> argparse.ArgumentParser:
    from vexil import __version__

    parser = argparse.ArgumentParser(prog="vexil", description="vexil feature-flag service")
    parser.add_argument("--version", action="version", version=f"vexil {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve(sub)
    add_remote(sub)
    dynamodb.add(sub)
    ops.add(sub)
    keys.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "func"):
        return args.func(args)
    try:
        remote = Remote(args)
        data, render = args.remote(remote)
    except UsageError as exc:
        print(f"vexil: {exc}", file=sys.stderr)
        return 2
    except ServerGone as exc:
        print(f"vexil: UNAVAILABLE: {exc}", file=sys.stderr)
        return 6
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        print(f"vexil: {code.name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return EXIT_CODES.get(code, 1)
    if render is not None:
        print(json.dumps(output.plain(data), indent=2) if args.json else render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
