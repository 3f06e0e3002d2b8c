"""A loopback TCP proxy that can cut, delay or answer with errors, for fault tests.

It sits between vexil and the DynamoDB emulator (both on 127.0.0.1).  Modes:
- `pass`: forward bytes both ways;
- `cut`: close every open connection and refuse new ones (the database is unreachable);
- `delay`: forward, but hold each chunk from the client for `delay` seconds;
- `error`: answer every HTTP request with a 500 response without reaching the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib

ERROR_RESPONSE = (
    b"HTTP/1.1 500 Internal Server Error\r\n"
    b"Content-Type: application/x-amz-json-1.0\r\n"
    b"Content-Length: 80\r\n"
    b"Connection: close\r\n\r\n"
    + b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"x"}'.ljust(80)
)


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        assert upstream_host in ("127.0.0.1", "localhost", "::1"), "loopback only"
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.delay = 2.0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def set(self, mode: str, delay: float = 2.0) -> None:
        assert mode in ("pass", "cut", "delay", "error")
        self.mode, self.delay = mode, delay
        if mode == "cut":
            self.cut()

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.transport.abort()
            return
        if self.mode == "error":
            with contextlib.suppress(Exception):
                await reader.read(65536)
                writer.write(ERROR_RESPONSE)
                await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, delayed=True), self._pipe(up_reader, writer, delayed=False)
            )
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: bool) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(65536)
                if not data or self.mode == "cut":
                    break
                if delayed and self.mode == "delay":
                    await asyncio.sleep(self.delay)
                if self.mode == "error":
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort() if self.mode == "cut" else writer.close()
