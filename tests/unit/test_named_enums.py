"""Enums whose value is their name: the strings they put on the wire and in logs never change.

`FlagState` and `ChangeKind` are stored in DynamoDB items and sent in flagd documents, the
engine's `Reason`, `ErrorCode` and `ValueType` are flagd's and OpenFeature's names, `Level` and
`Status` are printed by `vexil status` and `vexil ops check`, and the SDK's `ConnectionState`,
`ChangeKind` and `ErrorCode` reach users' logs and listeners.  They are declared with `auto()`
over one base that takes the member's name as its value; the expected strings below are
written out by hand, so a member whose value drifted from the strings already stored or logged
fails here.  Every member is documented where it is declared: a user reading the enum learns
what each state means.
"""

from __future__ import annotations

import ast
import inspect
from enum import StrEnum, auto

import pytest

from vexil.client.changes import ChangeKind as ClientChangeKind
from vexil.client.details import ErrorCode as ClientErrorCode
from vexil.client.state import ConnectionState
from vexil.engine import ErrorCode, Reason, ValueType
from vexil.model import ChangeKind, FlagState, NamedEnum
from vexil.observability.thresholds import Level
from vexil.ops.checks import Status

EXPECTED: list[tuple[type[StrEnum], list[str]]] = [
    (FlagState, ["ENABLED", "DISABLED"]),
    (ChangeKind, ["CREATE", "UPDATE", "DELETE", "ROLLBACK", "KILL", "ENVIRONMENT"]),
    (Level, ["OK", "NOTE", "WARN", "CRIT", "UNKNOWN"]),
    (ConnectionState, ["NOT_READY", "READY", "STALE", "ERROR", "CLOSED"]),
    (ClientChangeKind, ["UPSERT", "DELETE", "ENVIRONMENT", "SNAPSHOT"]),
    (Reason, ["STATIC", "TARGETING_MATCH", "DEFAULT", "DISABLED", "ERROR"]),
    (ErrorCode, ["FLAG_NOT_FOUND", "TYPE_MISMATCH", "PARSE_ERROR", "GENERAL"]),
    (ValueType, ["ANY", "BOOL", "STRING", "INT", "FLOAT", "OBJECT"]),
    (Status, ["PASS", "WARN", "FAIL", "MANUAL"]),
    (
        ClientErrorCode,
        [
            "FLAG_NOT_FOUND",
            "TYPE_MISMATCH",
            "PARSE_ERROR",
            "GENERAL",
            "PROVIDER_NOT_READY",
            "INVALID_CONTEXT",
            "PROVIDER_FATAL",
        ],
    ),
]
IDS = [enum.__qualname__ + "@" + enum.__module__ for enum, _ in EXPECTED]


@pytest.mark.parametrize(("enum", "strings"), EXPECTED, ids=IDS)
def test_members_keep_their_wire_strings(enum: type[StrEnum], strings: list[str]) -> None:
    assert [member.value for member in enum] == strings
    assert [str(member) for member in enum] == strings
    assert [f"{member}" for member in enum] == strings
    assert [enum(text).name for text in strings] == strings


def test_auto_values_are_the_names_not_lowercased() -> None:
    class Colour(NamedEnum):
        RED = auto()
        DARK_BLUE = auto()

    assert [Colour.RED.value, Colour.DARK_BLUE.value] == ["RED", "DARK_BLUE"]
    assert Colour("DARK_BLUE") is Colour.DARK_BLUE and Colour.RED == "RED"
    assert isinstance(Colour.RED, str) and issubclass(Colour, StrEnum)


def undocumented_members(enum: type[StrEnum]) -> list[str]:
    """Members of `enum`'s class body not followed by a docstring (read from the source)."""
    body = ast.parse(inspect.getsource(enum)).body[0]
    assert isinstance(body, ast.ClassDef)
    statements = body.body
    missing = []
    for i, statement in enumerate(statements):
        if isinstance(statement, ast.Assign):
            following = statements[i + 1] if i + 1 < len(statements) else None
            documented = (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            )
            if not documented:
                missing += [target.id for target in statement.targets if isinstance(target, ast.Name)]
    return missing


@pytest.mark.parametrize(("enum", "strings"), EXPECTED, ids=IDS)
def test_every_member_says_what_it_means(enum: type[StrEnum], strings: list[str]) -> None:
    assert undocumented_members(enum) == []
    assert issubclass(enum, NamedEnum)
