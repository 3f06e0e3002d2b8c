"""`vexil dr drill`: backup, restore, verify and serve the table, timed against the RTO/RPO."""

from __future__ import annotations

import argparse
import asyncio

from vexil.cli.exitcodes import ExitCode
from vexil.cli.ops import progress_of, table_command
from vexil.cli.output import colour, emit
from vexil.cli.tableopts import client_settings, table_name, table_settings


def cmd_drill(args: argparse.Namespace) -> int:
    from vexil.ops import render
    from vexil.ops.drill import run_drill

    settings = table_settings(args)
    report = asyncio.run(
        run_drill(
            settings.table,
            client_settings(settings),
            target=args.restore_to or "",
            keep=args.keep,
            serve=not args.no_serve,
            progress=progress_of(args),
        )
    )
    data = report.as_dict()
    emit(args, data, lambda: render.drill(data, colour=colour(args)))
    return 0 if report.passed else ExitCode.CRITICAL


def add(sub: argparse._SubParsersAction) -> None:
    dr = sub.add_parser("dr", help="disaster recovery").add_subparsers(dest="dr_command", required=True)
    p = dr.add_parser("drill", help="backup, restore, verify and serve the table; timed against RTO/RPO")
    p.add_argument(
        "--restore-to",
        type=table_name,
        help="name of the table to restore into (default <table>-drill-<time>)",
    )
    p.add_argument("--keep", action="store_true", help="keep the restored table")
    p.add_argument("--no-serve", action="store_true", help="skip starting a server on the restored table")
    table_command(p, cmd_drill)
