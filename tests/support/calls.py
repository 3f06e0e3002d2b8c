"""Small helpers for talking to a server from async tests: request contexts, stream reads and
bounded polling."""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf import struct_pb2

from vexil.v1 import evaluation_pb2


def context(**attrs: Any) -> struct_pb2.Struct:
    """An evaluation context (`EvaluateRequest.context`) from keyword attributes."""
    ctx = struct_pb2.Struct()
    ctx.update(attrs)
    return ctx


async def next_event(stream: Any, timeout: float = 5.0) -> evaluation_pb2.WatchEvent:
    """The next message of a Watch stream, or a timeout: a test never waits forever on a stream."""
    return await asyncio.wait_for(stream.read(), timeout)


async def eventually(check: Any, timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll an async `check` until it returns something truthy, and return that (bounded: fails
    the test naming the last value when `timeout` passes first)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)
