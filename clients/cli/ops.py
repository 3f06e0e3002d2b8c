"""`vexil status`, `vexil backup ...`, `vexil dr drill` and `vexil ops check ...`: the operations guide
as commands (the logic is in `vexil.ops`; this module parses arguments and prints).

Exit codes follow `vexil.cli.main` (2 bad usage or input, 3 not found, 4 precondition, 6 server
or DynamoDB unavailable) plus 7: a health indicator is critical, a check FAILed, `verify` found
differences, or a DR drill failed.

Where data comes from:
- `--target` / `--http-url`: a running server (GetStatus and admin RPCs over gRPC, `/metrics`
  over HTTP); `--http-url` defaults to the target's host on port 3001.
- `--table` (with `--env`, `--region`, `--dynamodb-endpoint`, `--config`, as `vexil dynamodb`):
  the DynamoDB table, for backups, PITR, table exports and imports, the drill.
Exports: `--from table` reads every item of the table (flags, history, environments, change log,
API keys: a lossless copy); `--from server` reads through the admin API, which is the only way
into an embedded (memory) store: environments, flags and their history.  Imports: `--into table`
writes the items into an empty (or new) table, exactly; `--into server` creates and updates flags
through the admin API (all-or-nothing, merging like `vexil flags import`; versions and history
are the target's own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import grpc

from vexil import config
from vexil.cli import credentials
from vexil.errors import VexilError
from vexil.observability.thresholds import STALE_FLAG_DAYS
from vexil.ops.connection import Connection, ConnectionOptionsError

if TYPE_CHECKING:
    from vexil.ops import backups, exportfile
    from vexil.ops.progress import Progress
    from vexil.store.dynamodb_client import ClientSettings

# `vexil.ops` and the AWS SDK load when an operations command runs, not with every `vexil`
# command (importing aioboto3 alone takes about half a second).

CRITICAL = 7
SCHEDULES = ("daily", "weekly", "monthly")
VEXIL_ERROR_EXIT = {
    "INVALID_ARGUMENT": 2,
    "NOT_FOUND": 3,
    "ALREADY_EXISTS": 4,
    "FAILED_PRECONDITION": 4,
    "UNAVAILABLE": 6,
}


class Usage(Exception):
    """Bad command-line input (exit code 2)."""


# -- shared options ------------------------------------------------------------------------------


def _server_options(p: argparse.ArgumentParser) -> None:
    """The CLI's one set of connection options (TLS, token, HTTP URL); `-e` and `--json` are
    these commands' own."""
    credentials.add_connection_options(p, output=False, environment=False, http=True)


def _table_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (also VEXIL_CONFIG)")
    p.add_argument("--env", help="environment profile (table feature-flags-<env>)")
    p.add_argument("--table", help="DynamoDB table (default feature-flags-<env>)")
    p.add_argument("--region", help="AWS region (default ap-northeast-1)")
    p.add_argument("--dynamodb-endpoint", help="endpoint URL (also VEXIL_DYNAMODB_ENDPOINT)")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="colour the output")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")


def _settings(args: argparse.Namespace) -> config.Settings:
    try:
        return config.load(
            cli={
                "env": getattr(args, "env", None),
                "dynamodb_table": getattr(args, "table", None),
                "dynamodb_region": getattr(args, "region", None),
                "dynamodb_endpoint": getattr(args, "dynamodb_endpoint", None),
                "store": "dynamodb",
            },
            config_file=getattr(args, "config", None),
        )
    except config.ConfigError as exc:
        raise Usage(f"configuration error: {exc}") from None


def _client(settings: config.Settings) -> ClientSettings:
    from vexil.store.dynamodb_client import ClientSettings

    return ClientSettings(region=settings.dynamodb_region, endpoint_url=settings.dynamodb_endpoint or None)


def _connection(args: argparse.Namespace) -> Connection:
    """The server connection the options describe; unusable options are a usage error."""
    server = credentials.connection(args)
    try:
        server.check()
        server.ssl_context()
    except ConnectionOptionsError as exc:
        raise Usage(str(exc)) from None
    return server


def _colour(args: argparse.Namespace) -> bool:
    if args.color == "auto":
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return args.color == "always"


def _progress(args: argparse.Namespace) -> Progress:
    from vexil.ops.progress import Progress

    return Progress.quiet() if getattr(args, "quiet", False) or getattr(args, "json", False) else Progress()


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str) if args.json else text())


def _run(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Errors as messages and exit codes, the way the rest of the CLI reports them."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (Usage, ConnectionOptionsError) as exc:
            print(f"vexil: {exc}", file=sys.stderr)
            return 2
        except VexilError as exc:
            print(f"vexil: {exc.code}: {exc.message}", file=sys.stderr)
            return VEXIL_ERROR_EXIT.get(exc.code, 1)
        except grpc.RpcError as exc:
            from vexil.cli.main import EXIT_CODES

            code = exc.code()  # type: ignore[attr-defined]
            print(f"vexil: {code.name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
            return EXIT_CODES.get(code, 1)

    return run


# -- vexil status --------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from vexil.ops import gather, health, render
    from vexil.ops.scrape import fetch

    server = _connection(args)
    url, headers, context = server.metrics_url(), server.http_headers, server.ssl_context()
    scrape, status = None, None
    problems: list[str] = []
    try:
        scrape = fetch(url, server.timeout, headers, context)
        if args.window:
            time.sleep(args.window)
            scrape = fetch(url, server.timeout, headers, context).since(scrape)
    except VexilError as exc:
        problems.append(exc.message)
    with server.channel() as channel:
        try:
            status = gather.get_status(channel, server.metadata, server.timeout)
        except grpc.RpcError as exc:
            problems.append(f"GetStatus: {exc.code().name}: {exc.details()}")  # type: ignore[attr-defined]
    window = f"last {args.window:g} s" if args.window else "since the server started"
    report = health.report(status, scrape, window)
    report.problems = problems or report.problems
    data = report.as_dict()
    _emit(args, data, lambda: render.health(data, target=args.target, colour=_colour(args)))
    if status is None and scrape is None:
        return 6
    return CRITICAL if report.level is health.Level.CRIT else 0


# -- vexil backup --------------------------------------------------------------------------------


def cmd_backup_create(args: argparse.Namespace) -> int:
    from vexil.ops import backups
    from vexil.store.dynamodb_client import client_for

    settings = _settings(args)

    async def work() -> backups.BackupInfo:
        async with client_for(_client(settings)) as client:
            return await backups.create_backup(
                client, settings.table, args.name or "", progress=_progress(args)
            )

    info = asyncio.run(work())
    data = info.as_dict()
    _emit(args, data, lambda: f"backup {info.name} of {info.table}: {info.status}\n{info.arn}")
    return 0


def cmd_backup_list(args: argparse.Namespace) -> int:
    from vexil.ops import backups, render
    from vexil.store.dynamodb_client import client_for

    settings = _settings(args)

    async def work() -> list[backups.BackupInfo]:
        async with client_for(_client(settings)) as client:
            return await backups.list_backups(client, settings.table)

    data = [b.as_dict() for b in asyncio.run(work())]
    _emit(args, data, lambda: render.backups(data))
    return 0


def _restored_text(result: backups.Restored) -> str:
    notes = "\n".join(f"  - {note}" for note in result.notes)
    return (
        f"restored {result.source} into {result.table} in {result.seconds:.1f} s"
        f" ({result.item_count} items as DynamoDB counts them)\nnext:\n{notes}"
    )


def cmd_backup_restore(args: argparse.Namespace) -> int:
    from vexil.ops import backups
    from vexil.store.dynamodb_client import client_for

    settings = _settings(args)

    async def work() -> backups.Restored:
        async with client_for(_client(settings)) as client:
            backup = await backups.find_backup(client, settings.table, args.backup)
            return await backups.restore_backup(client, backup, args.to, progress=_progress(args))

    result = asyncio.run(work())
    _emit(args, result.as_dict(), lambda: _restored_text(result))
    return 0


def cmd_pitr(args: argparse.Namespace) -> int:
    from vexil.ops import backups
    from vexil.store.dynamodb_client import client_for

    settings = _settings(args)
    at = _parse_time(args.time) if getattr(args, "time", None) else None

    async def work() -> Any:
        async with client_for(_client(settings)) as client:
            if args.pitr_command == "enable":
                return await backups.enable_pitr(client, settings.table)
            if args.pitr_command == "status":
                return await backups.pitr_status(client, settings.table)
            if not args.to:
                raise Usage("name the new table to restore into: --to TABLE")
            return await backups.restore_pitr(
                client, settings.table, args.to, at=at, progress=_progress(args)
            )

    result = asyncio.run(work())
    if isinstance(result, backups.Restored):
        _emit(args, result.as_dict(), lambda: _restored_text(result))
        return 0
    data = result.as_dict()
    state = "ENABLED" if result.enabled else "DISABLED"
    window = (
        f" (restorable {data['earliestRestorable']} .. {data['latestRestorable']})" if result.enabled else ""
    )
    _emit(args, data, lambda: f"point-in-time recovery on {result.table}: {state}{window}")
    return 0


def _parse_time(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Usage(f"--time {text!r} is not an ISO-8601 time (e.g. 2026-11-28T09:30:00Z)") from None
    if parsed.tzinfo is None:
        raise Usage("--time needs a time zone (e.g. ...Z or +09:00)")
    return parsed.timestamp()


# -- export / import -----------------------------------------------------------------------------


def _caller(server: Connection) -> Callable[[Callable[..., Any], Any], Any]:
    metadata = server.metadata
    return lambda method, request: method(request, timeout=server.timeout, metadata=metadata)


def _server_items(
    args: argparse.Namespace, server: Connection, channel: grpc.Channel
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every environment of the server (or `-e` one) as items, through the admin API."""
    from vexil.cli import flagfiles
    from vexil.model import ChangeKind, FlagRevision
    from vexil.ops import gather
    from vexil.ops import items as itemsets
    from vexil.v1 import admin_pb2, admin_pb2_grpc, flag_pb2
    from vexil.wire import flag_from_pb, seconds

    call = _caller(server)
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    status = gather.get_status(channel, server.metadata, server.timeout)
    names = [args.environment] if args.environment else [e["name"] for e in status.get("environments", [])]
    found: list[dict[str, Any]] = []
    for name in names:
        environment, flags = flagfiles.read_environment(call, admin, name)
        revisions = []
        for key in flags:
            token = ""
            while True:
                request = admin_pb2.GetFlagHistoryRequest(
                    environment=name, key=key, page_size=1000, page_token=token
                )
                page = call(admin.GetFlagHistory, request)
                revisions += [
                    FlagRevision(
                        flag=flag_from_pb(r.flag),
                        kind=ChangeKind(flag_pb2.ChangeKind.Name(r.kind).removeprefix("CHANGE_KIND_")),
                        actor=r.actor,
                        timestamp=seconds(r.timestamp),
                        config_version=r.config_version,
                        reason=r.reason,
                        deleted=r.deleted,
                    )
                    for r in page.revisions
                ]
                token = page.next_page_token
                if not token:
                    break
        found += itemsets.environment_items(environment, flags.values(), revisions)
    return found, names


def cmd_export(args: argparse.Namespace) -> int:
    from vexil.ops import exportfile, tables
    from vexil.store.dynamodb_client import client_for

    progress = _progress(args)
    if args.source == "server":
        server = _connection(args)
        progress.start(f"exporting from the server at {args.target}")
        with server.channel() as channel:
            found, names = _server_items(args, server, channel)
        source: dict[str, Any] = {"kind": "server", "target": args.target, "environments": names}
    else:
        settings = _settings(args)

        async def scan() -> list[dict[str, Any]]:
            async with client_for(_client(settings)) as client:
                progress.start(f"exporting table {settings.table}")
                return await tables.scan_items(client, settings.table, progress)

        found = asyncio.run(scan())
        source = {"kind": "table", "table": settings.table, "region": settings.dynamodb_region}
    header = exportfile.write(args.file, exportfile.Export(items=found, source=source))
    progress.done(f"wrote {header['itemCount']} items to {args.file}")
    data = {"file": args.file, **header}
    _emit(args, data, lambda: f"exported {header['itemCount']} items to {args.file} ({header['checksum']})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from vexil.ops import exportfile, tables
    from vexil.store.dynamodb_client import client_for

    export = exportfile.read(args.file)
    if args.destination == "server":
        data = _import_server(args, export)
        _emit(args, data, lambda: _import_text(data))
        return 0
    settings = _settings(args)
    progress = _progress(args)

    async def work() -> int:
        from vexil.store.dynamodb_table import create_table

        client_settings = _client(settings)
        async with client_for(client_settings) as client:
            if not await tables.table_exists(client, settings.table):
                progress.start(f"creating table {settings.table}")
                await create_table(
                    settings.table, region=client_settings.region, endpoint_url=client_settings.endpoint_url
                )
            elif not args.force:
                await tables.require_empty(client, settings.table)
            progress.start(f"importing {len(export.items)} items into {settings.table}")
            written = await tables.write_items(client, settings.table, export.items, progress)
            progress.done(f"imported {written} items")
            return written

    written = asyncio.run(work())
    data = {"file": args.file, "table": settings.table, "items": written, "checksum": export.checksum}
    _emit(args, data, lambda: f"imported {written} items from {args.file} into table {settings.table}")
    return 0


def _import_server(args: argparse.Namespace, export: exportfile.Export) -> dict[str, Any]:
    """Through the admin API, one environment at a time (each all-or-nothing)."""
    from vexil.cli import flagfiles
    from vexil.flagfile import FlagFile
    from vexil.ops import items as itemsets
    from vexil.v1 import admin_pb2, admin_pb2_grpc
    from vexil.wire import flag_from_pb, flag_to_pb

    server = _connection(args)
    call = _caller(server)
    reason = args.reason or f"import {os.path.basename(args.file)}"
    summaries = []
    with server.channel() as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        for name, (environment, flags) in itemsets.environments(export.items).items():
            if args.environment and name != args.environment:
                continue
            wanted = FlagFile(
                flags=[flag_from_pb(flag_to_pb(f)) for f in flags],
                evaluators=dict(environment.evaluators),
                metadata=dict(environment.metadata),
            )
            current_env, current = flagfiles.read_environment(call, admin, name)
            try:
                plan = flagfiles.plan_import(wanted, current_env, current)
            except flagfiles.FileProblem as exc:
                raise Usage(f"environment {name}: {exc}") from None
            if not args.dry_run:
                flagfiles.Importer(call, admin, name, reason).apply(plan)
            summary = flagfiles.summary(plan, args.file, args.dry_run)
            if environment.kill_switch != current_env.kill_switch:
                summary["kill_switch"] = environment.kill_switch
                if not args.dry_run:
                    request = admin_pb2.SetKillSwitchRequest(
                        environment=name,
                        killed=environment.kill_switch,
                        reason=environment.kill_reason or reason,
                    )
                    call(admin.SetKillSwitch, request)
            summaries.append(summary)
    skipped = itemsets.counts(export.items)
    return {
        "file": args.file,
        "environments": summaries,
        "not_imported": {
            "history": skipped["FLAG_VERSION"],
            "changes": skipped["CHANGE"],
            "keys": skipped["APIKEY"],
        },
    }


def _import_text(data: dict[str, Any]) -> str:
    from vexil.cli import flagfiles

    parts = [flagfiles.render_summary(s) for s in data["environments"]]
    left = data["not_imported"]
    parts.append(
        f"not imported through the API: {left['history']} history revisions, {left['changes']} change-log"
        f" entries, {left['keys']} API keys (the server records the import as new versions)"
    )
    return "\n".join(parts)


# -- verify --------------------------------------------------------------------------------------


def _load_items(args: argparse.Namespace, where: str) -> list[dict[str, Any]]:
    from vexil.ops import exportfile, tables
    from vexil.store.dynamodb_client import client_for

    if where.startswith("table:"):
        settings = _settings(args)
        table = where.removeprefix("table:")

        async def scan() -> list[dict[str, Any]]:
            async with client_for(_client(settings)) as client:
                return await tables.scan_items(client, table, _progress(args))

        return asyncio.run(scan())
    return exportfile.read(where).items


def cmd_verify(args: argparse.Namespace) -> int:
    from vexil.ops import render, verify

    report = verify.compare(_load_items(args, args.expected), _load_items(args, args.actual), args.scope)
    data = {"expectedSource": args.expected, "actualSource": args.actual, **report.as_dict()}
    _emit(args, data, lambda: render.verify(data, colour=_colour(args)))
    return 0 if report.equal else CRITICAL


# -- dr drill ------------------------------------------------------------------------------------


def cmd_drill(args: argparse.Namespace) -> int:
    from vexil.ops import render
    from vexil.ops.drill import run_drill

    settings = _settings(args)
    report = asyncio.run(
        run_drill(
            settings.table,
            _client(settings),
            target=args.restore_to or "",
            keep=args.keep,
            serve=not args.no_serve,
            progress=_progress(args),
        )
    )
    data = report.as_dict()
    _emit(args, data, lambda: render.drill(data, colour=_colour(args)))
    return 0 if report.passed else CRITICAL


# -- ops check -----------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from vexil.ops import checks, gather, render

    # `--env` names the table as it does for `vexil backup` (feature-flags-<env>).
    wants_table = args.table or args.env or os.environ.get("VEXIL_DYNAMODB_TABLE")
    settings = _settings(args) if wants_table else None
    sources = gather.Sources(
        server=_connection(args),
        table=settings.table if settings else "",
        client=_client(settings) if settings else None,
        backup_dir=args.backup_dir or "",
    )
    inputs = checks.Inputs(stale_days=args.stale_days)
    gather.server_inputs(sources, inputs)
    asyncio.run(gather.table_inputs(sources, inputs))
    gather.export_inputs(sources.backup_dir, inputs)
    if inputs.keys is None and "keys" in inputs.errors and not sources.table:
        inputs.errors["keys"] += (
            "; for a DynamoDB deployment pass --env (or --table) to read them from the table"
        )
    results = checks.run(args.schedule, inputs)
    data = [r.as_dict() for r in results]
    _emit(
        args,
        {"schedule": args.schedule, "results": data},
        lambda: render.checks(args.schedule, data, colour=_colour(args)),
    )
    return CRITICAL if checks.failed(results) else 0


# -- wiring --------------------------------------------------------------------------------------


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="the operations guide's health table for a server")
    _server_options(p)
    p.add_argument(
        "--window", type=float, default=0.0, help="judge the last N seconds (two scrapes), not uptime"
    )
    _output_options(p)
    p.set_defaults(func=_run(cmd_status))

    backup = sub.add_parser("backup", help="DynamoDB backups, point-in-time recovery, exports, verify")
    commands = backup.add_subparsers(dest="backup_command", required=True)
    p = commands.add_parser("create", help="on-demand backup of the table (waits until AVAILABLE)")
    p.add_argument("--name", help="backup name (default <table>-manual-<time>)")
    _table_options(p)
    _output_options(p)
    p.set_defaults(func=_run(cmd_backup_create))
    p = commands.add_parser("list", help="backups of the table, newest first")
    _table_options(p)
    _output_options(p)
    p.set_defaults(func=_run(cmd_backup_list))
    p = commands.add_parser("restore", help="restore a backup into a new table")
    p.add_argument("backup", help="backup name or ARN (see vexil backup list)")
    p.add_argument("--to", required=True, help="the new table to create")
    _table_options(p)
    _output_options(p)
    p.set_defaults(func=_run(cmd_backup_restore))

    pitr = commands.add_parser("pitr", help="point-in-time recovery").add_subparsers(
        dest="pitr_command", required=True
    )
    for name, text in (
        ("enable", "turn point-in-time recovery on"),
        ("status", "whether it is on, and the restorable window"),
        ("restore", "restore the table as it was at --time (default: latest) into a new table"),
    ):
        p = pitr.add_parser(name, help=text)
        if name == "restore":
            p.add_argument("--to", help="the new table to create")
            p.add_argument("--time", help="ISO-8601 time with zone (default: the latest restorable time)")
        _table_options(p)
        _output_options(p)
        p.set_defaults(func=_run(cmd_pitr))

    p = commands.add_parser("export", help="portable export to a JSON file with a checksum")
    p.add_argument("file")
    p.add_argument(
        "--from",
        dest="source",
        choices=["server", "table"],
        default="server",
        help="server: through the admin API (any store); table: every item of the DynamoDB table",
    )
    p.add_argument("-e", "--environment", default="", help="only this environment (--from server)")
    _server_options(p)
    _table_options(p)
    _output_options(p)
    p.set_defaults(func=_run(cmd_export))
    p = commands.add_parser("import", help="import an export file (checksum verified first)")
    p.add_argument("file")
    p.add_argument(
        "--into",
        dest="destination",
        choices=["server", "table"],
        default="server",
        help="server: through the admin API (merge); table: every item into an empty or new table",
    )
    p.add_argument("-e", "--environment", default="", help="only this environment (--into server)")
    p.add_argument("--dry-run", action="store_true", help="only show what would change (--into server)")
    p.add_argument("--force", action="store_true", help="write into a table that is not empty (--into table)")
    p.add_argument("--reason", help="recorded in the change log (--into server)")
    _server_options(p)
    _table_options(p)
    _output_options(p)
    p.set_defaults(func=_run(cmd_import))
    p = commands.add_parser("verify", help="compare a restored table or export with its source, item by item")
    p.add_argument("expected", help="the source: an export file, or table:NAME")
    p.add_argument("actual", help="the restored copy: an export file, or table:NAME")
    p.add_argument(
        "--scope",
        choices=["all", "definitions"],
        default="all",
        help="all: every item exactly; definitions: flags and environments, ignoring versions and times",
    )
    _table_options(p)
    _output_options(p)
    p.set_defaults(func=_run(cmd_verify))

    dr = sub.add_parser("dr", help="disaster recovery").add_subparsers(dest="dr_command", required=True)
    p = dr.add_parser("drill", help="backup, restore, verify and serve the table; timed against RTO/RPO")
    p.add_argument("--restore-to", help="name of the table to restore into (default <table>-drill-<time>)")
    p.add_argument("--keep", action="store_true", help="keep the restored table")
    p.add_argument("--no-serve", action="store_true", help="skip starting a server on the restored table")
    _table_options(p)
    _output_options(p)
    p.set_defaults(func=_run(cmd_drill))

    ops = sub.add_parser("ops", help="operations checklists").add_subparsers(
        dest="ops_command", required=True
    )
    p = ops.add_parser("check", help="run the daily, weekly or monthly checklist")
    p.add_argument("schedule", choices=SCHEDULES)
    p.add_argument("--backup-dir", help="directory of export files (the backups of an embedded store)")
    p.add_argument("--stale-days", type=float, default=STALE_FLAG_DAYS, help="flag age counted as stale")
    _server_options(p)
    _table_options(p)
    _output_options(p)
    p.set_defaults(func=_run(cmd_check))


__all__ = ["add"]
