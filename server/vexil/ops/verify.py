"""Item-by-item comparison of two item sets: a restored table against its source, an export
against a table, or two exports.

The report names every item that is `missing` (in the expected set, not the actual one),
`extra` (only in the actual one) or `different` (both, with the attributes that differ), so a
restore that lost or changed one flag says which flag, not just that counts differ.  Replica
registry items are not compared: they are heartbeats of the processes serving a table, not data
(`items.is_data`).

Scope `definitions` compares what serving depends on and nothing else: flag and environment
items, without versions, timestamps, authorship and index keys.  That is the comparison for a
round trip through a server's admin API (an import through the API makes new versions and
history by design); scope `all` (the default) is exact, for table-level restores and exports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vexil.ops import items as itemsets

Scope = Literal["all", "definitions"]
BOOKKEEPING = frozenset(
    {
        "version",
        "createdAt",
        "updatedAt",
        "updatedBy",
        "configVersion",
        "changedAt",
        "GSI1PK",
        "GSI1SK",
        "GSI2PK",
        "GSI2SK",
    }
)
"""Attributes a write through the API assigns itself; ignored in scope `definitions`."""
JSON_TEXT = frozenset({"variants", "targeting", "metadata", "evaluators"})
"""Attributes holding JSON text: compared as JSON values in scope `definitions` (the API may hand
back an object's members in another order)."""


@dataclass
class Difference:
    key: tuple[str, str]
    kind: str
    attributes: list[str]
    """Attributes whose values differ, or that only one side has."""


@dataclass
class Report:
    expected: int
    actual: int
    missing: list[tuple[str, str]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)
    different: list[Difference] = field(default_factory=list)
    scope: Scope = "all"

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.different)

    @property
    def matching(self) -> int:
        return self.expected - len(self.missing) - len(self.different)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "equal": self.equal,
            "expected": self.expected,
            "actual": self.actual,
            "matching": self.matching,
            "missing": ["/".join(key) for key in self.missing],
            "extra": ["/".join(key) for key in self.extra],
            "different": [
                {"item": "/".join(d.key), "kind": d.kind, "attributes": d.attributes} for d in self.different
            ],
        }


def compare(
    expected: Iterable[Mapping[str, Any]], actual: Iterable[Mapping[str, Any]], scope: Scope = "all"
) -> Report:
    want = _index(expected, scope)
    got = _index(actual, scope)
    report = Report(expected=len(want), actual=len(got), scope=scope)
    for key in sorted(want.keys() | got.keys()):
        if key not in got:
            report.missing.append(key)
        elif key not in want:
            report.extra.append(key)
        else:
            changed = _changed(want[key], got[key])
            if changed:
                report.different.append(Difference(key, itemsets.kind_of(want[key]), changed))
    return report


def _index(items: Iterable[Mapping[str, Any]], scope: Scope) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        if not itemsets.is_data(item):  # a replica's heartbeat (older exports hold them): not data
            continue
        if scope == "definitions":
            if itemsets.kind_of(item) not in ("FLAG", "ENVIRONMENT"):
                continue
            item = {name: _as_json(name, value) for name, value in item.items() if name not in BOOKKEEPING}
        out[itemsets.key_of(item)] = dict(item)
    return out


def _as_json(name: str, value: Any) -> Any:
    if name in JSON_TEXT and isinstance(value, Mapping) and isinstance(value.get("S"), str):
        try:
            return {"S": json.dumps(json.loads(value["S"]), sort_keys=True, separators=(",", ":"))}
        except ValueError:
            return value
    return value


def _changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(name for name in a.keys() | b.keys() if _norm(a.get(name)) != _norm(b.get(name)))


def _norm(value: Any) -> Any:
    """Values compared as canonical JSON (sets unordered, binary as base64)."""
    if value is None:
        return None
    return itemsets.canonical([{"PK": {"S": ""}, "SK": {"S": ""}, "v": value}])
