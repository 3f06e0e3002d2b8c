"""`vexil ops check daily|weekly|monthly`: the operations guide's checklists, from the server,
the DynamoDB table (`--env`/`--table`) and a directory of export files."""

from __future__ import annotations

import argparse
import asyncio
import os

from vexil.cli import numbers
from vexil.cli.exitcodes import ExitCode
from vexil.cli.ops import connection, table_command
from vexil.cli.output import colour, emit
from vexil.cli.tableopts import client_settings, table_settings
from vexil.observability.thresholds import STALE_FLAG_DAYS

SCHEDULES = ("daily", "weekly", "monthly")


def cmd_check(args: argparse.Namespace) -> int:
    from vexil.ops import checks, gather, render

    # `--env` names the table as it does for `vexil backup` (feature-flags-<env>).
    wants_table = args.table or args.env or os.environ.get("VEXIL_DYNAMODB_TABLE")
    settings = table_settings(args) if wants_table else None
    sources = gather.Sources(
        server=connection(args),
        table=settings.table if settings else "",
        client=client_settings(settings) if settings else None,
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
    emit(
        args,
        {"schedule": args.schedule, "results": data},
        lambda: render.checks(args.schedule, data, colour=colour(args)),
    )
    return ExitCode.CRITICAL if checks.failed(results) else 0


def add(sub: argparse._SubParsersAction) -> None:
    ops = sub.add_parser("ops", help="operations checklists").add_subparsers(
        dest="ops_command", required=True
    )
    p = ops.add_parser("check", help="run the daily, weekly or monthly checklist")
    p.add_argument("schedule", choices=SCHEDULES)
    p.add_argument("--backup-dir", help="directory of export files (the backups of an embedded store)")
    p.add_argument(
        "--stale-days", type=numbers.positive(), default=STALE_FLAG_DAYS, help="flag age counted as stale"
    )
    table_command(p, cmd_check, server=True)
