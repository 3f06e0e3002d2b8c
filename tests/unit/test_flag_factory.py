"""The tests' one flag factory builds what each shape's own documentation says a flag is.

Expected values are written out here (the message in protobuf's JSON form, the flagd definition
as a flagd flags file spells it), not derived from the factory or from the server's converters.
"""

from __future__ import annotations

from google.protobuf import json_format

from tests.support.flags import definition_fields, flag_definition, flag_model, flag_pb
from vexil.model import Flag, FlagState


def test_the_default_flag_is_boolean_and_serves_off_in_every_shape() -> None:
    assert flag_model("f") == Flag(
        key="f", environment="local", variants={"on": True, "off": False}, default_variant="off"
    )
    assert json_format.MessageToDict(flag_pb("f")) == {
        "key": "f",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
    }
    assert flag_definition() == {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
    }


def test_every_argument_reaches_the_message() -> None:
    msg = flag_pb(
        "banner",
        {"jp": "JP", "n": 3, "obj": {"a": [1, None]}},
        "jp",
        {"if": [{"var": "x"}, "n", None]},
        environment="prod",
        state="DISABLED",
        metadata={"team": "web"},
        description="d",
        owner="o",
        tags=["t1", "t2"],
    )
    assert json_format.MessageToDict(msg) == {
        "key": "banner",
        "environment": "prod",
        "state": "FLAG_STATE_DISABLED",
        "variants": {"jp": "JP", "n": 3.0, "obj": {"a": [1.0, None]}},
        "defaultVariant": "jp",
        "targeting": {"if": [{"var": "x"}, "n", None]},
        "metadata": {"team": "web"},
        "description": "d",
        "owner": "o",
        "tags": ["t1", "t2"],
    }


def test_no_default_and_unset_state_stay_absent_from_the_message() -> None:
    msg = flag_pb("f", {"a": 1}, None)
    assert not msg.HasField("default_variant")
    assert msg.state == 0  # FLAG_STATE_UNSPECIFIED: what a client that says nothing sends
    assert flag_pb("f", state="ENABLED").state == 1


def test_the_model_keeps_what_it_is_given() -> None:
    flag = flag_model(
        "k", {"a": 1}, None, {"var": "x"}, environment="dev", state="DISABLED", tags=["x"], version=3
    )
    assert (flag.default_variant, flag.state, flag.targeting, flag.tags, flag.version) == (
        None,
        FlagState.DISABLED,
        {"var": "x"},
        ("x",),
        3,
    )
    assert flag_model("k", state="MAYBE").state == "MAYBE"  # for tests of validation


def test_a_flagd_definition_round_trips_through_the_factory_arguments() -> None:
    definition = {
        "state": "DISABLED",
        "variants": {"red": "#f00", "blue": "#00f"},
        "defaultVariant": "red",
        "targeting": {"if": [True, "blue"]},
        "metadata": {"owner": "web"},
    }
    assert flag_definition(**definition_fields(definition)) == definition
    assert flag_definition(**definition_fields({"variants": {"a": 1}})) == {
        "state": "ENABLED",
        "variants": {"a": 1},
    }
