"""The one flag factory of the tests: a flag from plain Python values, in each shape tests need.

`flag_model` builds the domain `Flag` (stores, engine, cache); `flag_pb` the `vexil.v1.Flag`
message an admin RPC takes; `flag_definition` the flagd flag-definition JSON a flags file holds.
All three take the same arguments and build on `flag_model`, so a flag reads the same whatever
shape a test needs it in.  The message and the JSON are built here with protobuf's own JSON
mapping, not with the server's converters: a test input does not depend on the code under test.

The defaults make the commonest test flag: boolean variants `on`/`off`, `off` served.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format

from vexil.model import Flag, FlagState
from vexil.v1 import flag_pb2

ON_OFF: Mapping[str, Any] = {"on": True, "off": False}


def flag_model(
    key: str,
    variants: Mapping[str, Any] = ON_OFF,
    default: str | None = "off",
    targeting: Any = None,
    *,
    environment: str = "local",
    state: FlagState | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    **fields: Any,
) -> Flag:
    """A domain flag; `state` None is ENABLED; `fields`: description, owner, managed_by, version..."""
    return Flag(
        key=key,
        environment=environment,
        variants=dict(variants),
        default_variant=default,
        state=_state(state),
        targeting=targeting,
        tags=tuple(tags),
        metadata=dict(metadata or {}),
        **fields,
    )


def _state(state: FlagState | str | None) -> Any:
    """None is ENABLED; a name the model does not know is kept as is, for tests of validation."""
    if state is None:
        return FlagState.ENABLED
    try:
        return FlagState(state)
    except ValueError:
        return state


def flag_pb(
    key: str,
    variants: Mapping[str, Any] = ON_OFF,
    default: str | None = "off",
    targeting: Any = None,
    *,
    environment: str = "",
    state: FlagState | str | None = None,
    **fields: Any,
) -> flag_pb2.Flag:
    """The admin API's flag message.  `environment` "" is the server's default environment and
    `state` None leaves the field unset (the server reads it as ENABLED), as a client sending
    only what it cares about does."""
    flag = flag_model(key, variants, default, targeting, environment=environment, state=state, **fields)
    body: dict[str, Any] = {"key": flag.key, **_evaluation_fields(flag)}
    if flag.environment:
        body["environment"] = flag.environment
    if state is not None:
        body["state"] = f"FLAG_STATE_{flag.state}"
    for name, value in (("description", flag.description), ("owner", flag.owner)):
        if value:
            body[name] = value
    if flag.tags:
        body["tags"] = list(flag.tags)
    if flag.managed_by:
        body["managedBy"] = flag.managed_by
    if flag.version:
        body["version"] = str(flag.version)
    return json_format.ParseDict(body, flag_pb2.Flag())


def flag_definition(
    variants: Mapping[str, Any] = ON_OFF,
    default: str | None = "off",
    targeting: Any = None,
    *,
    state: FlagState | str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """flagd's flag-definition JSON (the value under `flags.<key>` of a flags file)."""
    flag = flag_model("definition", variants, default, targeting, state=state, metadata=metadata)
    return {"state": str(flag.state), **_evaluation_fields(flag)}


def _evaluation_fields(flag: Flag) -> dict[str, Any]:
    """What the admin message and the flagd definition both hold, under the same JSON names: the
    variants, and the default variant, targeting and metadata where the flag has them."""
    optional = {
        "defaultVariant": flag.default_variant,
        "targeting": flag.targeting,
        "metadata": dict(flag.metadata) or None,
    }
    return {"variants": dict(flag.variants)} | {
        name: value for name, value in optional.items() if value is not None
    }


def definition_fields(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The factory arguments for a flagd flag definition: `flag_pb(key, **definition_fields(d))`."""
    return {
        "variants": definition["variants"],
        "default": definition.get("defaultVariant"),
        "targeting": definition.get("targeting"),
        "state": definition.get("state"),
        "metadata": definition.get("metadata"),
    }
