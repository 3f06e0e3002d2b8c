"""`vexil flags list|get|create|update|delete|history|rollback|kill|changes|import|export`:
managing flags through the admin API (see `vexil.cli.remote` for how a remote command runs)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from vexil.cli import numbers, output
from vexil.cli.exitcodes import ExitCode, UsageError
from vexil.cli.remote import Remote, add_command, json_arg, to_dict
from vexil.errors import InvalidArgument
from vexil.flagfile import read_text

OUTPUT_ONLY = ("version", "created_at", "updated_at", "updated_by", "managed_by", "problem")
"""Fields of a flag the server sets: a definition read back is sent without them."""


def flag_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Flag as a proto-JSON dict, from a --file and/or individual options (options win)."""
    flag: dict[str, Any] = dict(base or {})
    if getattr(args, "file", None):
        try:
            text = read_text(Path(args.file))
        except OSError as exc:
            raise UsageError(f"--file {args.file}: {exc.strerror}") from None
        except InvalidArgument as exc:
            raise UsageError(f"--file {exc.message}") from None
        body = json_arg(text, f"--file {args.file}")
        if not isinstance(body, dict):
            raise UsageError("--file must hold one flag definition object")
        mapping = {"defaultVariant": "default_variant"}
        for key, value in body.items():
            flag[mapping.get(str(key), str(key))] = value
    if args.variants is not None:
        flag["variants"] = json_arg(args.variants, "--variants")
    if "variants" not in flag:
        flag["variants"] = {"on": True, "off": False}
        flag.setdefault("default_variant", "off")
    if args.default is not None:
        flag["default_variant"] = args.default
    if args.targeting is not None:
        flag["targeting"] = json_arg(args.targeting, "--targeting")
    for name in ("description", "owner"):
        if getattr(args, name) is not None:
            flag[name] = getattr(args, name)
    if args.tag:
        flag["tags"] = list(args.tag)
    if args.metadata is not None:
        flag["metadata"] = json_arg(args.metadata, "--metadata")
    if args.state is not None:
        flag["state"] = f"FLAG_STATE_{args.state.upper()}"
    if isinstance(flag.get("state"), str) and not flag["state"].startswith("FLAG_STATE_"):
        flag["state"] = f"FLAG_STATE_{flag['state']}"
    flag["key"] = args.key
    if args.environment:
        flag["environment"] = args.environment
    return flag


def parse_flag(flag: dict[str, Any]) -> Any:
    from vexil.v1 import flag_pb2

    try:
        return json_format.ParseDict(flag, flag_pb2.Flag())
    except json_format.ParseError as exc:
        raise UsageError(f"flag definition: {exc}") from None


def add_wait_options(p: argparse.ArgumentParser) -> None:
    """`--wait` on a write: answer only once every live replica serves it (a propagation receipt)."""
    p.add_argument(
        "--wait",
        action="store_true",
        help="after the write, wait until every live replica has applied it and say so "
        "(exit 6 if some have not within --wait-timeout)",
    )
    p.add_argument(
        "--wait-timeout",
        type=numbers.positive(60),
        default=10.0,
        help="seconds --wait waits at most (default 10, max 60)",
    )


def waited(r: Remote, config_version: int, started: float, data: dict[str, Any], render: Any) -> Any:
    """With `--wait`: the write's result plus its propagation receipt (WaitForPropagation), printed
    as "applied by k/n replicas in N ms" (N: from sending the write to the receipt)."""
    from vexil.v1 import admin_pb2

    a = r.args
    if not a.wait:
        return data, render
    req = admin_pb2.WaitForPropagationRequest(
        environment=r.environment, config_version=config_version, timeout_seconds=a.wait_timeout
    )
    receipt = to_dict(r.call(r.admin.WaitForPropagation, req, timeout=a.wait_timeout + r.args.timeout))
    elapsed_ms = (time.monotonic() - started) * 1000
    applied, total = receipt.get("applied", 0), receipt.get("total", 0)
    data = {**data, "propagation": {**receipt, "elapsed_ms": round(elapsed_ms, 1)}}

    def render_with_receipt(d: dict[str, Any]) -> str:
        lines = [render(d)] if render is not None else []
        lines.append(f"applied by {applied}/{total} replicas in {elapsed_ms:.0f} ms")
        by_id = {x.get("id"): x for x in receipt.get("replicas", [])}
        for laggard in receipt.get("laggards", []):
            x = by_id.get(laggard, {})
            lines.append(
                f"  still behind: {laggard} at {x.get('address', '?')} serves config_version "
                f"{x.get('config_version', 0)} (last seen {float(x.get('last_seen_seconds', 0)):.1f} s ago)"
            )
        return "\n".join(lines)

    if receipt.get("complete"):
        return data, render_with_receipt
    return data, render_with_receipt, ExitCode.UNAVAILABLE


def cmd_flags_list(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    flags: list[Any] = []
    token = ""
    while True:
        req = admin_pb2.ListFlagsRequest(
            environment=r.environment, owner=a.owner or "", tag=a.tag or "", page_size=500, page_token=token
        )
        resp = r.call(r.admin.ListFlags, req)
        flags.extend(resp.flags)
        token = resp.next_page_token
        if not token:
            break
    return [to_dict(f) for f in flags], output.flag_table


def cmd_flags_get(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    flag = r.call(r.admin.GetFlag, admin_pb2.GetFlagRequest(environment=r.environment, key=r.args.key))
    return to_dict(flag), output.flag_detail


def cmd_flags_create(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    flag = parse_flag(flag_from_args(r.args))
    resp = r.call(r.admin.CreateFlag, admin_pb2.CreateFlagRequest(flag=flag, reason=r.args.reason or ""))
    return to_dict(resp.flag), output.flag_detail


def cmd_flags_update(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    if a.state is not None:
        raise UsageError(
            "a flag's state is its kill switch, which an update never changes: use "
            f"`vexil flags kill {a.key} --reason ...` (or `vexil flags kill {a.key} --revive`; admin role)"
        )
    current = r.call(r.admin.GetFlag, admin_pb2.GetFlagRequest(environment=r.environment, key=a.key))
    base = to_dict(current)
    # "state" too: a request without one keeps the stored state, even if a kill lands meanwhile.
    for output_only in (*OUTPUT_ONLY, "state"):
        base.pop(output_only, None)
    flag = parse_flag(flag_from_args(a, base))
    expected = a.expected_version if a.expected_version is not None else current.version
    started = time.monotonic()
    resp = r.call(
        r.admin.UpdateFlag,
        admin_pb2.UpdateFlagRequest(flag=flag, expected_version=expected, reason=a.reason or ""),
    )
    return waited(r, resp.config_version, started, to_dict(resp.flag), output.flag_detail)


def cmd_flags_delete(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    req = admin_pb2.DeleteFlagRequest(environment=r.environment, key=a.key, reason=a.reason or "")
    if a.expected_version is not None:
        req.expected_version = a.expected_version
    resp = r.call(r.admin.DeleteFlag, req)
    return to_dict(resp), lambda d: f"deleted {a.key} (was version {d.get('deleted_version', 0)})"


def cmd_flags_history(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    req = admin_pb2.GetFlagHistoryRequest(environment=r.environment, key=r.args.key, page_size=r.args.limit)
    resp = r.call(r.admin.GetFlagHistory, req)
    return [to_dict(rev) for rev in resp.revisions], output.history_table


def cmd_flags_rollback(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    req = admin_pb2.RollbackFlagRequest(
        environment=r.environment, key=a.key, to_version=a.to, reason=a.reason or ""
    )
    if a.expected_version is not None:
        req.expected_version = a.expected_version
    started = time.monotonic()
    resp = r.call(r.admin.RollbackFlag, req)
    return waited(r, resp.config_version, started, to_dict(resp.flag), output.flag_detail)


def cmd_flags_kill(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    if not a.key and not a.all:
        raise UsageError("name a flag, or pass --all to kill the whole environment")
    if a.key and a.all:
        raise UsageError("name a flag or pass --all, not both")
    req = admin_pb2.SetKillSwitchRequest(
        environment=r.environment, flag_key=a.key or "", killed=not a.revive, reason=a.reason or ""
    )
    started = time.monotonic()
    resp = r.call(r.admin.SetKillSwitch, req)
    what = f"flag {a.key}" if a.key else "environment"
    verb = "revived" if a.revive else "killed"
    return waited(
        r,
        resp.config_version,
        started,
        to_dict(resp),
        lambda d: f"{what} {verb} (config_version {d.get('config_version', 0)})",
    )


def cmd_flags_changes(r: Remote) -> Any:
    from vexil.v1 import admin_pb2

    a = r.args
    req = admin_pb2.ListChangesRequest(
        environment=r.environment, since_version=a.since, page_size=a.limit, flag_key=a.key or ""
    )
    resp = r.call(r.admin.ListChanges, req)
    return [to_dict(c) for c in resp.changes], output.change_table


def cmd_flags_import(r: Remote) -> Any:
    from vexil.cli import flagfiles

    a = r.args
    try:
        data = flagfiles.run_import(
            r.call, r.admin, r.environment, a.file, dry_run=a.dry_run, reason=a.reason or ""
        )
    except flagfiles.FileProblem as exc:
        raise UsageError(str(exc)) from None
    return data, flagfiles.render_summary


def cmd_flags_export(r: Remote) -> Any:
    from vexil.cli import flagfiles

    data = flagfiles.run_export(r.call, r.admin, r.environment, r.args.file)
    return data, (lambda d: f"exported {d['flags']} flags to {d['file']}") if data else None


def add(sub: argparse._SubParsersAction) -> None:
    def definition(p: argparse.ArgumentParser) -> None:
        p.add_argument("--file", help="JSON file with one flagd flag definition")
        p.add_argument("--variants", help='variants as JSON, e.g. \'{"on": true, "off": false}\'')
        p.add_argument("--default", help="default variant name")
        p.add_argument("--targeting", help="JSONLogic targeting rule as JSON")
        p.add_argument("--description")
        p.add_argument("--owner")
        p.add_argument("--tag", action="append", help="tag (repeatable; replaces all tags)")
        p.add_argument("--metadata", help="metadata as a JSON object")
        p.add_argument(
            "--state",
            choices=["enabled", "disabled"],
            help="create: the initial state; update: refused, use `vexil flags kill` (the kill switch)",
        )
        p.add_argument("--reason", help="why (recorded in the change log)")

    flags = sub.add_parser("flags", help="manage flags").add_subparsers(dest="flags_command", required=True)
    p = flags.add_parser("list", help="list flags")
    p.add_argument("--owner")
    p.add_argument("--tag")
    add_command(p, cmd_flags_list)
    p = flags.add_parser("get", help="show one flag")
    p.add_argument("key")
    add_command(p, cmd_flags_get)
    p = flags.add_parser("create", help="create a flag (no --variants: a boolean on/off flag)")
    p.add_argument("key")
    definition(p)
    add_command(p, cmd_flags_create)
    p = flags.add_parser("update", help="change a flag (read, modify, write with its version)")
    p.add_argument("key")
    definition(p)
    p.add_argument(
        "--expected-version", type=numbers.whole(), help="refuse if the flag is not at this version"
    )
    add_wait_options(p)
    add_command(p, cmd_flags_update)
    p = flags.add_parser("delete", help="delete a flag (its history stays)")
    p.add_argument("key")
    p.add_argument("--expected-version", type=numbers.whole())
    p.add_argument("--reason")
    add_command(p, cmd_flags_delete)
    p = flags.add_parser("history", help="a flag's revisions, newest first")
    p.add_argument("key")
    p.add_argument("--limit", type=numbers.whole(most=numbers.UINT32_MAX), default=50)
    add_command(p, cmd_flags_history)
    p = flags.add_parser("rollback", help="make an earlier revision current again")
    p.add_argument("key")
    p.add_argument("--to", type=numbers.whole(), required=True, help="version to roll back to")
    p.add_argument("--expected-version", type=numbers.whole())
    p.add_argument("--reason")
    add_wait_options(p)
    add_command(p, cmd_flags_rollback)
    p = flags.add_parser("kill", help="kill switch: a flag, or the whole environment with --all")
    p.add_argument("key", nargs="?")
    p.add_argument("--all", action="store_true", help="kill every flag of the environment")
    p.add_argument("--revive", action="store_true", help="turn the kill switch off again")
    p.add_argument("--reason", help="why (required when killing)")
    add_wait_options(p)
    add_command(p, cmd_flags_kill)
    p = flags.add_parser("changes", help="the change log (audit trail)")
    p.add_argument("--since", type=numbers.whole(), default=0, help="only after this config_version")
    p.add_argument("--limit", type=numbers.whole(most=numbers.UINT32_MAX), default=100)
    p.add_argument("--key", help="only changes of this flag")
    add_command(p, cmd_flags_changes)

    p = flags.add_parser("import", help="create/update flags from a flagd file (all or nothing)")
    p.add_argument("file", help="flagd flag-definition file (JSON or YAML)")
    p.add_argument("--dry-run", action="store_true", help="check and show what would change; write nothing")
    p.add_argument("--reason", help="why (recorded in the change log)")
    add_command(p, cmd_flags_import)
    p = flags.add_parser("export", help="write the environment as a flagd file (JSON)")
    p.add_argument("file", nargs="?", help="where to write (default: standard output)")
    add_command(p, cmd_flags_export)
