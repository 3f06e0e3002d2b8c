"""Items of vexil's single DynamoDB table and their conversion to and from the model.

Layout (docs/dynamodb.md):

| item        | PK                 | SK                       |
|-------------|--------------------|--------------------------|
| flag        | FLAG#<env>#<key>   | METADATA                 |
| history     | FLAG#<env>#<key>   | VERSION#<000000000007>   |
| environment | ENV#<env>          | METADATA                 |
| change log  | ENV#<env>          | CHANGE#<000000000042>    |
| replica     | ENV#<env>          | REPLICA#<replica id>     |

The flag item carries the operations guide's attributes (flagKey, description, defaultEnabled,
owner, createdAt as ISO-8601 text) so the guide's tooling keeps working, plus vexil's own.
JSON-shaped fields (variants, targeting, metadata, evaluators) are stored as JSON *text*: DynamoDB
numbers come back as Decimal and cannot tell 1 from 1.0, and its maps refuse some keys, so text is
the only encoding that round-trips exactly.  History and change-log items hold the whole flag (or
environment) as one JSON record.

A flag item written by hand as in the guide (no `variants`, no `version`, no GSI attributes) is
read as a boolean flag: variants on/off, default `on` if `defaultEnabled`, state ENABLED and
version 1 (it *is* stored, and the model reserves 0 for "never stored").  Whatever else such an
item holds never fails more than its own flag (`flag_from_item`; docs/dynamodb.md lists how each
attribute is read): a definition that cannot be used makes a flag with `problem` set, which
answers PARSE_ERROR, and every finding is logged once per item.

Items are in DynamoDB's low-level wire form (`{"S": ...}`, `{"N": ...}`) because the store uses
the plain client; the small encoder here is all the conversion needed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from vexil.errors import InvalidArgument
from vexil.model import Change, ChangeKind, Environment, Flag, FlagRevision, FlagState
from vexil.store import records
from vexil.store.replicas import ReplicaRecord

log = logging.getLogger(__name__)

Item = dict[str, dict[str, Any]]
"""A DynamoDB item in wire form, e.g. {"PK": {"S": "ENV#prod"}}."""

PAD = 12
METADATA = "METADATA"
ADOPTION = "ADOPTION"
"""SK of an environment's adoption record (the operator took the store's state as it is)."""
VERSION_PREFIX = "VERSION#"
CHANGE_PREFIX = "CHANGE#"
LAST_CHANGE_VERSION = 10**PAD - 1
"""The highest config version a change-log key can hold (`change_sk` pads to PAD digits)."""
LAST_CHANGE_SK = CHANGE_PREFIX + "9" * PAD

TYPE_FLAG = "FLAG"
TYPE_REVISION = "FLAG_VERSION"
TYPE_ENVIRONMENT = "ENVIRONMENT"
TYPE_CHANGE = "CHANGE"
TYPE_ADOPTION = "ADOPTION"
TYPE_REPLICA = "REPLICA"
REPLICA_PREFIX = "REPLICA#"

EXPIRES_AT = "expiresAt"
"""The change log's TTL attribute (epoch seconds): DynamoDB deletes an entry some time after it
passes, and readers treat an entry past it as gone already (TTL deletion is lazy)."""
GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK = "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK"

HAND_WRITTEN_VERSION = 1
"""Version served for a flag item without a `version` attribute (provisioned by hand)."""

IMPORT_REASON = "provisioned outside vexil; recorded on its first write through vexil"


# --- keys ---------------------------------------------------------------------------------


def flag_pk(env: str, key: str) -> str:
    return f"FLAG#{env}#{key}"


def flag_prefix(env: str) -> str:
    return f"FLAG#{env}#"


def env_pk(env: str) -> str:
    return f"ENV#{env}"


def version_sk(version: int) -> str:
    return f"{VERSION_PREFIX}{version:0{PAD}d}"


def change_sk(config_version: int) -> str:
    return f"{CHANGE_PREFIX}{config_version:0{PAD}d}"


def change_version_of(sk: str) -> int | None:
    """The config version a change-log key holds, or None for a key `change_sk` never writes
    (`CHANGE#abc`, written by hand): readers skip such an item rather than fail on it."""
    digits = sk.removeprefix(CHANGE_PREFIX)
    if not sk.startswith(CHANGE_PREFIX) or len(digits) != PAD or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


def key(pk: str, sk: str) -> Item:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def flag_item_key(env: str, flag_key: str) -> Item:
    return key(flag_pk(env, flag_key), METADATA)


def env_item_key(env: str) -> Item:
    return key(env_pk(env), METADATA)


def adoption_item_key(env: str) -> Item:
    return key(env_pk(env), ADOPTION)


def replica_item_key(env: str, replica_id: str) -> Item:
    return key(env_pk(env), REPLICA_PREFIX + replica_id)


# --- wire values --------------------------------------------------------------------------


def s(value: str) -> dict[str, Any]:
    return {"S": value}


def n(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def b(value: bool) -> dict[str, Any]:
    return {"BOOL": value}


def js(value: Any, field: str) -> dict[str, Any]:
    return {"S": records.dump_json(value, field)}


def decode(value: Mapping[str, Any]) -> Any:
    """A wire value to Python (numbers as Decimal, as boto does)."""
    ((tag, raw),) = value.items()
    if tag == "S":
        return raw
    if tag == "N":
        return Decimal(raw)
    if tag == "BOOL":
        return bool(raw)
    if tag == "NULL":
        return None
    if tag == "L":
        return [decode(v) for v in raw]
    if tag == "M":
        return {k: decode(v) for k, v in raw.items()}
    if tag == "SS":
        return set(raw)
    if tag == "NS":
        return {Decimal(v) for v in raw}
    if tag == "B":
        return bytes(raw) if not isinstance(raw, str) else raw.encode()
    if tag == "BS":
        return {bytes(v) for v in raw}
    raise ValueError(f"unknown DynamoDB type {tag}")


def _get(item: Item, name: str, default: Any = None) -> Any:
    value = item.get(name)
    return default if value is None else decode(value)


def _text(item: Item, name: str) -> str:
    value = _get(item, name, "")
    return value if isinstance(value, str) else str(records.from_decimal(value))


def _int(item: Item, name: str, default: int = 0) -> int:
    value = _get(item, name)
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError, ArithmeticError):
        return default


def _json_field(item: Item, name: str, default: Any, depth: int = 1) -> tuple[Any, str]:
    """A JSON-shaped attribute: JSON text as vexil writes it, or a native map/list by hand; and
    what is wrong with it ("" when nothing), `default` standing in for what cannot be used: text
    that is not JSON or that Python cannot read (a number of more than 4,300 digits, nesting
    deeper than its recursion limit), or a value some reader could not carry
    (`records.check_portable`, the admin API's own check: `depth` as there)."""
    value = _get(item, name)
    if value is None:
        return default, ""
    if isinstance(value, str):
        try:
            loaded = records.load_json(value)
        except json.JSONDecodeError as exc:
            return default, f"{name}: not JSON text ({exc})"
        except (ValueError, RecursionError) as exc:
            return default, f"{name}: JSON text that cannot be read ({_brief(exc)})"
    elif isinstance(value, dict | list):
        loaded = records.from_decimal(value)
    else:
        tag = next(iter(item[name]))
        return default, f"{name}: a DynamoDB {tag} attribute; it holds JSON text (S), a map (M) or a list (L)"
    try:
        records.check_portable(loaded, name, depth)
    except InvalidArgument as exc:
        return default, str(exc)
    return loaded, ""


def _brief(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _truthy(value: Any) -> bool:
    """`defaultEnabled` as people write it: BOOL, "true"/"1"/"yes", or a number."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on", "enabled")
    if isinstance(value, Decimal):
        return value != 0
    return bool(value)


ENABLED_SPELLINGS = frozenset(("enabled", "true", "1", "on", "yes"))
DISABLED_SPELLINGS = frozenset(("disabled", "false", "0", "off", "no", "killed"))
"""`state` as people write it by hand (case-insensitive, also BOOL and N 0/1): what vexil writes
is `ENABLED` or `DISABLED`.  Any other value makes the flag unusable, never silently ENABLED."""


def _state(item: Item) -> tuple[FlagState, str, str]:
    """The flag's state, a note when it is spelt otherwise than vexil writes it, and a problem
    when it says neither enabled nor disabled."""
    value = _get(item, "state")
    if value is None or value in ("ENABLED", "DISABLED"):
        return FlagState(value or FlagState.ENABLED), "", ""
    if isinstance(value, bool):
        spelt = "true" if value else "false"
    elif isinstance(value, Decimal):
        spelt = str(value)
    elif isinstance(value, str):
        spelt = value.strip().lower()
    else:
        spelt = ""
    spellings = ((FlagState.ENABLED, ENABLED_SPELLINGS), (FlagState.DISABLED, DISABLED_SPELLINGS))
    for state, spelt_so in spellings:
        if spelt in spelt_so:
            return state, f"state {_shown(item['state'])} read as {state}", ""
    return FlagState.ENABLED, "", f"state {_shown(item['state'])} is neither ENABLED nor DISABLED"


def _shown(value: Mapping[str, Any]) -> str:
    """A wire value as a log line shows it, short."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


MAX_VERSION = LAST_CHANGE_VERSION
"""The highest flag version a history key holds (`version_sk` pads to PAD digits)."""


def version_of(item: Item) -> int | None:
    """The item's `version` when it is one vexil could have written (a whole number from 1 to
    MAX_VERSION); None when it has none, or one no flag has (0, -5, 1.5, 1E+125, text)."""
    value = _get(item, "version")
    if isinstance(value, Decimal) and value == value.to_integral_value() and 1 <= value <= MAX_VERSION:
        return int(value)
    return None


_reported: dict[str, str] = {}
"""What was last logged about each item (by PK): a reload every cache TTL reads every item again,
and an item is reported when it first reads wrong or reads wrong differently, not every time."""
_REPORTED_MAX = 100_000


def _report(pk: str, problems: list[str], notes: list[str]) -> None:
    """One WARNING naming the item and what is wrong with it, once per distinct finding."""
    said = "; ".join(problems + notes)
    if not said:
        _reported.pop(pk, None)
        return
    if _reported.get(pk) == said:
        return
    if len(_reported) >= _REPORTED_MAX:
        _reported.clear()
    _reported[pk] = said
    if problems:
        log.warning("item PK=%r cannot be used, it answers PARSE_ERROR: %s", pk, said)
    else:
        log.warning("item PK=%r is served, read as follows: %s", pk, said)


# --- flags --------------------------------------------------------------------------------


def default_enabled(flag: Flag) -> bool:
    """The guide's `defaultEnabled` for a vexil flag, for tools that still read it: whether the
    flag serves "on" when nothing matches.  Informational only; vexil never reads it back when
    the item has `variants`."""
    if not flag.enabled or flag.default_variant is None:
        return False
    value = flag.variants.get(flag.default_variant)
    return value is True or (not isinstance(value, bool) and value is not None)


def flag_to_item(flag: Flag) -> Item:
    item: Item = {
        **flag_item_key(flag.environment, flag.key),
        "itemType": s(TYPE_FLAG),
        "flagKey": s(flag.key),
        "environment": s(flag.environment),
        "description": s(flag.description),
        "defaultEnabled": b(default_enabled(flag)),
        "owner": s(flag.owner),
        "createdAt": s(records.format_timestamp(flag.created_at)),
        "variants": js(dict(flag.variants), "variants"),
        "state": s(str(flag.state)),
        "targeting": js(flag.targeting, "targeting"),
        "tags": {"L": [s(t) for t in flag.tags]},
        "metadata": js(dict(flag.metadata), "metadata"),
        "version": n(flag.version),
        "updatedAt": s(records.format_timestamp(flag.updated_at)),
        "updatedBy": s(flag.updated_by),
        **index_attributes(flag.environment, flag.key, flag.owner),
    }
    if flag.default_variant is not None:
        item["defaultVariant"] = s(flag.default_variant)
    if flag.managed_by:  # absent on items of flags made through the API (and on older items)
        item["managedBy"] = s(flag.managed_by)
    return item


VEXIL_ATTRIBUTES = frozenset(
    (
        "PK",
        "SK",
        "itemType",
        "flagKey",
        "environment",
        "description",
        "defaultEnabled",
        "owner",
        "createdAt",
        "variants",
        "state",
        "targeting",
        "tags",
        "metadata",
        "version",
        "updatedAt",
        "updatedBy",
        "defaultVariant",
        "managedBy",
        "GSI1PK",
        "GSI1SK",
        "GSI2PK",
        "GSI2SK",
    )
)
"""Every attribute `flag_to_item` may write: what a write through vexil decides for a flag item."""


def carried_over(item: Item | None) -> Item:
    """The attributes of a stored flag item that vexil neither reads nor writes (added by hand or
    by other tools: a TTL, a team's own bookkeeping): a write through vexil keeps them."""
    return {name: value for name, value in (item or {}).items() if name not in VEXIL_ATTRIBUTES}


def gsi1_pk(env: str) -> str:
    return env_pk(env)


def gsi1_sk(flag_key: str) -> str:
    return f"FLAG#{flag_key}"


def gsi1_flag_key(item: Item) -> str:
    """The flag key an index item or start key is sorted by in GSI1 (its `GSI1SK`)."""
    return str(item[GSI1_SK]["S"]).removeprefix(gsi1_sk(""))


def gsi2_pk(env: str, owner: str) -> str:
    return f"OWNER#{env}#{owner}"


def index_attributes(env: str, flag_key: str, owner: str) -> Item:
    """The GSI attributes of a flag item: GSI1 lists an environment, GSI2 one owner's flags (sparse:
    index keys cannot be empty strings, so a flag without owner has none)."""
    attributes: Item = {GSI1_PK: s(gsi1_pk(env)), GSI1_SK: s(gsi1_sk(flag_key))}
    if owner:
        attributes[GSI2_PK] = s(gsi2_pk(env, owner))
        attributes[GSI2_SK] = s(gsi1_sk(flag_key))
    return attributes


def is_indexed(item: Item) -> bool:
    """Whether GSI1 finds this flag item (a hand-written one has no GSI attributes until vexil
    adds them, see `DynamoStore`)."""
    return GSI1_PK in item and GSI1_SK in item


def index_start_key(index_pk: str, index_pk_value: str, env: str, flag_key: str) -> Item:
    """An ExclusiveStartKey on GSI1 or GSI2 just after `flag_key`: the index keys plus the table's."""
    sk_name = GSI1_SK if index_pk == GSI1_PK else GSI2_SK
    return {
        index_pk: s(index_pk_value),
        sk_name: s(gsi1_sk(flag_key)),
        **flag_item_key(env, flag_key),
    }


def is_hand_written(item: Item) -> bool:
    """No `version` attribute: provisioned outside vexil (the operations guide's shape)."""
    return "version" not in item


def flag_from_item(item: Item) -> Flag:
    """The flag an item holds; never raises over what an attribute holds.

    What it cannot use in the definition (see `_json_field`, `_state`, a `defaultVariant` that
    is not text) makes a flag with `problem` set and no variants, which answers PARSE_ERROR
    everywhere; what it can read around (a time outside the years 1 to 9999, an impossible
    `version`, a `flagKey` other than the PK's, tags it cannot read) is read so and reported.
    Either is logged once per item and finding (`_report`)."""
    pk = _text(item, "PK")
    _, env, key_from_pk = pk.split("#", 2)
    problems: list[str] = []
    notes: list[str] = []
    created_at, wrong = records.read_timestamp(_get(item, "createdAt"))
    if wrong:
        notes.append(f"createdAt {wrong}")
    updated_at = created_at
    if "updatedAt" in item:
        updated_at, wrong = records.read_timestamp(_get(item, "updatedAt"))
        if wrong:
            notes.append(f"updatedAt {wrong}")
    if "variants" in item:
        variants, problem = _json_field(item, "variants", {}, depth=0)
        if not problem and not isinstance(variants, dict):
            problem = "variants: not a JSON object (variant name -> value)"
        default_variant = _get(item, "defaultVariant")
        if default_variant is not None and not isinstance(default_variant, str):
            tag = next(iter(item["defaultVariant"]))
            problems.append(f"defaultVariant: a DynamoDB {tag} attribute; a variant name is text (S)")
    else:
        on = _truthy(_get(item, "defaultEnabled", False))
        variants, problem = {"on": True, "off": False}, ""
        default_variant = "on" if on else "off"
    if problem:
        problems.insert(0, problem)
    state, note, problem = _state(item)
    notes += [note] if note else []
    problems += [problem] if problem else []
    targeting, problem = _json_field(item, "targeting", None)
    problems += [problem] if problem else []
    metadata, problem = _json_field(item, "metadata", {})
    if not problem and not isinstance(metadata, dict):
        problem = "metadata: not a JSON object"
    problems += [problem] if problem else []
    tags = _tags(item, notes)
    version = HAND_WRITTEN_VERSION
    if "version" in item:
        version = version_of(item) or HAND_WRITTEN_VERSION
        if version_of(item) is None:
            notes.append(
                f"version {_shown(item['version'])} is not a whole number from 1 to {MAX_VERSION}: "
                f"read as a hand-written item's {HAND_WRITTEN_VERSION}"
            )
    if "flagKey" in item and _get(item, "flagKey") != key_from_pk:
        shown = _shown(item["flagKey"])
        notes.append(f"flagKey {shown} is not the key in PK: the PK's {key_from_pk!r} is served")
    _report(pk, problems, notes)
    usable = not problems
    return Flag(
        key=key_from_pk,
        environment=env,
        variants=variants if usable else {},
        default_variant=default_variant if usable else None,
        state=state,
        targeting=targeting if usable else None,
        description=_text(item, "description"),
        owner=_text(item, "owner"),
        tags=tags,
        metadata=metadata if isinstance(metadata, dict) else {},
        version=version,
        created_at=created_at,
        updated_at=updated_at,
        updated_by=_text(item, "updatedBy"),
        managed_by=_text(item, "managedBy"),
        problem="; ".join(problems),
    )


def _tags(item: Item, notes: list[str]) -> tuple[str, ...]:
    """`tags` as vexil writes them (L of S), or as JSON text or a string set by hand; tags that
    cannot be read are left out (they are for people) and noted."""
    if "tags" not in item:
        return ()
    value = _get(item, "tags")
    if isinstance(value, str):
        value, problem = _json_field(item, "tags", [])
        if problem:
            notes.append(f"{problem}: served without tags")
            return ()
    if isinstance(value, set):
        value = sorted(value)
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        notes.append(f"tags {_shown(item['tags'])} is not a list of text: served without tags")
        return ()
    try:
        records.check_portable(value, "tags")
    except InvalidArgument as exc:
        notes.append(f"{exc}: served without tags")
        return ()
    return tuple(value)


# --- history ------------------------------------------------------------------------------


def _audit_to_item(entry: FlagRevision | Change) -> Item:
    """What a history revision and a change-log entry both record of the write that made them:
    which one (its config version), what kind, who, when and why, in the same attributes."""
    return {
        "configVersion": n(entry.config_version),
        "kind": s(str(entry.kind)),
        "actor": s(entry.actor),
        "timestamp": s(records.format_timestamp(entry.timestamp)),
        "reason": s(entry.reason),
    }


def _audit_from_item(item: Item) -> dict[str, Any]:
    """The inverse of `_audit_to_item`: those five fields, by name."""
    return {
        "config_version": _int(item, "configVersion"),
        "kind": ChangeKind(_text(item, "kind")),
        "actor": _text(item, "actor"),
        "timestamp": records.parse_timestamp(_get(item, "timestamp")),
        "reason": _text(item, "reason"),
    }


def revision_to_item(revision: FlagRevision) -> Item:
    flag = revision.flag
    return {
        **key(flag_pk(flag.environment, flag.key), version_sk(flag.version)),
        "itemType": s(TYPE_REVISION),
        "version": n(flag.version),
        **_audit_to_item(revision),
        "deleted": b(revision.deleted),
        "flag": js(records.flag_to_record(flag), "flag"),
    }


def revision_from_item(item: Item) -> FlagRevision:
    return FlagRevision(
        flag=records.flag_from_record(records.load_json(_text(item, "flag"))),
        deleted=bool(_get(item, "deleted", False)),
        **_audit_from_item(item),
    )


# --- environments -------------------------------------------------------------------------


def environment_to_item(environment: Environment) -> Item:
    return {
        **env_item_key(environment.name),
        "itemType": s(TYPE_ENVIRONMENT),
        "configVersion": n(environment.config_version),
        "killSwitch": b(environment.kill_switch),
        "killReason": s(environment.kill_reason),
        "evaluators": js(dict(environment.evaluators), "evaluators"),
        "metadata": js(dict(environment.metadata), "metadata"),
        "updatedAt": s(records.format_timestamp(environment.updated_at)),
        "updatedBy": s(environment.updated_by),
    }


def environment_from_item(env: str, item: Item | None) -> Environment:
    """The stored environment, or the default one when no item exists yet."""
    if not item:
        return Environment(name=env)
    evaluators, problem = _json_field(item, "evaluators", {})
    notes = [f"{problem}: read as none"] if problem else []
    metadata, problem = _json_field(item, "metadata", {})
    notes += [f"{problem}: read as none"] if problem else []
    _report(env_pk(env), [], notes)
    return Environment(
        name=env,
        evaluators=evaluators if isinstance(evaluators, dict) else {},
        kill_switch=_truthy(_get(item, "killSwitch", False)),
        kill_reason=_text(item, "killReason"),
        metadata=metadata if isinstance(metadata, dict) else {},
        config_version=_int(item, "configVersion"),
        updated_at=records.parse_timestamp(_get(item, "updatedAt")),
        updated_by=_text(item, "updatedBy"),
    )


def config_version_of(item: Item | None) -> int:
    return _int(item, "configVersion") if item else 0


CHANGED_AT = "changedAt"
"""Environment item attribute: when its `configVersion` last moved (the newest change-log entry's
timestamp), written by every vexil write with the bump.  A load whose environment item says the
newest change is older than the index's settling time need not read the change log at all."""


def changed_at_of(item: Item | None) -> float | None:
    """When the environment last changed, or None when its item does not say (no item yet, one
    written before vexil recorded it, or one written by hand): the load then reads the log."""
    if not item or CHANGED_AT not in item:
        return None
    when = records.parse_timestamp(_get(item, CHANGED_AT))
    return when or None


# --- change log ---------------------------------------------------------------------------


def change_to_item(change: Change, *, expires_at: int | None = None) -> Item:
    """`expires_at` (epoch seconds) sets the entry's TTL attribute: the change log's retention."""
    item: Item = {
        **key(env_pk(change.environment_name), change_sk(change.config_version)),
        "itemType": s(TYPE_CHANGE),
        **_audit_to_item(change),
        "flagKey": s(change.flag_key),
        "beforeVersion": n(change.before_version),
        "afterVersion": n(change.after_version),
    }
    if change.flag is not None:
        item["flag"] = js(records.flag_to_record(change.flag), "flag")
    if change.environment is not None:
        item["environment"] = js(records.environment_to_record(change.environment), "environment")
    if expires_at is not None:
        item[EXPIRES_AT] = n(expires_at)
    return item


def replica_to_item(record: ReplicaRecord) -> Item:
    """A registry record in the environment's partition, beside (never inside) the change log's
    `CHANGE#` range, so no change-log query ever meets it."""
    return {
        **replica_item_key(record.environment, record.replica_id),
        "itemType": s(TYPE_REPLICA),
        "replicaId": s(record.replica_id),
        "address": s(record.address),
        "configVersion": n(record.config_version),
        "lastSeen": {"N": f"{record.last_seen_unix:.3f}"},
        EXPIRES_AT: n(record.expires_at_unix),
    }


def replica_from_item(env: str, item: Item) -> ReplicaRecord:
    return ReplicaRecord(
        replica_id=_text(item, "replicaId"),
        environment=env,
        address=_text(item, "address"),
        config_version=_int(item, "configVersion"),
        last_seen_unix=float(_get(item, "lastSeen", 0) or 0),
        expires_at_unix=_int(item, EXPIRES_AT),
    )


def expires_at_of(item: Item) -> int | None:
    """The entry's TTL (epoch seconds), or None when it has none (written before retention)."""
    return _int(item, EXPIRES_AT) if EXPIRES_AT in item else None


def change_from_item(env: str, item: Item) -> Change:
    flag_text = _get(item, "flag")
    env_text = _get(item, "environment")
    return Change(
        environment_name=env,
        **_audit_from_item(item),
        flag_key=_text(item, "flagKey"),
        before_version=_int(item, "beforeVersion"),
        after_version=_int(item, "afterVersion"),
        flag=records.flag_from_record(records.load_json(flag_text)) if flag_text else None,
        environment=(records.environment_from_record(records.load_json(env_text)) if env_text else None),
    )


# --- size ---------------------------------------------------------------------------------


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB bills for one wire value (its published sizing rules, rounded up)."""
    ((tag, raw),) = value.items()
    if tag in ("S",):
        return len(raw.encode())
    if tag == "N":
        return len(raw.lstrip("-").replace(".", "")) // 2 + 2
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "B":
        return len(raw)
    if tag == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if tag == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    if tag in ("SS", "BS"):
        return sum(len(v.encode()) if isinstance(v, str) else len(v) for v in raw)
    if tag == "NS":
        return sum(len(v) // 2 + 2 for v in raw)
    raise ValueError(f"unknown DynamoDB type {tag}")


def item_size(item: Item) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())
