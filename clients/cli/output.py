"""The CLI's output: `--json` or human-readable text (proto-JSON dicts as aligned tables)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

SHORT_ENUMS = {
    "state": "FLAG_STATE_",
    "kind": "CHANGE_KIND_",
    "reason": "REASON_",
    "error_code": "ERROR_CODE_",
    "value_type": "VALUE_TYPE_",
    "role": "ROLE_",
    "type": "TYPE_",
}
"""Enum fields of the proto-JSON dicts, by name, and the prefix the tables leave out."""
LOWER_ENUMS = frozenset({"role"})
"""Enums the tables (and the command-line options) spell in lower case: `--role evaluator`."""
USER_DATA = frozenset({"variants", "targeting", "metadata", "context", "evaluators", "object_value", "value"})
"""Fields holding a flag's own JSON, passed through untouched (a variant may be any string)."""


def plain(data: Any) -> Any:
    """The JSON the CLI prints: proto-JSON with the tables' short enum names (`ENABLED`,
    `evaluator`, `CREATE`) instead of the proto's prefixed ones, so scripts read what people see."""
    if isinstance(data, list):
        return [plain(item) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for name, value in data.items():
        prefix = SHORT_ENUMS.get(name)
        if name in USER_DATA:
            out[name] = value
        elif prefix and isinstance(value, str) and value.startswith(prefix):
            short = value.removeprefix(prefix)
            out[name] = short.lower() if name in LOWER_ENUMS else short
        else:
            out[name] = plain(value)
    return out


def add_output_options(p: argparse.ArgumentParser, *, colour: bool = False) -> None:
    """`--json` (every command); with `colour`, the operations commands' `--color` and `--quiet`."""
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    if colour:
        p.add_argument(
            "--color", choices=["auto", "always", "never"], default="auto", help="colour the output"
        )
        p.add_argument("--quiet", action="store_true", help="no progress on standard error")


def emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    """Print the result: JSON with `--json`, else the text `text` renders."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str) if args.json else text())


def colour(args: argparse.Namespace) -> bool:
    """Whether to colour the output (`--color auto`: on a terminal, unless NO_COLOR is set)."""
    if args.color == "auto":
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return bool(args.color == "always")


def iso_time(seconds: float) -> str:
    """Seconds since the epoch as the proto-JSON spelling of a Timestamp: ISO-8601 UTC."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = json.dumps(value, separators=(",", ":")) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _state(flag: dict[str, Any]) -> str:
    return "DISABLED" if flag.get("state") == "FLAG_STATE_DISABLED" else "ENABLED"


def flag_table(flags: list[dict[str, Any]]) -> str:
    if not flags:
        return "(no flags)"
    rows = [
        (
            f["key"],
            _state(f),
            f.get("default_variant"),
            ",".join(sorted(f.get("variants", {}))),
            "yes" if f.get("targeting") else "no",
            f.get("owner", ""),
            f.get("version", "0"),
        )
        for f in flags
    ]
    return table(("KEY", "STATE", "DEFAULT", "VARIANTS", "TARGETING", "OWNER", "VERSION"), rows)


def flag_detail(flag: dict[str, Any]) -> str:
    order = (
        "key",
        "environment",
        "state",
        "default_variant",
        "variants",
        "targeting",
        "description",
        "owner",
        "tags",
        "metadata",
        "version",
        "created_at",
        "updated_at",
        "updated_by",
        "managed_by",
        "problem",
    )
    rows = [(name, flag[name]) for name in order if name in flag]
    return "\n".join(
        f"{name:<16} {json.dumps(value) if isinstance(value, dict | list) else value}" for name, value in rows
    )


def history_table(revisions: list[dict[str, Any]]) -> str:
    rows = [
        (
            r.get("flag", {}).get("version", "0"),
            r.get("kind", "").removeprefix("CHANGE_KIND_"),
            r.get("actor", ""),
            r.get("timestamp", ""),
            r.get("reason", ""),
        )
        for r in revisions
    ]
    return table(("VERSION", "KIND", "ACTOR", "TIME", "REASON"), rows)


def change_table(changes: list[dict[str, Any]]) -> str:
    if not changes:
        return "(no changes)"
    rows = [
        (
            c.get("config_version", "0"),
            c.get("kind", "").removeprefix("CHANGE_KIND_"),
            c.get("flag_key", ""),
            f"{c.get('before_version', '0')}->{c.get('after_version', '0')}",
            c.get("actor", ""),
            c.get("timestamp", ""),
            c.get("reason", ""),
        )
        for c in changes
    ]
    return table(("CONFIG", "KIND", "FLAG", "VERSIONS", "ACTOR", "TIME", "REASON"), rows)


VALUE_FIELDS = ("bool_value", "string_value", "int_value", "double_value", "object_value")


def resolution(res: dict[str, Any]) -> str:
    value = next((res[f] for f in VALUE_FIELDS if f in res), None)
    rows = [
        ("flag", res.get("flag_key", "")),
        ("value", json.dumps(value, ensure_ascii=False) if value is not None else "(caller's default)"),
        ("variant", res.get("variant", "")),
        ("reason", res.get("reason", "").removeprefix("REASON_")),
    ]
    if res.get("error_code"):
        rows.append(
            ("error", f"{res['error_code'].removeprefix('ERROR_CODE_')}: {res.get('error_message', '')}")
        )
    rows.append(("flag_version", res.get("flag_version", "0")))
    rows.append(("config_version", res.get("config_version", "0")))
    return "\n".join(f"{k:<15} {v}" for k, v in rows)


def watch_event(event: dict[str, Any]) -> str:
    kind = event.get("type", "").removeprefix("TYPE_")
    version = event.get("config_version", "0")
    if kind == "SNAPSHOT":
        return f"[{version}] SNAPSHOT {len(event.get('flags', []))} flags ({event.get('reason', '')})"
    if kind == "HEARTBEAT":
        return f"[{version}] HEARTBEAT"
    change = event.get("change", {})
    who = change.get("actor", "")
    what = event.get("flag_key") or event.get("environment", {}).get("name", "")
    return f"[{version}] {kind} {what} by {who} {change.get('reason', '')}".rstrip()
