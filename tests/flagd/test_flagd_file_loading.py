"""`vexil serve --flags FILE` loads a file as flagd loads it.

One flag flagd would reject (a bad state, a default variant the flag lacks, no variants) is
skipped with a WARNING that names it and the offending path; every other flag serves.  Flags
that flagd loads but that vexil's admin API refuses (a rule naming a variant the flag lacks,
wrong argument counts, an unknown `sem_ver` operator, a `$ref` to a missing evaluator, all-zero
`fractional` weights) are loaded and answer at evaluation time as flagd answers: the expected
answers below are written from flagd's documentation and its conformance suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from tests.support import jscore
from tests.support.client import struct
from tests.support.flags import flag_pb
from tests.support.openfeature import stub
from tests.support.servers import ServerProcess
from vexil.client import Client, ErrorCode, Reason
from vexil.transport.flagd_protos import SYNC_V1, sync_v1
from vexil.v1 import admin_pb2, admin_pb2_grpc

AB = {"a": "A", "b": "B"}
BOOLEAN_NAMES = {"true": "T", "false": "F", "x": "X"}

FILE: dict[str, Any] = {
    "$evaluators": {"is_fr": {"==": [{"var": "country"}, "FR"]}},
    "flags": {
        "good": {
            "state": "ENABLED",
            "variants": AB,
            "defaultVariant": "a",
            "targeting": {"if": [{"$ref": "is_fr"}, "b", "a"]},
        },
        "missing-variant": {
            "state": "ENABLED",
            "variants": AB,
            "defaultVariant": "a",
            "targeting": {"if": [{"$ref": "is_fr"}, "c", "b"]},
        },
        "missing-ref": {
            "state": "ENABLED",
            "variants": AB,
            "defaultVariant": "a",
            "targeting": {"if": [{"var": "beta"}, {"$ref": "nope"}, "b"]},
        },
        "semver-unknown-operator": {
            "state": "ENABLED",
            "variants": BOOLEAN_NAMES,
            "defaultVariant": "x",
            "targeting": {"sem_ver": [{"var": "version"}, "=~", "1.0.0"]},
        },
        "semver-two-arguments": {
            "state": "ENABLED",
            "variants": BOOLEAN_NAMES,
            "defaultVariant": "x",
            "targeting": {"sem_ver": [{"var": "version"}, "="]},
        },
        "starts-with-one-argument": {
            "state": "ENABLED",
            "variants": BOOLEAN_NAMES,
            "defaultVariant": "x",
            "targeting": {"starts_with": [{"var": "email"}]},
        },
        "zero-weights": {
            "state": "ENABLED",
            "variants": AB,
            "defaultVariant": "b",
            "targeting": {"fractional": [["a", 0], ["b", 0]]},
        },
        "null-without-default": {
            "state": "ENABLED",
            "variants": AB,
            "targeting": {"if": [{"$ref": "is_fr"}, "b", None]},
        },
        "rejected-state": {"state": "MAYBE", "variants": AB, "defaultVariant": "a"},
        "rejected-default": {"state": "ENABLED", "variants": AB, "defaultVariant": "zzz"},
        "rejected-variants": {"state": "ENABLED", "variants": {}},
    },
}

REJECTED = {
    "rejected-state": "flags.rejected-state.state",
    "rejected-default": "flags.rejected-default.defaultVariant",
    "rejected-variants": "flags.rejected-variants.variants",
}

FR, US = {"targetingKey": "u1", "country": "FR"}, {"targetingKey": "u1", "country": "US"}
V1 = {"version": "1.0.0", "email": "a@b.c"}

# (flag, context) -> (value, variant, reason, error code); "code" is the caller's default.
EXPECTED: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
    ("good", FR, ("B", "b", Reason.TARGETING_MATCH, None)),
    ("good", US, ("A", "a", Reason.TARGETING_MATCH, None)),
    ("missing-variant", US, ("B", "b", Reason.TARGETING_MATCH, None)),
    ("missing-variant", FR, ("code", None, Reason.ERROR, ErrorCode.GENERAL)),
    ("missing-ref", {"beta": False}, ("code", None, Reason.ERROR, ErrorCode.PARSE_ERROR)),
    ("missing-ref", {"beta": True}, ("code", None, Reason.ERROR, ErrorCode.PARSE_ERROR)),
    ("semver-unknown-operator", V1, ("X", "x", Reason.DEFAULT, None)),
    ("semver-two-arguments", V1, ("X", "x", Reason.DEFAULT, None)),
    ("starts-with-one-argument", V1, ("X", "x", Reason.DEFAULT, None)),
    ("zero-weights", US, ("B", "b", Reason.DEFAULT, None)),
    ("null-without-default", US, ("code", None, Reason.DEFAULT, None)),
    ("null-without-default", FR, ("B", "b", Reason.TARGETING_MATCH, None)),
    *[(key, US, ("code", None, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)) for key in REJECTED],
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("flagd-file")
    path = tmp / "flags.json"
    path.write_text(json.dumps(FILE))
    with ServerProcess(tmp, "--flags", str(path)) as process:
        yield process


def test_every_flag_flagd_loads_is_served(served: ServerProcess) -> None:
    with Client(target=served.target, mode="remote") as client:
        assert client.wait_for_ready(10)
        got = []
        for key, context, _ in EXPECTED:
            d = client.string_details(key, "code", context)
            got.append((key, context, (d.value, d.variant, d.reason, d.error_code)))
    assert got == EXPECTED


def test_each_rejected_flag_is_named_in_a_warning(served: ServerProcess) -> None:
    warnings = [line for line in served.stderr.splitlines() if "WARNING" in line]
    for key, path in REJECTED.items():
        assert [line for line in warnings if path in line], (key, warnings)
    assert not [line for line in warnings if "flags.good" in line]


def test_the_admin_api_stays_strict(served: ServerProcess) -> None:
    """What a file may hold is still refused through the admin API, with the path to fix."""
    with grpc.insecure_channel(served.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        body = FILE["flags"]["missing-variant"]
        request = admin_pb2.CreateFlagRequest(
            flag=flag_pb("another", body["variants"], "a", body["targeting"])
        )
        with pytest.raises(grpc.RpcError) as refused:
            admin.CreateFlag(request, timeout=10)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "targeting.if[1]" in (refused.value.details() or "")


def test_the_admin_api_refuses_an_unknown_fractional_hashing(served: ServerProcess) -> None:
    with grpc.insecure_channel(served.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.UpdateEnvironmentRequest(metadata=struct({"fractionalHashing": "md5"}))
        with pytest.raises(grpc.RpcError) as refused:
            admin.UpdateEnvironment(request, timeout=10)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "metadata.fractionalHashing" in (refused.value.details() or "")
        env = admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(), timeout=10)
        assert "fractionalHashing" not in env.metadata


def test_flags_served_as_flagd_serves_them_do_not_block_environment_updates(served: ServerProcess) -> None:
    """The admin API checks that new `$evaluators` keep the flags compiling; flags that already
    did not (loaded from the file as flagd loads them) are no reason to refuse."""
    with grpc.insecure_channel(served.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.UpdateEnvironmentRequest(
            evaluators=struct(FILE["$evaluators"]), metadata=struct({"team": "web"})
        )
        admin.UpdateEnvironment(request, timeout=10)
        assert dict(admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(), timeout=10).metadata) == {
            "team": "web"
        }
        broken = admin_pb2.UpdateEnvironmentRequest(evaluators=struct({}), metadata=struct({"team": "web"}))
        with pytest.raises(grpc.RpcError) as refused:  # "good" would lose its evaluator
            admin.UpdateEnvironment(broken, timeout=10)
        assert "flag 'good'" in (refused.value.details() or "")


def test_a_flag_broken_by_an_edit_keeps_what_it_had(tmp_path: Path) -> None:
    """Reloading an edited file: a flag the edit made unloadable keeps its last good definition
    (a mistake in the file deletes nothing), the other changes apply."""
    path = tmp_path / "flags.json"
    good = FILE["flags"]["good"]
    path.write_text(json.dumps({"$evaluators": FILE["$evaluators"], "flags": {"good": good}}))
    with (
        ServerProcess(tmp_path, "--flags", str(path)) as process,
        Client(target=process.target, mode="remote") as client,
    ):
        assert client.wait_for_ready(10)
        assert client.string_value("good", "code", FR) == "B"
        edited = {"good": {**good, "state": "MAYBE"}, "added": {"variants": AB, "defaultVariant": "b"}}
        path.write_text(json.dumps({"$evaluators": FILE["$evaluators"], "flags": edited}))
        deadline = time.monotonic() + 20
        while client.string_value("added", "code") != "B" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.string_value("added", "code") == "B"
        assert client.string_value("good", "code", FR) == "B"
        assert "flags.good.state" in process.stderr


def test_the_javascript_core_answers_the_loaded_flags_alike() -> None:
    """The expected answers above (for the flags flagd loads) are the JavaScript flagd core's too."""
    jscore.install()
    loaded = {k: v for k, v in FILE["flags"].items() if k not in REJECTED}
    document = {"$evaluators": FILE["$evaluators"], "flags": loaded}
    rows = [(key, context, want) for key, context, want in EXPECTED if key in loaded]
    (results,) = jscore.resolve([(document, [(key, context) for key, context, _ in rows])])
    for (key, context, want), got in zip(rows, results, strict=True):
        value = "code" if got["value"] is None else got["value"]
        assert (value, got["variant"], got["reason"], got["errorCode"]) == want, (key, context)


def test_in_process_providers_get_the_loaded_flags(served: ServerProcess) -> None:
    """flagd.sync.v1 hands the loaded flags to in-process providers as they are; both flagd cores
    accept the document (they refuse a whole document over one bad flag) and answer alike."""
    with grpc.insecure_channel(served.target) as channel:
        fetched = stub(channel, SYNC_V1).FetchAllFlags(sync_v1.FetchAllFlagsRequest(), timeout=10)
    document = json.loads(fetched.flag_configuration)
    loaded = sorted(k for k in FILE["flags"] if k not in REJECTED)
    assert sorted(document["flags"]) == loaded
    python_core = FlagdCore()
    python_core.set_flags(json.dumps(document))
    assert (
        python_core.resolve_string_value("good", "x", EvaluationContext("u1", {"country": "FR"})).value == "B"
    )
    jscore.install()
    rows = [(key, context, want) for key, context, want in EXPECTED if key in loaded]
    (results,) = jscore.resolve([(document, [(key, context) for key, context, _ in rows])])
    got = [
        ("code" if r["value"] is None else r["value"], r["variant"], r["reason"], r["errorCode"])
        for r in results
    ]
    assert got == [want for _, _, want in rows]
