"""`vexil status`, `vexil backup ...`, `vexil dr drill` and `vexil ops check ...`: the operations guide
as commands (the logic is in `vexil.ops`; the CLI's modules parse arguments and print).

This module holds what they share (connection, progress, error handling); each command group
is a module of its own (`status`, `backup`, `transfer`, `dr`, `check`).  Exit codes are the CLI's
one table (`vexil.cli.exitcodes`): CRITICAL (7) when a health indicator is critical, a check
FAILed, `verify` found differences, or a DR drill failed.

Where data comes from:
- `--target` / `--http-url`: a running server (GetStatus and admin RPCs over gRPC, `/metrics`
  over HTTP); `--http-url` defaults to the target's host on port 3001.
- `--table` (with `--env`, `--region`, `--dynamodb-endpoint`, `--config`, as `vexil dynamodb`):
  the DynamoDB table, for backups, PITR, table exports and imports, the drill.
Exports: `--from table` reads every item of the table (flags, history, environments, change log,
API keys: a lossless copy); `--from server` reads through the admin API, which is the only way
into an embedded (memory) store: environments, flags and the history of every flag it knows,
deleted ones included.  Imports: `--into table` writes the items into an empty (or new) table,
exactly, or with `--force` makes a table equal to the export; `--into server` creates and updates
flags through the admin API (all-or-nothing, merging like `vexil flags import`; versions and
history are the target's own) and restores kill states and deletions (`vexil.cli.restore`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from vexil.cli import credentials
from vexil.cli.exitcodes import UsageError, guarded
from vexil.cli.output import add_output_options
from vexil.cli.tableopts import add_table_options
from vexil.ops.connection import Connection, ConnectionOptionsError

if TYPE_CHECKING:
    from vexil.ops.progress import Progress

# `vexil.ops` and the AWS SDK load when an operations command runs, not with every `vexil`
# command (importing aioboto3 alone takes about half a second).

Command = Callable[[argparse.Namespace], int]


def server_options(p: argparse.ArgumentParser) -> None:
    """The CLI's one set of connection options (TLS, token, HTTP URL); `-e` and `--json` are
    these commands' own."""
    credentials.add_connection_options(p, output=False, environment=False, http=True)


def connection(args: argparse.Namespace) -> Connection:
    """The server connection the options describe; unusable options are a usage error."""
    server = credentials.connection(args)
    try:
        server.check()
        server.ssl_context()
    except ConnectionOptionsError as exc:
        raise UsageError(str(exc)) from None
    return server


def progress_of(args: argparse.Namespace) -> Progress:
    from vexil.ops.progress import Progress

    return Progress.quiet() if getattr(args, "quiet", False) or getattr(args, "json", False) else Progress()


def command(run: Command) -> Command:
    """Errors as messages and exit codes, the way the rest of the CLI reports them."""
    return lambda args: guarded(run, args)


def table_command(p: argparse.ArgumentParser, run: Command, *, server: bool = False) -> None:
    """An operations command on the table (with `server`, on a server too): its options, the
    output options, and its function."""
    if server:
        server_options(p)
    add_table_options(p)
    add_output_options(p, colour=True)
    p.set_defaults(func=command(run))


def add(sub: argparse._SubParsersAction) -> None:
    """`vexil status`, `vexil backup ...`, `vexil dr drill` and `vexil ops check ...`."""
    from vexil.cli import backup, check, dr, status

    status.add(sub)
    backup.add(sub)
    dr.add(sub)
    check.add(sub)


__all__ = ["add"]
