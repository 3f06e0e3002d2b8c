"""`LocalFlags` on its own (no server): the direct-to-engine getters answer exactly what
`Snapshot.evaluate` answers, through kill switches, broken flags and changes, and the shared
details memo never holds answers that depend on the caller's default."""

from __future__ import annotations

from typing import Any

from tests.support.flags import flag_model
from vexil.client import ErrorCode, Reason
from vexil.client.local import LocalFlags, local_snapshot
from vexil.engine import ValueType
from vexil.model import Environment, Flag, FlagState
from vexil.v1 import evaluation_pb2
from vexil.wire import environment_to_pb, flag_to_pb

WatchEvent = evaluation_pb2.WatchEvent
COUNTRY = {"if": [{"==": [{"var": "country"}, "JP"]}, "jp", None]}


def flags() -> list[Flag]:
    return [
        flag_model("static", default="on", environment="test", version=1),
        flag_model("banner", {"jp": "JP", "en": "EN"}, "en", COUNTRY, environment="test", version=1),
        flag_model("no-default", {"jp": "JP"}, None, COUNTRY, environment="test", version=1),
        flag_model("off", {"on": True}, "on", environment="test", state=FlagState.DISABLED, version=1),
        # no variants: not even flagd could load it
        flag_model("broken", {}, None, environment="test", version=1),
    ]


def loaded(kill_switch: bool = False) -> LocalFlags:
    local = LocalFlags()
    local.replace(
        local_snapshot(Environment("test", kill_switch=kill_switch, config_version=5), flags()), "test", 1.0
    )
    return local


def environment_event(config_version: int, kill_switch: bool) -> WatchEvent:
    event = WatchEvent(type=WatchEvent.TYPE_ENVIRONMENT, config_version=config_version)
    environment_to_pb(
        Environment("test", kill_switch=kill_switch, config_version=config_version), event.environment
    )
    return event


CASES: list[tuple[str, Any, dict[str, Any], ValueType]] = [
    ("static", False, {}, ValueType.BOOL),
    ("banner", "?", {"country": "JP"}, ValueType.STRING),
    ("banner", "?", {"country": "FR"}, ValueType.STRING),
    ("banner", "?", {"country": 3.0}, ValueType.STRING),  # converted as the server would
    ("banner", 0, {"country": "JP"}, ValueType.INT),  # type mismatch
    ("no-default", "mine", {"country": "FR"}, ValueType.STRING),
    ("off", False, {}, ValueType.BOOL),
    ("broken", "?", {}, ValueType.STRING),
    ("missing", "?", {}, ValueType.STRING),
]


def expected(local: LocalFlags, key: str, default: Any, context: dict[str, Any], vt: ValueType) -> Any:
    snapshot = local.snapshot
    assert snapshot is not None
    resolution, version = snapshot.evaluate(key, context, vt)
    value = default if resolution.value is None else resolution.value
    return value, resolution.reason.value, resolution.variant, version


def test_getters_answer_what_the_snapshot_answers() -> None:
    for kill_switch in (False, True):
        local = loaded(kill_switch)
        for key, default, context, vt in CASES:
            value, reason, variant, version = expected(local, key, default, context, vt)
            assert local.value(key, default, context, vt) == value, (key, context, kill_switch)
            details = local.details(key, default, context, vt)
            assert (details.value, details.reason.value, details.variant, details.flag_version) == (
                value,
                reason,
                variant,
                version,
            ), (key, context, kill_switch)
            assert details.config_version == 5
    assert loaded().details("broken", "?", {}, ValueType.STRING).error_code is ErrorCode.PARSE_ERROR
    assert loaded(True).details("static", False, {}, ValueType.BOOL).reason is Reason.DISABLED


def test_the_kill_switch_arriving_as_a_change_reaches_the_direct_getters() -> None:
    local = loaded()
    assert local.value("static", False, {}, ValueType.BOOL) is True
    local.apply(environment_event(6, kill_switch=True))
    assert local.value("static", False, {}, ValueType.BOOL) is False
    assert local.details("static", False, {}, ValueType.BOOL).reason is Reason.DISABLED
    upsert = WatchEvent(type=WatchEvent.TYPE_UPSERT, config_version=7, flag_key="static")
    flag_to_pb(flag_model("static", default="on", environment="test", version=2), upsert.flag)
    local.apply(upsert)  # a flag change while killed must not bring that flag back
    assert local.value("static", False, {}, ValueType.BOOL) is False
    local.apply(environment_event(8, kill_switch=False))
    assert local.value("static", False, {}, ValueType.BOOL) is True
    assert local.value("banner", "?", {"country": "JP"}, ValueType.STRING) == "JP"
    details = local.details("static", False, {}, ValueType.BOOL)
    assert (details.value, details.flag_version, details.config_version) == (True, 2, 8)


def test_only_answers_with_a_value_are_shared() -> None:
    local = loaded()
    for i in range(200):  # answers that are the caller's default: built per call, never kept
        assert local.details("no-default", f"d{i}", {"country": "FR"}, ValueType.STRING).value == f"d{i}"
        assert local.details("missing", i, {}, ValueType.INT).value == i
        assert (
            local.details("banner", i, {"country": "JP"}, ValueType.INT).error_code is ErrorCode.TYPE_MISMATCH
        )
    view = local._view
    assert view is not None and view[2] == {}
    first = local.details("banner", "?", {"country": "JP"}, ValueType.STRING)
    for country in ("JP", "FR", "JP", "US"):
        local.details("banner", "?", {"country": country}, ValueType.STRING)
    assert local.details("banner", "?", {"country": "JP"}, ValueType.STRING) is first
    assert len(view[2]) == 2  # one per distinct answer: "jp" (TARGETING_MATCH) and "en" (DEFAULT)


def test_the_engine_never_shares_a_resolution_between_flags() -> None:
    """The details memo is keyed by resolution: two flags answering alike must still answer
    with two resolution objects, or one flag's details (key, version) would serve the other."""
    rule = {"if": [{"==": [{"var": "country"}, "JP"]}, "off", None]}
    twins = [flag_model(key, default="on", targeting=rule, environment="test", version=1) for key in "ab"]
    local = LocalFlags()
    local.replace(local_snapshot(Environment("test", config_version=1), twins), "test", 1.0)
    snapshot = local.snapshot
    assert snapshot is not None
    shared = 0
    for context in ({}, {"country": "JP"}):
        for vt in ValueType:
            first, second = (snapshot.evaluate(key, context, vt)[0] for key in "ab")
            if first.value is not None:  # only answers with a value are memoised
                assert first.value == second.value and first is not second, (context, vt)
                shared += 1
    assert shared == 4  # ANY and BOOL, each for both contexts
    a, b = (local.details(key, False, {}, ValueType.BOOL) for key in "ab")
    assert (a.flag_key, b.flag_key) == ("a", "b")
