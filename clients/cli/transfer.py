"""`vexil backup export|import`: portable export files with a checksum, from and into a server
(through the admin API, the only way into an embedded store) or a DynamoDB table (every item,
losslessly).  See `vexil.cli.ops` for what each source and destination holds."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from vexil.cli.exitcodes import ExitCode, UsageError
from vexil.cli.ops import connection, progress_of, table_command
from vexil.cli.output import emit
from vexil.cli.tableopts import client_settings, table_settings
from vexil.ops.connection import Connection

if TYPE_CHECKING:
    from vexil.model import FlagRevision
    from vexil.ops import exportfile


def _caller(server: Connection) -> Callable[[Callable[..., Any], Any], Any]:
    metadata = server.metadata
    return lambda method, request: method(request, timeout=server.timeout, metadata=metadata)


def _server_items(
    args: argparse.Namespace, server: Connection, channel: grpc.Channel
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every environment of the server (or `-e` one) as items, through the admin API: its flags
    and the history of every key it knows, deleted ones included (a flag created again comes
    back in the state it was deleted in, so a restore needs their last revision too)."""
    from vexil.cli import flagfiles
    from vexil.ops import gather
    from vexil.ops import items as itemsets
    from vexil.v1 import admin_pb2_grpc

    call = _caller(server)
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    status = gather.get_status(channel, server.metadata, server.timeout)
    names = [args.environment] if args.environment else [e["name"] for e in status.get("environments", [])]
    found: list[dict[str, Any]] = []
    for name in names:
        environment, flags = flagfiles.read_environment(call, admin, name)
        revisions = [
            r for key in _known_keys(call, admin, name, flags) for r in _history(call, admin, name, key)
        ]
        found += itemsets.environment_items(environment, flags.values(), revisions)
    return found, names


def _known_keys(call: Callable[..., Any], admin: Any, environment: str, flags: dict[str, Any]) -> list[str]:
    """The current flags' keys and every key the change log names: the admin API lists deleted
    flags nowhere else, so one deleted longer ago than the log keeps (`change_log_retention`) is
    not found."""
    from vexil.v1 import admin_pb2

    keys = set(flags)
    since = 0
    while True:
        request = admin_pb2.ListChangesRequest(environment=environment, since_version=since, page_size=1000)
        page = call(admin.ListChanges, request)
        if not page.changes:
            return sorted(keys)
        keys.update(change.flag_key for change in page.changes if change.flag_key)
        since = page.next_since_version


def _history(call: Callable[..., Any], admin: Any, environment: str, key: str) -> list[FlagRevision]:
    """Every revision of a flag; none for one written by hand that vexil has not written yet
    (served, but without history: `GetFlagHistory` answers NOT_FOUND)."""
    from vexil.model import ChangeKind, FlagRevision
    from vexil.v1 import admin_pb2, flag_pb2
    from vexil.wire import flag_from_pb, seconds

    revisions: list[FlagRevision] = []
    token = ""
    while True:
        request = admin_pb2.GetFlagHistoryRequest(
            environment=environment, key=key, page_size=1000, page_token=token
        )
        try:
            page = call(admin.GetFlagHistory, request)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND and not token:  # type: ignore[attr-defined]
                return []
            raise
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
            return revisions


def cmd_export(args: argparse.Namespace) -> int:
    from vexil.ops import exportfile, outfile, tables
    from vexil.store.dynamodb_client import client_for

    outfile.check_writable(args.file)  # before reading a whole table or server
    progress = progress_of(args)
    if args.source == "server":
        server = connection(args)
        progress.start(f"exporting from the server at {args.target}")
        with server.refusals_explained(), server.channel() as channel:
            found, names = _server_items(args, server, channel)
        source: dict[str, Any] = {"kind": "server", "target": args.target, "environments": names}
    else:
        settings = table_settings(args)

        async def scan() -> list[dict[str, Any]]:
            async with client_for(client_settings(settings)) as client:
                progress.start(f"exporting table {settings.table}")
                return await tables.scan_items(client, settings.table, progress)

        found = asyncio.run(scan())
        source = {"kind": "table", "table": settings.table, "region": settings.dynamodb_region}
    header = exportfile.write(args.file, exportfile.Export(items=found, source=source))
    progress.done(f"wrote {header['itemCount']} items to {args.file}")
    data = {"file": args.file, **header}
    emit(args, data, lambda: f"exported {header['itemCount']} items to {args.file} ({header['checksum']})")
    return ExitCode.OK


def cmd_import(args: argparse.Namespace) -> int:
    """Into a server (a merge through the admin API) or a table: a new or empty one, or with
    `--force` one whose items are replaced by the export's (items the export covers but does not
    hold are removed: a table left half-old would hold change-log entries ahead of its restored
    environment item)."""
    from vexil.ops import exportfile, tables
    from vexil.ops import items as itemsets
    from vexil.store.dynamodb_client import client_for

    export = exportfile.read(args.file)
    if args.destination == "server":
        data = _import_server(args, export)
        emit(args, data, lambda: _import_text(data))
        return ExitCode.OK
    settings = table_settings(args)
    progress = progress_of(args)
    items = itemsets.data_items(export.items)

    async def work() -> tuple[int, list[dict[str, Any]]]:
        from vexil.store.dynamodb_table import create_table

        reach = client_settings(settings)
        async with client_for(reach) as client:
            stale: list[dict[str, Any]] = []
            wanted = items
            if not await tables.table_exists(client, settings.table):
                progress.start(f"creating table {settings.table}")
                await create_table(settings.table, region=reach.region, endpoint_url=reach.endpoint_url)
            elif not args.force:
                await tables.require_empty(client, settings.table)
            else:
                progress.start(f"reading table {settings.table}")
                current = await tables.scan_items(client, settings.table, progress)
                whole = export.source.get("kind") != "server"
                stale = itemsets.replaced(items, current, whole_table=whole)
                wanted = [item for item in items if not itemsets.kept_by_target(item)]
            progress.start(f"importing {len(wanted)} items into {settings.table}")
            written = await tables.write_items(client, settings.table, wanted, progress)
            if stale:
                # After the writes: an interrupted import leaves extra items (the next run removes
                # them), never a table without the export's items.
                await tables.delete_items(client, settings.table, stale, progress)
            progress.done(f"imported {written} items, removed {len(stale)}")
            return written, stale

    written, stale = asyncio.run(work())
    removed = itemsets.counts(stale)
    data = {
        "file": args.file,
        "table": settings.table,
        "items": written,
        "removed": len(stale),
        "removed_counts": {kind: n for kind, n in removed.items() if n},
        "checksum": export.checksum,
    }
    emit(args, data, lambda: _table_import_text(data))
    return ExitCode.OK


def _table_import_text(data: dict[str, Any]) -> str:
    text = f"imported {data['items']} items from {data['file']} into table {data['table']}"
    if data["removed"]:
        kinds = ", ".join(f"{n} {kind}" for kind, n in data["removed_counts"].items())
        text += f"\nremoved {data['removed']} items the export does not hold ({kinds})"
    return text


def _import_server(args: argparse.Namespace, export: exportfile.Export) -> dict[str, Any]:
    """Through the admin API, one environment at a time (each all-or-nothing): the flags as a
    flags import merges them, then what a restore adds (`vexil.cli.restore`: kill states,
    deletions)."""
    from vexil.cli import flagfiles, restore
    from vexil.flagfile import FlagFile
    from vexil.ops import items as itemsets
    from vexil.v1 import admin_pb2_grpc
    from vexil.wire import flag_from_pb, flag_to_pb

    server = connection(args)
    call = _caller(server)
    reason = args.reason or f"import {os.path.basename(args.file)}"
    deleted = itemsets.deleted_flags(export.items)
    summaries = []
    with server.refusals_explained(), server.channel() as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        for name, (environment, flags) in itemsets.environments(export.items).items():
            if args.environment and name != args.environment:
                continue
            backed_up = {f.key: flag_from_pb(flag_to_pb(f)) for f in flags}
            wanted = FlagFile(
                flags=list(backed_up.values()),
                evaluators=dict(environment.evaluators),
                metadata=dict(environment.metadata),
            )
            current_env, current = flagfiles.read_environment(call, admin, name)
            try:
                plan = flagfiles.plan_import(wanted, current_env, current)
            except flagfiles.FileProblem as exc:
                raise UsageError(f"environment {name}: {exc}") from None
            steps = restore.plan_restore(
                call, admin, plan, (environment, backed_up), deleted.get(name, []), current
            )
            if not args.dry_run:
                restore.apply_restore(flagfiles.Importer(call, admin, name, reason), plan, steps)
            summary = {**flagfiles.summary(plan, args.file, args.dry_run), **restore.summary(steps)}
            if steps.environment_killed is not None:
                summary["kill_switch"] = steps.environment_killed
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

    parts = []
    for summary in data["environments"]:
        parts.append(flagfiles.render_summary(summary))
        for label, keys in (
            ("state set", summary["states_set"]),
            ("deletion recorded", summary["deletions_recorded"]),
            ("deleted in the backup, kept", summary["deleted_but_held"]),
        ):
            if keys:
                parts.append(f"  {label}: {', '.join(keys)}")
        if "kill_switch" in summary:
            parts.append(f"  environment kill switch {'on' if summary['kill_switch'] else 'off'}")
    left = data["not_imported"]
    parts.append(
        f"not imported through the API: {left['history']} history revisions, {left['changes']} change-log"
        f" entries, {left['keys']} API keys (the server records the import as new versions)"
    )
    return "\n".join(parts)


def add(commands: argparse._SubParsersAction) -> None:
    """`export` and `import` under `vexil backup`: the same shape, in opposite directions."""
    for name, text, direction, dest, where, run in (
        (
            "export",
            "portable export to a JSON file with a checksum",
            "--from",
            "source",
            "server: through the admin API (any store); table: every item of the DynamoDB table",
            cmd_export,
        ),
        (
            "import",
            "import an export file (checksum verified first)",
            "--into",
            "destination",
            "server: through the admin API (merge; kill states restored, so the admin role);"
            " table: every item into an empty or new table (--force: replace its items)",
            cmd_import,
        ),
    ):
        p = commands.add_parser(name, help=text)
        p.add_argument("file")
        p.add_argument(direction, dest=dest, choices=["server", "table"], default="server", help=where)
        p.add_argument("-e", "--environment", default="", help=f"only this environment ({direction} server)")
        if name == "import":
            p.add_argument(
                "--dry-run", action="store_true", help="only show what would change (--into server)"
            )
            p.add_argument(
                "--force",
                action="store_true",
                help="replace what a non-empty table holds (--into table): items the export covers"
                " but does not hold are removed",
            )
            p.add_argument("--reason", help="recorded in the change log (--into server)")
        table_command(p, run, server=True)
