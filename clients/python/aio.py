"""`AsyncClient`: the asyncio client (aiohttp, FastAPI, grpc.aio services).

Everything runs on the caller's event loop: remote evaluations are grpc.aio calls bounded by
the deadline, the Watch stream is one task, listeners run on the loop (coroutine listeners are
scheduled as tasks).  Local-mode getters never suspend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypeVar, Unpack

import grpc

from vexil.client import channel as channels
from vexil.client.config import ClientConfig, ClientOptions, Mode
from vexil.client.core import JSON, ClientCore
from vexil.client.details import ErrorCode, EvaluationDetails, failed
from vexil.client.remote import AsyncRemoteEvaluator
from vexil.client.state import ConnectionState, StateEvent
from vexil.client.watcher import AsyncWatcher
from vexil.engine import ValueType

T = TypeVar("T")
Context = Mapping[str, Any]

NOT_STARTED = "the client is not started: use `async with AsyncClient(...)` or `await client.start()`"


class AsyncClient(ClientCore):
    """A vexil client for asyncio.

    >>> async with AsyncClient(target="127.0.0.1:50051", mode="local") as client:
    ...     await client.wait_for_ready(5)
    ...     await client.bool_value("new-checkout", False, {"targetingKey": "user-1"})

    Same contract as `Client`: getters return the caller's default instead of raising.
    """

    def __init__(self, config: ClientConfig | None = None, **options: Unpack[ClientOptions]) -> None:
        super().__init__(config, dict(options))
        self._channel: grpc.aio.Channel | None = None
        self._watcher: AsyncWatcher | None = None
        self._remote: AsyncRemoteEvaluator | None = None
        self._local = self._config.mode is Mode.LOCAL

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the channel and start following the server on the running loop."""
        if self._channel is not None or self._tracker.state is ConnectionState.CLOSED:
            return
        cfg = self._config
        metadata = channels.call_metadata(cfg)
        self._channel = channels.aio_channel(cfg)
        if not self._local:
            self._remote = AsyncRemoteEvaluator(self._channel, cfg, metadata)
        self._watcher = AsyncWatcher(self._session, self._channel, metadata)
        self._watcher.start()

    async def wait_for_ready(self, timeout: float | None = None) -> bool:
        """Wait until the client is READY (True) or `timeout` seconds pass (False)."""
        tracker = self._tracker
        if tracker.state is ConnectionState.READY:
            return True
        if tracker.state is ConnectionState.CLOSED:
            return False
        ready = asyncio.get_running_loop().create_future()

        def done(event: StateEvent) -> None:
            if event.state in (ConnectionState.READY, ConnectionState.CLOSED) and not ready.done():
                ready.set_result(event.state is ConnectionState.READY)

        remove = tracker.add_listener(done)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see AsyncWatcher._stream
                return bool(await ready)
        except TimeoutError:
            return False
        finally:
            remove()

    async def close(self) -> None:
        """Stop following, save the snapshot (if configured), close the channel."""
        if self._tracker.state is ConnectionState.CLOSED:
            return
        self._local = False
        self._remote = None
        if self._watcher is not None:
            await self._watcher.close()
        if self._channel is not None:
            await self._channel.close()
        self._tracker.set(ConnectionState.CLOSED, "closed")

    async def __aenter__(self) -> AsyncClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- evaluation ---------------------------------------------------------------------------------

    async def _value(self, key: str, default: T, context: Context | None, value_type: ValueType) -> T:
        if self._local:
            return self._flags.value(key, default, context, value_type)
        return (await self._details(key, default, context, value_type)).value

    async def _details(
        self, key: str, default: T, context: Context | None, value_type: ValueType
    ) -> EvaluationDetails[T]:
        if self._local:
            return self._flags.details(key, default, context, value_type)
        remote = self._remote
        if remote is None:
            closed = self._tracker.state is ConnectionState.CLOSED
            return failed(
                key, default, ErrorCode.PROVIDER_NOT_READY, "the client is closed" if closed else NOT_STARTED
            )
        return await remote.details(key, default, context, value_type)

    async def bool_value(self, flag_key: str, default: bool, context: Context | None = None) -> bool:
        return await self._value(flag_key, default, context, ValueType.BOOL)

    async def string_value(self, flag_key: str, default: str, context: Context | None = None) -> str:
        return await self._value(flag_key, default, context, ValueType.STRING)

    async def int_value(self, flag_key: str, default: int, context: Context | None = None) -> int:
        return await self._value(flag_key, default, context, ValueType.INT)

    async def float_value(self, flag_key: str, default: float, context: Context | None = None) -> float:
        return await self._value(flag_key, default, context, ValueType.FLOAT)

    async def object_value(self, flag_key: str, default: JSON, context: Context | None = None) -> JSON:
        return await self._value(flag_key, default, context, ValueType.OBJECT)

    async def bool_details(
        self, flag_key: str, default: bool, context: Context | None = None
    ) -> EvaluationDetails[bool]:
        return await self._details(flag_key, default, context, ValueType.BOOL)

    async def string_details(
        self, flag_key: str, default: str, context: Context | None = None
    ) -> EvaluationDetails[str]:
        return await self._details(flag_key, default, context, ValueType.STRING)

    async def int_details(
        self, flag_key: str, default: int, context: Context | None = None
    ) -> EvaluationDetails[int]:
        return await self._details(flag_key, default, context, ValueType.INT)

    async def float_details(
        self, flag_key: str, default: float, context: Context | None = None
    ) -> EvaluationDetails[float]:
        return await self._details(flag_key, default, context, ValueType.FLOAT)

    async def object_details(
        self, flag_key: str, default: JSON, context: Context | None = None
    ) -> EvaluationDetails[JSON]:
        return await self._details(flag_key, default, context, ValueType.OBJECT)

    async def all_details(self, context: Context | None = None) -> dict[str, EvaluationDetails[Any]]:
        """Every flag of the environment for one context, by key ({} when unavailable)."""
        if self._local:
            return self._flags.all_details(context)
        if self._remote is None:
            return {}
        return await self._remote.all_details(context)

    async def all_values(self, context: Context | None = None) -> dict[str, Any]:
        """The value of every flag that resolves one (see `Client.all_values`)."""
        return {key: d.value for key, d in (await self.all_details(context)).items() if d.value is not None}
