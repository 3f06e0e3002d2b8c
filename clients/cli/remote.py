"""What every command that calls a server's RPCs shares: the connection (from the options of
`credentials.add_connection_options`), proto-JSON conversion, and printing the result.

A remote command is a function `(Remote) -> (data, render)`: `data` is printed as JSON with
`--json`, else `render(data)`; a `render` of None prints nothing (the command printed already).
A command whose result is printed but is not a success (a write whose `--wait` timed out) returns
`(data, render, exit_code)`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format

from vexil.cli import credentials, output
from vexil.cli.exitcodes import ExitCode, UsageError, guarded


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


def json_arg(text: str, what: str) -> Any:
    """An option's JSON value; invalid JSON is a usage error naming the option."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None


def add_command(p: argparse.ArgumentParser, command: Callable[[Remote], Any]) -> None:
    """A remote command: the connection options, and the function `run` calls with a `Remote`."""
    credentials.add_connection_options(p)
    p.set_defaults(remote=command)


def run(args: argparse.Namespace) -> int:
    """Connect, run the parsed command (`args.remote`) and print its result."""

    def command() -> int:
        with credentials.connection(args).refusals_explained():
            data, render, *code = args.remote(Remote(args))
        if render is not None:
            output.emit(args, output.plain(data), lambda: render(data))
        return code[0] if code else ExitCode.OK

    return guarded(command)
