"""`vexil evaluate` (one flag for a context) and `vexil watch` (stream flag changes)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc

from vexil.cli import numbers, output
from vexil.cli.exitcodes import ServerGone, UsageError
from vexil.cli.remote import Remote, add_command, json_arg, to_dict


def cmd_evaluate(r: Remote) -> Any:
    from vexil.v1 import evaluation_pb2

    a = r.args
    context = json_arg(a.context, "--context")
    if not isinstance(context, dict):
        raise UsageError("--context must be a JSON object")
    req = evaluation_pb2.EvaluateRequest(flag_key=a.key, environment=r.environment)
    req.context.update(context)
    resp = r.call(r.evaluation.Evaluate, req)
    return to_dict(resp), output.resolution


def cmd_watch(r: Remote) -> Any:
    from vexil.v1 import evaluation_pb2

    a = r.args
    req = evaluation_pb2.WatchRequest(environment=r.environment, flag_keys=a.key or [])
    if a.since is not None:
        req.since_version = a.since
    stream = r.evaluation.Watch(req, metadata=r.metadata)
    received = 0
    try:
        for event in stream:
            data = to_dict(event)
            print(json.dumps(output.plain(data)) if a.json else output.watch_event(data), flush=True)
            received += 1
            if a.count and received >= a.count:
                stream.cancel()
                break
    except KeyboardInterrupt:
        stream.cancel()
        return None, None
    except grpc.RpcError as exc:
        # A server that shuts down ends open streams with UNAVAILABLE (clients reconnect): once
        # the stream was open, that is the server ending it, not a failure to connect.
        if not received or exc.code() is not grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
            raise
        details = exc.details()  # type: ignore[attr-defined]
        raise ServerGone(f"the server ended the Watch stream after {received} events ({details})") from None
    if not (a.count and received >= a.count):
        raise ServerGone(f"the server ended the Watch stream after {received} events")
    return None, None


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate one flag for a context")
    p.add_argument("key")
    p.add_argument("--context", default="{}", help="evaluation context as a JSON object")
    add_command(p, cmd_evaluate)

    p = sub.add_parser("watch", help="stream flag changes")
    p.add_argument("--key", action="append", help="only this flag (repeatable)")
    p.add_argument("--since", type=numbers.whole(), help="resume after this config_version")
    p.add_argument("--count", type=numbers.whole(), default=0, help="stop after this many events")
    add_command(p, cmd_watch)
