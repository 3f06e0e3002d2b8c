"""Item sets: a table's contents as a list of DynamoDB items, whatever they were read from.

Backups, exports, imports and `verify` all speak in items of vexil's single-table design
(`vexil.store.dynamodb_items`), because an item is the unit a restore can lose or change: a
flag, one history revision, an environment, one change-log entry, an API key.  An embedded
(memory) server has no table, so its state is turned into the very items `DynamoStore` would
have written for it (`environment_items`), and the same file format, checksum and comparison
serve both stores.

Items are kept in DynamoDB's wire form (`{"S": ...}`, `{"N": ...}`); binary values (`B`, `BS`)
become base64 text in JSON (`json_item`) and bytes again on the way back (`wire_item`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from vexil.model import Change, Environment, Flag, FlagRevision
from vexil.store import dynamodb_items

Item = dict[str, Any]
Key = tuple[str, str]

KINDS = ("FLAG", "FLAG_VERSION", "ENVIRONMENT", "CHANGE", "ADOPTION", "APIKEY", "OTHER")
"""The kinds of data an item set holds (and an export's header counts)."""
REPLICA = "REPLICA"
"""The kind of a replica registry item: a running process's heartbeat, not data (see `is_data`)."""


def key_of(item: Mapping[str, Any]) -> Key:
    return (str(item["PK"]["S"]), str(item["SK"]["S"]))


def kind_of(item: Mapping[str, Any]) -> str:
    """One of KINDS, or REPLICA, from the key (hand-written items carry no `itemType`)."""
    pk, sk = key_of(item)
    if pk.startswith("FLAG#"):
        return "FLAG" if sk == dynamodb_items.METADATA else "FLAG_VERSION"
    if pk.startswith("ENV#"):
        if sk == dynamodb_items.METADATA:
            return "ENVIRONMENT"
        if sk == dynamodb_items.ADOPTION:
            return "ADOPTION"
        if sk.startswith(dynamodb_items.REPLICA_PREFIX):
            return REPLICA
        return "CHANGE"
    if pk.startswith("APIKEY#"):
        return "APIKEY"
    return "OTHER"


def is_data(item: Mapping[str, Any]) -> bool:
    """Whether an item is part of what a backup keeps.  Replica registry items are not: each is a
    live process's heartbeat (rewritten every couple of seconds, expired seconds after it stops),
    so a copy of one is stale by the time it is read, and comparing or restoring it would only
    report or resurrect replicas that are not there."""
    return kind_of(item) != REPLICA


def data_items(items: Iterable[Item]) -> list[Item]:
    return [item for item in items if is_data(item)]


def environment_of(item: Mapping[str, Any]) -> str | None:
    """The environment an item belongs to (flag, history, environment, change log, adoption), or
    None for items of no environment (API keys)."""
    pk = key_of(item)[0]
    if pk.startswith("ENV#"):
        return pk.removeprefix("ENV#")
    if pk.startswith("FLAG#"):
        return pk.removeprefix("FLAG#").partition("#")[0]
    return None


def sorted_items(items: Iterable[Item]) -> list[Item]:
    return sorted(items, key=key_of)


def counts(items: Iterable[Item]) -> dict[str, int]:
    found = Counter(kind_of(item) for item in items)
    return {kind: found.get(kind, 0) for kind in KINDS}


def json_item(item: Mapping[str, Any]) -> Item:
    """An item as JSON can hold it (binary values as base64 text)."""
    return {name: _json_value(value) for name, value in item.items()}


def wire_item(item: Mapping[str, Any]) -> Item:
    """The inverse of `json_item`."""
    return {name: _wire_value(value) for name, value in item.items()}


def _json_value(value: Mapping[str, Any]) -> Any:
    ((tag, raw),) = value.items()
    if tag == "B":
        return {"B": base64.b64encode(bytes(raw)).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(bytes(v)).decode() for v in raw]}
    if tag == "L":
        return {"L": [_json_value(v) for v in raw]}
    if tag == "M":
        return {"M": {k: _json_value(v) for k, v in raw.items()}}
    return {tag: raw}


def _wire_value(value: Mapping[str, Any]) -> Any:
    ((tag, raw),) = value.items()
    if tag == "B":
        return {"B": base64.b64decode(raw)}
    if tag == "BS":
        return {"BS": [base64.b64decode(v) for v in raw]}
    if tag == "L":
        return {"L": [_wire_value(v) for v in raw]}
    if tag == "M":
        return {"M": {k: _wire_value(v) for k, v in raw.items()}}
    return {tag: raw}


def canonical(items: Iterable[Mapping[str, Any]]) -> bytes:
    """One byte string per item set: sorted by key, keys sorted, compact, UTF-8.  Sets (SS, NS)
    are sorted too, since DynamoDB returns their members in no particular order."""
    normal = [_normal(json_item(item)) for item in sorted_items(dict(i) for i in items)]
    return json.dumps(normal, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _normal(v) for k, v in value.items()}
        for tag in ("SS", "NS", "BS"):
            if tag in out and isinstance(out[tag], list):
                out[tag] = sorted(out[tag])
        return out
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def checksum(items: Iterable[Mapping[str, Any]]) -> str:
    return "sha256:" + hashlib.sha256(canonical(items)).hexdigest()


# --- replacing a table's contents with an export's ----------------------------------------


def kept_by_target(item: Mapping[str, Any]) -> bool:
    """Items a forced import neither writes nor removes: an adoption record is the operator's
    answer to *this* table's replicas (`vexil dynamodb adopt`), and one carried over from the
    export (or removed) would release, or re-arm, a replica's hold without the operator."""
    return kind_of(item) == "ADOPTION" or not is_data(item)


def replaced(export: Iterable[Item], table: Iterable[Item], *, whole_table: bool) -> list[Item]:
    """The table's items that a forced import of `export` removes, so that the table ends up
    equal to the export within what the export covers: the whole table for an export of a table,
    the export's environments for one made through a server (which holds no API keys, and no
    other environments).  Leaving them would mix two states: a change-log entry or history
    revision ahead of the restored environment item, which replicas would replay over it."""
    export = list(export)
    keys = {key_of(item) for item in export}
    environments = {environment_of(item) for item in export} - {None}

    def covered(item: Item) -> bool:
        return whole_table or environment_of(item) in environments

    return sorted_items(
        item for item in table if covered(item) and not kept_by_target(item) and key_of(item) not in keys
    )


# --- an environment as the items DynamoStore would hold for it --------------------------------


def environment_items(
    environment: Environment,
    flags: Iterable[Flag],
    revisions: Iterable[FlagRevision] = (),
    changes: Iterable[Change] = (),
) -> list[Item]:
    """The items of one environment (for servers without a table: the embedded store)."""
    out = [dynamodb_items.environment_to_item(environment)]
    out += [dynamodb_items.flag_to_item(flag) for flag in flags]
    out += [dynamodb_items.revision_to_item(revision) for revision in revisions]
    out += [dynamodb_items.change_to_item(change) for change in changes]
    return sorted_items(out)


def deleted_flags(items: Iterable[Item]) -> dict[str, list[Flag]]:
    """Per environment, each flag the items record as deleted (no flag item, and its newest
    revision is a deletion), as it was when it was deleted: its last definition and state, which
    a create of the key continues."""
    items = list(items)
    live = {key_of(item)[0] for item in items if kind_of(item) == "FLAG"}
    newest: dict[str, Item] = {}
    for item in items:
        pk, sk = key_of(item)
        if kind_of(item) != "FLAG_VERSION" or pk in live:
            continue
        if pk not in newest or sk > key_of(newest[pk])[1]:  # zero-padded: text order is version order
            newest[pk] = item
    found: dict[str, list[Flag]] = {}
    for _, item in sorted(newest.items()):
        revision = dynamodb_items.revision_from_item(item)
        if revision.deleted:
            found.setdefault(revision.flag.environment, []).append(revision.flag)
    return found


def environments(items: Iterable[Item]) -> dict[str, tuple[Environment, list[Flag]]]:
    """Each environment's settings and current flags, from its items (history is not needed to
    serve, so it is left out)."""
    envs: dict[str, Item | None] = {}
    flags: dict[str, list[Flag]] = {}
    for item in items:
        kind = kind_of(item)
        pk = key_of(item)[0]
        if kind == "ENVIRONMENT":
            envs[pk.removeprefix("ENV#")] = item
        elif kind == "FLAG":
            flag = dynamodb_items.flag_from_item(item)
            flags.setdefault(flag.environment, []).append(flag)
            envs.setdefault(flag.environment, None)
    return {
        name: (
            dynamodb_items.environment_from_item(name, envs[name]),
            sorted(flags.get(name, []), key=lambda f: f.key),
        )
        for name in sorted(envs)
    }
