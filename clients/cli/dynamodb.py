"""`vexil dynamodb create-table|describe|adopt`: provisioning the table is an explicit operator action.

So is `adopt`: replicas never follow a table that went backwards (recreated or restored empty
under them) on their own; they keep serving their last snapshot until an operator records an
adoption in the table, which every replica reads on its next poll.

The table name, region and endpoint come from the same settings as `vexil serve`
(`vexil.cli.tableopts`), so the table an operator creates is the one the server will use.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from vexil import config
from vexil.cli import numbers
from vexil.cli.exitcodes import ExitCode, guarded
from vexil.cli.output import add_output_options, emit
from vexil.cli.tableopts import add_table_options, table_settings


def _render(report: dict[str, Any]) -> str:
    lines = [
        f"table        {report['table']} ({report['status']})"
        + ("" if report.get("created", True) else "  [already existed]"),
        f"billing      {report['billing']}"
        + (
            f" ({report['readCapacity']} RCU / {report['writeCapacity']} WCU)"
            if report["billing"] == "PROVISIONED"
            else ""
        ),
        f"items        {report['itemCount']} ({report['sizeBytes']} bytes)",
        "indexes      " + ", ".join(f"{i['name']} {i['status']}" for i in report["indexes"]),
        f"streams      {report['streams']['viewType'] if report['streams']['enabled'] else 'disabled'}",
        f"pitr         {report['pitr']}",
    ]
    if "ttl" in report:
        ttl = report["ttl"]
        lines.append(
            f"ttl          {ttl['status']}" + (f" on {ttl['attribute']}" if ttl["attribute"] else "")
        )
    if "changeLog" in report:
        log = report["changeLog"]
        lines.append(
            f"change log   {log['environment']}: {log['entries']} entries"
            + (f" (versions {log['oldestVersion']}-{log['newestVersion']})" if log["entries"] else "")
            + f", kept {log['retentionSeconds']:g} s, at most {log['maxEntries']} entries"
            + (
                f"; {log['ignored']} other items under CHANGE# ignored (not CHANGE#<12 digits>)"
                if log.get("ignored")
                else ""
            )
        )
    for problem in report.get("problems", []):
        lines.append(f"PROBLEM      {problem}")
    return "\n".join(lines)


async def _adopt(settings: config.Settings) -> dict[str, Any]:
    """Record the adoption in the table, with the state the replicas will switch to."""
    import getpass

    from vexil.store.dynamodb import DynamoStore

    store = DynamoStore(
        settings.table, region=settings.dynamodb_region, endpoint_url=settings.dynamodb_endpoint or None
    )
    await store.start()
    try:
        environment, flags = await store.load_environment(settings.env)
        adoption = await store.adopt(settings.env, actor=f"adopt:{getpass.getuser()}")
    finally:
        await store.close()
    return {
        "table": settings.table,
        "environment": settings.env,
        "adoption": adoption,
        "configVersion": environment.config_version,
        "flags": len(flags),
    }


def cmd_dynamodb(args: argparse.Namespace) -> int:
    from vexil.store.dynamodb_table import create_table, describe_table

    settings = table_settings(args)
    where: dict[str, Any] = {
        "region": settings.dynamodb_region,
        "endpoint_url": settings.dynamodb_endpoint or None,
    }
    if args.dynamodb_command == "create-table":
        report = asyncio.run(
            create_table(
                settings.table,
                billing="PROVISIONED" if args.provisioned else "PAY_PER_REQUEST",
                read_capacity=args.read_capacity,
                write_capacity=args.write_capacity,
                streams=not args.no_streams,
                pitr=args.pitr,
                **where,
            )
        )
    elif args.dynamodb_command == "adopt":
        adopted = asyncio.run(_adopt(settings))
        emit(
            args,
            adopted,
            lambda: (
                f"adopted {adopted['table']} for environment {adopted['environment']}: replicas"
                f" serve config_version {adopted['configVersion']} with {adopted['flags']} flags"
                " from their next poll"
            ),
        )
        return ExitCode.OK
    else:
        retention = {
            "retentionSeconds": settings.change_log_retention,
            "maxEntries": settings.change_log_max_entries,
        }
        report = asyncio.run(
            describe_table(settings.table, environment=settings.env, retention=retention, **where)
        )
    emit(args, report, lambda: _render(report))
    return ExitCode.FAILURE if report.get("problems") else ExitCode.OK


def add(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("dynamodb", help="create, describe or adopt the DynamoDB table")
    commands = parser.add_subparsers(dest="dynamodb_command", required=True)
    for name, text in (
        ("create-table", "create the table with both indexes (idempotent)"),
        ("describe", "status, items, indexes, streams, PITR, TTL and the change log of --env"),
        ("adopt", "make every replica serve the table's state for --env although it went backwards"),
    ):
        p = commands.add_parser(name, help=text)
        add_table_options(p)
        add_output_options(p)
        if name == "create-table":
            p.add_argument("--provisioned", action="store_true", help="provisioned capacity, not on demand")
            p.add_argument(
                "--read-capacity",
                type=numbers.whole(1, numbers.INT64_MAX),
                default=25,
                help="RCU when provisioned (default 25)",
            )
            p.add_argument(
                "--write-capacity",
                type=numbers.whole(1, numbers.INT64_MAX),
                default=25,
                help="WCU when provisioned (default 25)",
            )
            p.add_argument("--no-streams", action="store_true", help="do not enable DynamoDB Streams")
            p.add_argument("--pitr", action="store_true", help="enable point-in-time recovery")
        p.set_defaults(func=lambda args: guarded(cmd_dynamodb, args))
