"""Small helpers for talking to a server from async tests: request contexts, stream reads and
bounded polling."""

from __future__ import annotations

import asyncio
import json
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


async def raw_http(
    port: int, method: str, path: str, header_lines: bytes, body: bytes = b"{}", piece: int = 0
) -> tuple[int, Any]:
    """One HTTP/1.1 request to 127.0.0.1:`port` with `header_lines` as raw bytes (HTTP client
    libraries refuse to send header bytes that are not UTF-8, which a test needs to send): the
    status and the JSON body of the answer.  `piece`: send the body in pieces of that many bytes,
    a few milliseconds apart, as a slow network delivers it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n".encode()
            + header_lines
            + b"\r\n"
        )
        size = piece or max(len(body), 1)
        for start in range(0, len(body), size):
            writer.write(body[start : start + size])
            await writer.drain()
            if piece:
                await asyncio.sleep(0.005)
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(content)
