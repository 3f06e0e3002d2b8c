"""A flag set that exercises every variant type and reason, and the native answers to compare with.

Every flagd-compatible surface (RPC, in-process, OFREP) must give the same value, variant, reason
and error code as vexil's own `Evaluate` for these flags and contexts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.flags import definition_fields, flag_model, flag_pb
from tests.support.servers import Connected
from vexil.v1 import admin_pb2, evaluation_pb2
from vexil.wire import dict_to_struct, value_to_python

EVALUATORS = {"is-beta": {"ends_with": [{"var": "email"}, "@beta.example"]}}
ENV_METADATA = {"team": "platform", "tier": 1}

FLAGS: dict[str, dict[str, Any]] = {
    "bool-static": {"variants": {"on": True, "off": False}, "defaultVariant": "on"},
    "color": {
        "variants": {"red": "red", "blue": "blue"},
        "defaultVariant": "blue",
        "targeting": {"if": [{"==": [{"var": "country"}, "JP"]}, "red", None]},
        "metadata": {"owner-team": "web"},
    },
    "limit": {
        "variants": {"small": 10, "big": 100},
        "defaultVariant": "small",
        "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "big", None]},
    },
    "ratio": {
        "variants": {"low": 0.25, "high": 0.75},
        "defaultVariant": "low",
        "targeting": {"if": [{"$ref": "is-beta"}, "high", None]},
    },
    "theme": {
        "variants": {"dark": {"bg": "black", "size": 2}, "light": {"bg": "white", "size": 1}},
        "defaultVariant": "light",
        "targeting": {"fractional": [{"var": "targetingKey"}, ["dark", 50], ["light", 50]]},
    },
    "new-ui": {
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "2.0.0"]}, "on", "off"]},
    },
    "killed": {"state": "DISABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"},
    "no-default": {
        "variants": {"a": "A", "b": "B"},
        "targeting": {"if": [{"==": [{"var": "country"}, "FR"]}, "b", None]},
    },
}

CONTEXTS: list[dict[str, Any]] = [
    {},
    {"targetingKey": "user-1", "country": "JP", "tier": "gold", "version": "2.1.0"},
    {"targetingKey": "user-2", "country": "FR", "email": "x@beta.example", "version": "1.9.9"},
    {"targetingKey": "user-3", "country": "US", "tier": "silver", "email": "y@example.com"},
    {"targetingKey": "user-42", "count": 3},
]

# (getter type, default) for every typed resolution an OpenFeature client can ask for.
TYPED_DEFAULTS: dict[str, Any] = {
    "boolean": False,
    "string": "fallback",
    "integer": -1,
    "float": -1.5,
    "object": {"fallback": True},
}
NATIVE_TYPES = {
    "boolean": evaluation_pb2.VALUE_TYPE_BOOL,
    "string": evaluation_pb2.VALUE_TYPE_STRING,
    "integer": evaluation_pb2.VALUE_TYPE_INT,
    "float": evaluation_pb2.VALUE_TYPE_DOUBLE,
    "object": evaluation_pb2.VALUE_TYPE_OBJECT,
}


async def install(
    conn: Connected, environment: str = "", flags: dict[str, dict[str, Any]] | None = None
) -> None:
    """The environment's $evaluators and metadata, then every flag, through the admin API."""
    request = admin_pb2.UpdateEnvironmentRequest(environment=environment)
    dict_to_struct(EVALUATORS, request.evaluators)
    dict_to_struct(ENV_METADATA, request.metadata)
    await conn.admin.UpdateEnvironment(request)
    for key, body in (FLAGS if flags is None else flags).items():
        await conn.admin.CreateFlag(
            admin_pb2.CreateFlagRequest(flag=flag_pb(key, **definition_fields(body), environment=environment))
        )


@dataclass(frozen=True)
class Answer:
    """What an OpenFeature client ends up with, in comparable form."""

    value: Any
    variant: str | None
    reason: str
    error_code: str | None


def reason_name(reason: Any) -> str:
    return str(getattr(reason, "value", reason))


def from_details(details: Any) -> Answer:
    """An OpenFeature `FlagEvaluationDetails` as an Answer."""
    code = details.error_code
    return Answer(
        details.value,
        details.variant or None,
        reason_name(details.reason),
        None if code is None else str(getattr(code, "value", code)),
    )


async def native(conn: Connected, key: str, context: dict[str, Any], kind: str) -> Answer:
    """vexil's own answer, as an OpenFeature client with default `TYPED_DEFAULTS[kind]` sees it."""
    request = evaluation_pb2.EvaluateRequest(flag_key=key, value_type=NATIVE_TYPES[kind])
    request.context.update(context)
    response = await conn.evaluation.Evaluate(request)
    which = response.WhichOneof("value")
    if which is None:
        value = TYPED_DEFAULTS[kind]
    elif which == "object_value":
        value = value_to_python(response.object_value)
    else:
        value = getattr(response, which)
    reason = evaluation_pb2.Reason.Name(response.reason).removeprefix("REASON_")
    code = evaluation_pb2.ErrorCode.Name(response.error_code).removeprefix("ERROR_CODE_")
    return Answer(value, response.variant or None, reason, None if code == "UNSPECIFIED" else code)


async def store_broken_flag(conn: Connected, key: str, environment: str = "local") -> None:
    """A flag written straight to the store (as by hand) whose targeting does not compile."""
    flag = flag_model(key, {"on": True}, "on", {"no-such-operator": [1]}, environment=environment)
    change = await conn.app.store.create_flag(flag, actor="test")
    await conn.app.cache.apply(change)
