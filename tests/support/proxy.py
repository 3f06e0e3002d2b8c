"""A loopback TCP proxy that can cut, delay or answer with errors, for fault tests.

It sits between vexil and the DynamoDB emulator (both on 127.0.0.1).  Modes:
- `pass`: forward bytes both ways;
- `cut`: close every open connection and refuse new ones (the database is unreachable);
- `delay`: forward, but hold each chunk from the client for `delay` seconds;
- `error`: answer every HTTP request with a 500 response without reaching the emulator;
- `stall`: accept connections and hold every byte until the mode changes (a hung database).

`inject` arms canned answers for the next requests of one DynamoDB operation (matched on its
`X-Amz-Target` header): connections accepted while an injection is armed are read request by
request, so an armed answer replaces exactly the request it matches; the others are forwarded on
a fresh upstream connection each (`Connection: close`).  `lose_answers` arms the same way a
request that is forwarded (and so applied) whose answer is then lost: the client's connection
ends without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

ERROR_RESPONSE = (
    b"HTTP/1.1 500 Internal Server Error\r\n"
    b"Content-Type: application/x-amz-json-1.0\r\n"
    b"Content-Length: 80\r\n"
    b"Connection: close\r\n\r\n"
    + b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"x"}'.ljust(80)
)


def LOSE_ANSWER(request_body: bytes) -> bytes:
    """The injection `lose_answers` arms (a sentinel, compared by identity): never called."""
    raise AssertionError("the lost-answer injection is handled by the proxy itself")


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        assert upstream_host in ("127.0.0.1", "localhost", "::1"), "loopback only"
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.delay = 2.0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._injections: list[tuple[str, Callable[[bytes], bytes], int]] = []
        self.injected = 0
        """How many requests were answered by an injection."""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._resumed.set()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def set(self, mode: str, delay: float = 2.0) -> None:
        assert mode in ("pass", "cut", "delay", "error", "stall")
        self.mode, self.delay = mode, delay
        if mode == "stall":
            self._resumed.clear()
        else:
            self._resumed.set()
        if mode == "cut":
            self.cut()

    def inject(self, operation: str, respond: Callable[[bytes], bytes], times: int = 1) -> None:
        """Answer the next `times` requests for `operation` (e.g. "TransactWriteItems") with
        `respond(request_body)`, a complete HTTP response, instead of forwarding them."""
        self._injections.append((f"DynamoDB_20120810.{operation}".lower(), respond, times))

    def lose_answers(self, operation: str, times: int = 1) -> None:
        """Forward the next `times` requests for `operation`, then drop the connection instead of
        passing the answer back (a network failure after the request reached the database)."""
        self.inject(operation, LOSE_ANSWER, times)

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._injections:
            await self._serve_requests(reader, writer)
            return
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
                if delayed and self.mode == "stall":
                    await self._resumed.wait()
                if self.mode == "error":
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort() if self.mode == "cut" else writer.close()

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection read request by request (see `inject`)."""
        self._writers.add(writer)
        try:
            with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    headers = _headers(head)
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                    respond = self._take_injection(headers.get("x-amz-target", "").lower())
                    if respond is LOSE_ANSWER:
                        await self._forward_once(head, body)
                        break
                    if respond is not None:
                        writer.write(respond(body))
                        await writer.drain()
                        continue
                    answer = await self._forward_once(head, body)
                    writer.write(answer)
                    await writer.drain()
                    if b"connection: close" in answer.split(b"\r\n\r\n", 1)[0].lower():
                        break
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    def _take_injection(self, target: str) -> Callable[[bytes], bytes] | None:
        for i, (operation, respond, times) in enumerate(self._injections):
            if operation == target:
                if times <= 1:
                    del self._injections[i]
                else:
                    self._injections[i] = (operation, respond, times - 1)
                self.injected += 1
                return respond
        return None

    async def _forward_once(self, head: bytes, body: bytes) -> bytes:
        """Send one request upstream on its own connection and return the whole answer."""
        lines = [line for line in head.split(b"\r\n")[:-2] if not line.lower().startswith(b"connection:")]
        request = b"\r\n".join([*lines, b"Connection: close", b"", b""]) + body
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(request)
            await up_writer.drain()
            return await up_reader.read()
        finally:
            up_writer.transport.abort()


def _headers(head: bytes) -> dict[str, str]:
    """Header names (lowercase) and values of one HTTP request head."""
    found = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return found
