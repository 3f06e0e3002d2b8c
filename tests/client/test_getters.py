"""Every getter and type, in both modes, against a real server: values, details, and the
caller's default (never an exception) whenever the flag cannot be served."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest

from tests.support.client import FAST, Admin, Replica
from tests.support.flags import flag_pb
from vexil.client import Client, ConnectionState, ErrorCode, Reason

COUNTRY_RULE = {"if": [{"==": [{"var": "country"}, "JP"]}, "jp", None]}


def provision(admin: Admin) -> int:
    admin.create(flag_pb("dark-mode", default="on", metadata={"owner": "web", "ticket": 42}))
    admin.create(flag_pb("banner", {"jp": "いらっしゃいませ", "en": "Welcome"}, "en", COUNTRY_RULE))
    admin.create(
        flag_pb(
            "max-items", {"few": 3, "many": 50}, "few", {"if": [{">": [{"var": "age"}, 30]}, "many", None]}
        )
    )
    admin.create(
        flag_pb(
            "ratio",
            {"low": 0.25, "high": 1.5},
            "low",
            {"if": [{"in": [{"var": "plan"}, ["pro", "team"]]}, "high", None]},
        )
    )
    admin.create(flag_pb("limits", {"basic": {"rps": 10, "burst": [1, 2]}, "pro": {"rps": 100.5}}, "basic"))
    admin.create(flag_pb("killed", default="on", state="DISABLED"))
    return admin.create(flag_pb("no-default", {"jp": "JP only"}, None, COUNTRY_RULE))


@pytest.fixture(params=["remote", "local"])
def client(request: pytest.FixtureRequest, server: Replica, admin: Admin) -> Iterator[Client]:
    provision(admin)
    with Client(target=server.target, mode=request.param, **FAST) as c:
        assert c.wait_for_ready(10)
        yield c


def test_every_getter_and_type(client: Client) -> None:
    assert client.bool_value("dark-mode", False) is True
    assert client.string_value("banner", "?", {"country": "JP"}) == "いらっしゃいませ"
    assert client.string_value("banner", "?", {"country": "FR"}) == "Welcome"
    assert client.int_value("max-items", 0, {"age": 31}) == 50
    assert client.int_value("max-items", 0) == 3
    ratio = client.float_value("ratio", 0.0, {"plan": "pro"})
    assert ratio == 1.5 and isinstance(ratio, float)
    assert client.object_value("limits", {}) == {"rps": 10, "burst": [1, 2]}

    details = client.string_details("banner", "?", {"targetingKey": "u1", "country": "JP"})
    assert (details.value, details.variant, details.reason) == (
        "いらっしゃいませ",
        "jp",
        Reason.TARGETING_MATCH,
    )
    assert details.error_code is None and details.flag_version == 1 and details.config_version == 7
    static = client.bool_details("dark-mode", False)
    assert (static.reason, static.variant, static.flag_metadata) == (
        Reason.STATIC,
        "on",
        {"owner": "web", "ticket": 42},
    )
    default = client.int_details("max-items", 0, {"age": 20})
    assert (default.value, default.variant, default.reason) == (3, "few", Reason.DEFAULT)
    assert client.float_details("ratio", 0.0).value == 0.25
    assert client.object_details("limits", {}).variant == "basic"


def test_float_getter_accepts_an_integer_flag(client: Client) -> None:
    value = client.float_value("max-items", 0.0, {"age": 40})
    assert value == 50.0 and isinstance(value, float)


def test_defaults_when_the_flag_is_missing_or_of_another_type(client: Client) -> None:
    missing = client.bool_details("no-such-flag", True)
    assert (missing.value, missing.reason, missing.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )
    assert missing.flag_version == 0 and missing.config_version == 7
    assert client.string_value("no-such-flag", "fallback") == "fallback"

    wrong = client.int_details("banner", 7, {"country": "JP"})
    assert (wrong.value, wrong.reason, wrong.error_code) == (7, Reason.ERROR, ErrorCode.TYPE_MISMATCH)
    assert "string" in wrong.error_message and wrong.variant is None
    assert client.bool_value("banner", False) is False
    assert client.object_value("dark-mode", {"safe": True}) == {"safe": True}
    assert client.string_value("max-items", "x") == "x"
    assert client.float_value("dark-mode", 1.5) == 1.5


def test_disabled_flags_and_flags_without_a_default_serve_the_callers_default(client: Client) -> None:
    killed = client.bool_details("killed", False)
    assert (killed.value, killed.reason, killed.error_code) == (False, Reason.DISABLED, None)
    no_default = client.string_details("no-default", "code default", {"country": "FR"})
    assert (no_default.value, no_default.variant, no_default.reason) == ("code default", None, Reason.DEFAULT)
    assert client.string_value("no-default", "code default", {"country": "JP"}) == "JP only"


def test_all_values_and_all_details(client: Client) -> None:
    values = client.all_values({"country": "JP", "age": 40, "plan": "team"})
    assert values == {
        "banner": "いらっしゃいませ",
        "dark-mode": True,
        "limits": {"rps": 10, "burst": [1, 2]},
        "max-items": 50,
        "no-default": "JP only",
        "ratio": 1.5,
    }
    details = client.all_details({"country": "FR"})
    assert sorted(details) == sorted([*values, "killed"])
    assert details["killed"].reason == Reason.DISABLED and details["no-default"].value is None
    assert details["banner"].config_version == 7


def test_environment_kill_switch_serves_every_callers_default(client: Client, admin: Admin) -> None:
    version = admin.kill_environment(True)
    if client.config.mode == "local":
        assert wait_for_version(client, version)
    details = client.bool_details("dark-mode", False)
    assert (details.value, details.reason) == (False, Reason.DISABLED)
    assert client.string_value("banner", "safe", {"country": "JP"}) == "safe"


def test_object_values_are_read_only_json(client: Client) -> None:
    value = client.object_value("limits", {})
    assert isinstance(value, dict) and isinstance(value["burst"], list)
    assert json.loads(json.dumps(value)) == {"rps": 10, "burst": [1, 2]}
    with pytest.raises(TypeError, match=r"copy\.deepcopy"):
        value["rps"] = -1
    with pytest.raises(TypeError, match="read-only"):
        value["burst"].append(99)
    with pytest.raises(TypeError):
        value.update(rps=0)
    mine = copy.deepcopy(value)  # the documented way to get one's own, mutable copy
    mine["rps"] = -1
    mine["burst"].append(99)
    assert (type(mine), type(mine["burst"])) == (dict, list)
    assert client.object_value("limits", {}) == {"rps": 10, "burst": [1, 2]}
    assert client.object_details("limits", {}).value == {"rps": 10, "burst": [1, 2]}
    details = client.bool_details("dark-mode", False)
    with pytest.raises(AttributeError):
        details.value = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        details.flag_metadata["owner"] = "me"  # type: ignore[index]
    no_metadata = client.string_details("banner", "safe").flag_metadata
    assert no_metadata == {}
    with pytest.raises(TypeError):
        no_metadata["owner"] = "me"  # type: ignore[index]


def test_details_follow_every_change_and_each_callers_default(client: Client, admin: Admin) -> None:
    """Local mode shares one details object per answer; a change anywhere must still show."""
    before = client.bool_details("dark-mode", False)
    assert before.config_version == 7 and client.bool_details("dark-mode", False) == before
    assert client.string_details("no-default", "mine", {"country": "FR"}).value == "mine"
    assert client.string_details("no-default", "yours", {"country": "FR"}).value == "yours"
    version = admin.update(flag_pb("limits", {"basic": {"rps": 1}, "pro": {"rps": 100.5}}, "pro"))
    if client.config.mode == "local":
        assert wait_for_version(client, version)
    after = client.bool_details("dark-mode", False)
    assert (after.value, after.flag_version, after.config_version) == (True, 1, version)
    limits = client.object_details("limits", {})
    assert (limits.value, limits.variant, limits.flag_version) == ({"rps": 100.5}, "pro", 2)
    with pytest.raises(TypeError):  # a flag that arrived as a change is read-only too
        limits.value["rps"] = 0  # type: ignore[index]


def test_a_context_the_server_refuses_yields_the_default(client: Client) -> None:
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    details = client.string_details("banner", "safe", {"country": deep})
    assert (details.value, details.reason, details.error_code) == (
        "safe",
        Reason.ERROR,
        ErrorCode.INVALID_CONTEXT,
    )
    huge = client.int_details("max-items", -1, {"age": 10**400})
    assert (huge.value, huge.error_code) == (-1, ErrorCode.INVALID_CONTEXT)
    # The one deliberate difference: local mode checks only the attributes a flag's rule can
    # read (none for a static flag), so an unrelated attribute the server would refuse does not
    # stop it from answering.
    local = client.config.mode == "local"
    assert client.bool_value("dark-mode", False, {"deep": deep}) is local
    unrelated = client.string_details("banner", "safe", {"country": "JP", "deep": deep})
    assert unrelated.value == ("いらっしゃいませ" if local else "safe")


def test_closed_client_serves_defaults(server: Replica, admin: Admin) -> None:
    provision(admin)
    for mode in ("remote", "local"):
        client = Client(target=server.target, mode=mode, **FAST)
        assert client.wait_for_ready(10)
        client.close()
        assert client.state is ConnectionState.CLOSED
        assert client.bool_value("dark-mode", False) is False
        closed = client.bool_details("dark-mode", False)
        assert closed.error_code == ErrorCode.PROVIDER_NOT_READY
        assert client.all_values() == {}
        client.close()  # idempotent


def test_local_mode_before_the_first_snapshot(server: Replica) -> None:
    server.stop()  # nothing listens there any more
    with Client(target=server.target, mode="local", **FAST) as client:
        assert not client.wait_for_ready(0.2)
        details = client.bool_details("dark-mode", True)
        assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
        assert client.state is ConnectionState.ERROR
        assert client.status().snapshot_age is None


def wait_for_version(client: Client, version: int, timeout: float = 10.0) -> bool:
    from tests.support.client import wait_until

    return wait_until(lambda: client.status().config_version >= version, timeout)
