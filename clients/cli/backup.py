"""`vexil backup create|list|restore|pitr|verify`: DynamoDB backups, point-in-time recovery, and
item-by-item comparison of a restored copy with its source (exports and imports:
`vexil.cli.transfer`)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vexil.cli.exitcodes import ExitCode, UsageError
from vexil.cli.ops import progress_of, table_command
from vexil.cli.output import colour, emit
from vexil.cli.tableopts import client_settings, table_name, table_settings

if TYPE_CHECKING:
    from vexil.ops import backups


def cmd_backup_create(args: argparse.Namespace) -> int:
    from vexil.ops import backups
    from vexil.store.dynamodb_client import client_for

    settings = table_settings(args)

    async def work() -> backups.BackupInfo:
        async with client_for(client_settings(settings)) as client:
            return await backups.create_backup(
                client, settings.table, args.name or "", progress=progress_of(args)
            )

    info = asyncio.run(work())
    data = info.as_dict()
    emit(args, data, lambda: f"backup {info.name} of {info.table}: {info.status}\n{info.arn}")
    return ExitCode.OK


def cmd_backup_list(args: argparse.Namespace) -> int:
    from vexil.ops import backups, render
    from vexil.store.dynamodb_client import client_for

    settings = table_settings(args)

    async def work() -> list[backups.BackupInfo]:
        async with client_for(client_settings(settings)) as client:
            return await backups.list_backups(client, settings.table)

    data = [b.as_dict() for b in asyncio.run(work())]
    emit(args, data, lambda: render.backups(data))
    return ExitCode.OK


def _restored_text(result: backups.Restored) -> str:
    notes = "\n".join(f"  - {note}" for note in result.notes)
    return (
        f"restored {result.source} into {result.table} in {result.seconds:.1f} s"
        f" ({result.item_count} items as DynamoDB counts them)\nnext:\n{notes}"
    )


def cmd_backup_restore(args: argparse.Namespace) -> int:
    from vexil.ops import backups
    from vexil.store.dynamodb_client import client_for

    settings = table_settings(args)

    async def work() -> backups.Restored:
        async with client_for(client_settings(settings)) as client:
            backup = await backups.find_backup(client, settings.table, args.backup)
            return await backups.restore_backup(client, backup, args.to, progress=progress_of(args))

    result = asyncio.run(work())
    emit(args, result.as_dict(), lambda: _restored_text(result))
    return ExitCode.OK


def cmd_pitr(args: argparse.Namespace) -> int:
    from vexil.ops import backups
    from vexil.store.dynamodb_client import client_for

    settings = table_settings(args)
    at = _parse_time(args.time) if getattr(args, "time", None) else None

    async def work() -> Any:
        async with client_for(client_settings(settings)) as client:
            if args.pitr_command == "enable":
                return await backups.enable_pitr(client, settings.table)
            if args.pitr_command == "status":
                return await backups.pitr_status(client, settings.table)
            if not args.to:
                raise UsageError("name the new table to restore into: --to TABLE")
            return await backups.restore_pitr(
                client, settings.table, args.to, at=at, progress=progress_of(args)
            )

    result = asyncio.run(work())
    if isinstance(result, backups.Restored):
        emit(args, result.as_dict(), lambda: _restored_text(result))
        return ExitCode.OK
    data = result.as_dict()
    state = "ENABLED" if result.enabled else "DISABLED"
    window = (
        f" (restorable {data['earliestRestorable']} .. {data['latestRestorable']})" if result.enabled else ""
    )
    emit(args, data, lambda: f"point-in-time recovery on {result.table}: {state}{window}")
    return ExitCode.OK


def _parse_time(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--time {text!r} is not an ISO-8601 time (e.g. 2026-11-28T09:30:00Z)") from None
    if parsed.tzinfo is None:
        raise UsageError("--time needs a time zone (e.g. ...Z or +09:00)")
    return parsed.timestamp()


def _load_items(args: argparse.Namespace, where: str) -> list[dict[str, Any]]:
    from vexil.ops import exportfile, tables
    from vexil.store.dynamodb_client import client_for

    if where.startswith("table:"):
        settings = table_settings(args)
        table = where.removeprefix("table:")

        async def scan() -> list[dict[str, Any]]:
            async with client_for(client_settings(settings)) as client:
                return await tables.scan_items(client, table, progress_of(args))

        return asyncio.run(scan())
    return exportfile.read(where).items


def cmd_verify(args: argparse.Namespace) -> int:
    from vexil.ops import render, verify

    for where in (args.expected, args.actual):  # both checked before either is read
        if where.startswith("table:"):
            try:
                table_name(where.removeprefix("table:"))
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"{where}: {exc}") from None
    report = verify.compare(_load_items(args, args.expected), _load_items(args, args.actual), args.scope)
    data = {"expectedSource": args.expected, "actualSource": args.actual, **report.as_dict()}
    emit(args, data, lambda: render.verify(data, colour=colour(args)))
    return 0 if report.equal else ExitCode.CRITICAL


def add(sub: argparse._SubParsersAction) -> None:
    from vexil.cli import transfer

    backup = sub.add_parser("backup", help="DynamoDB backups, point-in-time recovery, exports, verify")
    commands = backup.add_subparsers(dest="backup_command", required=True)
    p = commands.add_parser("create", help="on-demand backup of the table (waits until AVAILABLE)")
    p.add_argument("--name", help="backup name (default <table>-manual-<time>)")
    table_command(p, cmd_backup_create)
    p = commands.add_parser("list", help="backups of the table, newest first")
    table_command(p, cmd_backup_list)
    p = commands.add_parser("restore", help="restore a backup into a new table")
    p.add_argument("backup", help="backup name or ARN (see vexil backup list)")
    p.add_argument("--to", required=True, type=table_name, help="the new table to create")
    table_command(p, cmd_backup_restore)

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
            p.add_argument("--to", type=table_name, help="the new table to create")
            p.add_argument("--time", help="ISO-8601 time with zone (default: the latest restorable time)")
        table_command(p, cmd_pitr)

    transfer.add(commands)
    p = commands.add_parser("verify", help="compare a restored table or export with its source, item by item")
    p.add_argument("expected", help="the source: an export file, or table:NAME")
    p.add_argument("actual", help="the restored copy: an export file, or table:NAME")
    p.add_argument(
        "--scope",
        choices=["all", "definitions"],
        default="all",
        help="all: every item exactly; definitions: flags and environments, ignoring versions and times",
    )
    table_command(p, cmd_verify)
