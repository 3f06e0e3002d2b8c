"""EvaluateAll's plan (`vexil.answers.BulkPlan`) is built once per snapshot without holding the loop.

Encoding the context-independent answers of a large environment takes a good part of a second;
the first bulk call after a change must give the loop back while it does, and calls arriving in
the meantime must wait for that one build instead of each starting their own.
"""

from __future__ import annotations

import asyncio

import pytest

from vexil import answers
from vexil.answers import bulk_answer
from vexil.model import Environment, Flag
from vexil.snapshot import Snapshot
from vexil.v1 import evaluation_pb2

FLAGS = 20_000
"""Static flags: well over one 5 ms slice of encoding on any machine."""


def large() -> Snapshot:
    flags = [Flag(f"f{i:05d}", "local", {"on": True, "off": False}, "on") for i in range(FLAGS)]
    return Snapshot.build(Environment(name="local", config_version=7), flags)


async def test_the_plan_is_built_once_giving_the_loop_back(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = large()
    ran_while_building: list[bool] = []
    builds: list[Snapshot] = []
    planned = answers._planned

    async def counted(built: Snapshot) -> answers.BulkPlan:
        builds.append(built)
        return await planned(built)

    monkeypatch.setattr(answers, "_planned", counted)

    async def meanwhile() -> None:
        await asyncio.sleep(0)
        building = snapshot.memo.get("bulk plan")
        ran_while_building.append(building is not None and not building.done())

    first, _, second = await asyncio.gather(
        bulk_answer(snapshot, {}, []), meanwhile(), bulk_answer(snapshot, {}, [])
    )
    assert ran_while_building == [True]
    assert builds == [snapshot]
    assert first.data == second.data
    response = evaluation_pb2.EvaluateAllResponse.FromString(first.data)
    assert len(response.results) == FLAGS and response.config_version == 7
    assert response.results[0] == evaluation_pb2.EvaluateResponse(
        flag_key="f00000",
        bool_value=True,
        variant="on",
        reason=evaluation_pb2.REASON_STATIC,
        flag_version=0,
        config_version=7,
    )
    assert first.counted == {evaluation_pb2.REASON_STATIC: FLAGS} and first.results == []


async def test_naming_keys_builds_no_plan() -> None:
    """A call naming one key of 20,000 answers that key without preparing all the others."""
    snapshot = large()
    named = await bulk_answer(snapshot, {}, ["f00001", "missing"])
    assert "bulk plan" not in snapshot.memo
    response = evaluation_pb2.EvaluateAllResponse.FromString(named.data)
    assert [(r.flag_key, r.reason) for r in response.results] == [
        ("f00001", evaluation_pb2.REASON_STATIC),
        ("missing", evaluation_pb2.REASON_ERROR),
    ]
    assert response.config_version == 7
