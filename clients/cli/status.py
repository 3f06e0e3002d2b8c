"""`vexil status`: the operations guide's health table for a running server (GetStatus over
gRPC and `/metrics` over HTTP, both with the CLI's connection options)."""

from __future__ import annotations

import argparse
import time

import grpc

from vexil.cli import numbers
from vexil.cli.exitcodes import ExitCode, for_status
from vexil.cli.ops import command, connection, server_options
from vexil.cli.output import add_output_options, colour, emit
from vexil.errors import VexilError


def cmd_status(args: argparse.Namespace) -> int:
    from vexil.ops import gather, health, render
    from vexil.ops.scrape import fetch

    server = connection(args)
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
    failed = ExitCode.UNAVAILABLE
    with server.channel() as channel:
        try:
            status = gather.get_status(channel, server.metadata, server.timeout)
        except grpc.RpcError as exc:
            code, why = server.described(exc)
            problems.append(f"GetStatus: {code}: {why}")
            failed = for_status(code)
    window = f"last {args.window:g} s" if args.window else "since the server started"
    report = health.report(status, scrape, window)
    report.problems = problems or report.problems
    data = report.as_dict()
    emit(args, data, lambda: render.health(data, target=args.target, colour=colour(args)))
    if status is None and scrape is None:
        # Nothing answered: unavailable, unless the server refused the credentials (5, as for
        # every command: a token or client certificate it does not accept).
        return failed if failed in (ExitCode.UNAVAILABLE, ExitCode.NOT_ALLOWED) else ExitCode.UNAVAILABLE
    return ExitCode.CRITICAL if report.level is health.Level.CRIT else ExitCode.OK


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="the operations guide's health table for a server")
    server_options(p)
    p.add_argument(
        "--window",
        type=numbers.non_negative(numbers.DAY),
        default=0.0,
        help="judge the last N seconds (two scrapes), not uptime",
    )
    add_output_options(p, colour=True)
    p.set_defaults(func=command(cmd_status))
