"""Helpers for tests of the replica registry, pokes and receipts: read a replica's view of the fleet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc

from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

ENV = "local"


async def status(target: str) -> admin_pb2.ServerStatus:
    async with grpc.aio.insecure_channel(target) as channel:
        return await admin_pb2_grpc.AdminServiceStub(channel).GetStatus(
            admin_pb2.GetStatusRequest(), timeout=5
        )


def replicas(found: admin_pb2.ServerStatus, env: str = ENV) -> dict[str, admin_pb2.ReplicaStatus]:
    """The replicas a status lists for `env`, by id."""
    (environment,) = [e for e in found.environments if e.name == env]
    return {r.id: r for r in environment.replicas}


async def own_id(target: str) -> str:
    """The replica id a server reports for itself."""
    (mine,) = [r for r in replicas(await status(target)).values() if r.self]
    return mine.id


async def wait_until(condition: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> float:
    """Await `condition()` (sync or async) becoming truthy; returns the seconds it took (bounded)."""
    start = time.monotonic()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(step)


async def served_version(target: str, flag_key: str) -> int:
    """The flag version a replica's evaluation answers with (0: flag unknown there)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        try:
            answer = await stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=flag_key), timeout=5)
        except grpc.aio.AioRpcError:
            return 0
        return answer.flag_version
