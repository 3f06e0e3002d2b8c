"""The `vexil` command: one module per command group, wired here.

Output is a human-readable table by default and JSON with `--json` (`vexil.cli.output`); exit
codes are stable so scripts can rely on them (the one table: `vexil.cli.exitcodes.ExitCode`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc

from vexil.cli import dynamodb, evaluate, flags, keys, ops, remote, serve
from vexil.cli.exitcodes import BY_STATUS, ServerGone, UsageError
from vexil.cli.serve import worker_command

EXIT_CODES = {code: BY_STATUS[code.name] for code in grpc.StatusCode if code.name in BY_STATUS}
"""The exit code of each gRPC status (`vexil.cli.exitcodes.BY_STATUS`, keyed by status)."""

__all__ = ["EXIT_CODES", "ServerGone", "UsageError", "build_parser", "main", "worker_command"]


def build_parser() -> argparse.ArgumentParser:
    from vexil import __version__

    parser = argparse.ArgumentParser(prog="vexil", description="vexil feature-flag service")
    parser.add_argument("--version", action="version", version=f"vexil {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add(sub)
    flags.add(sub)
    evaluate.add(sub)
    dynamodb.add(sub)
    ops.add(sub)
    keys.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "func"):
        return int(args.func(args))
    return remote.run(args)


if __name__ == "__main__":
    sys.exit(main())
