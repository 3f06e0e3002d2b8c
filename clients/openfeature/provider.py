"""`VexilProvider`: vexil behind OpenFeature's Python SDK (`openfeature-sdk`).

A thin adapter over `vexil.client.Client`: the client already speaks OpenFeature's vocabulary
(reasons and error codes have the same names), so this module only converts contexts and
results, and turns the client's state and change events into provider events:

    client READY  -> PROVIDER_READY          client STALE -> PROVIDER_STALE
    client ERROR  -> PROVIDER_ERROR (PROVIDER_FATAL when the credentials were refused)
    a flag change -> PROVIDER_CONFIGURATION_CHANGED with the changed flag keys

Any OpenFeature SDK can also reach vexil with no vexil code at all, through the flagd
providers (vexil serves flagd's protocols); this provider adds vexil's own API: local
evaluation with resume, API keys, bootstrap files and config versions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, Unpack

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode as OFErrorCode
from openfeature.exception import ProviderFatalError, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.flag_evaluation import Reason as OFReason
from openfeature.provider import AbstractProvider, Metadata
from vexil.client import (
    ChangeEvent,
    Client,
    ClientOptions,
    ConnectionState,
    EvaluationDetails,
    Mode,
    StateEvent,
)

T = TypeVar("T")
NAME = "vexil"


class VexilProvider(AbstractProvider):
    """An OpenFeature provider backed by a vexil `Client`.

    >>> from openfeature import api
    >>> api.set_provider_and_wait(VexilProvider(target="127.0.0.1:50051", mode="local"))
    >>> api.get_client().get_boolean_value("new-checkout", False)

    Pass `client=` to share a client you manage (the provider then leaves closing it to you),
    or client options (`target`, `mode`, `api_key`, ... or `VEXIL_*` variables) to have the
    provider own one.  `ready_timeout` bounds `initialize`; a client serving bootstrap data
    (flags file or persisted snapshot) counts as initialized, so a service starts even while
    vexil is unreachable.
    """

    def __init__(
        self, client: Client | None = None, *, ready_timeout: float = 5.0, **options: Unpack[ClientOptions]
    ) -> None:
        super().__init__()
        if client is not None and options:
            raise ValueError("pass either a client or client options, not both")
        self._owns_client = client is None
        self._client = client if client is not None else Client(start=False, **options)
        self._ready_timeout = ready_timeout
        self._initializing = False
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def client(self) -> Client:
        return self._client

    def get_metadata(self) -> Metadata:
        return Metadata(name=NAME)

    # -- life cycle ---------------------------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        client = self._client
        if not self._unsubscribe:
            self._unsubscribe = [client.on_state(self._state_changed), client.on_change(self._flags_changed)]
        self._initializing = True  # the SDK reports the outcome of initialize itself
        try:
            client.start()
            client.wait_for_ready(self._ready_timeout)
        finally:
            self._initializing = False
        state = client.state
        if state in (ConnectionState.READY, ConnectionState.STALE):
            return
        message = client.status().message or "vexil is not reachable"
        if "credentials refused" in message:
            raise ProviderFatalError(message)
        raise ProviderNotReadyError(message)

    def shutdown(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._owns_client:
            self._client.close()

    def _state_changed(self, event: StateEvent) -> None:
        if self._initializing:
            return
        details = ProviderEventDetails(message=event.message or None)
        if event.state is ConnectionState.READY:
            self.emit_provider_ready(details)
        elif event.state is ConnectionState.STALE:
            self.emit_provider_stale(details)
        elif event.state is ConnectionState.ERROR:
            details.error_code = OFErrorCode.PROVIDER_FATAL if event.fatal else OFErrorCode.GENERAL
            self.emit_provider_error(details)

    def _flags_changed(self, event: ChangeEvent) -> None:
        self.emit_provider_configuration_changed(
            ProviderEventDetails(
                flags_changed=sorted(event.flag_keys),
                message=f"{event.kind.lower()} at config_version {event.config_version}",
                metadata={"config_version": event.config_version},
            )
        )

    # -- resolution ---------------------------------------------------------------------------------

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return resolution(self._client.bool_details(flag_key, default_value, context_of(evaluation_context)))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return resolution(
            self._client.string_details(flag_key, default_value, context_of(evaluation_context))
        )

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return resolution(self._client.int_details(flag_key, default_value, context_of(evaluation_context)))

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return resolution(self._client.float_details(flag_key, default_value, context_of(evaluation_context)))

    def resolve_object_details(  # type: ignore[override]
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        details = self._client.object_details(flag_key, default_value, context_of(evaluation_context))  # type: ignore[arg-type]
        return resolution(details)  # type: ignore[return-value]

    # Local evaluation never blocks, so it runs inline; a remote call waits up to the deadline,
    # so it runs on a worker thread rather than stalling the event loop.

    async def _off_loop(
        self, resolve: Callable[..., FlagResolutionDetails[T]], *args: Any
    ) -> FlagResolutionDetails[T]:
        if self._client.config.mode is Mode.LOCAL:
            return resolve(*args)
        return await asyncio.to_thread(resolve, *args)

    async def resolve_boolean_details_async(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return await self._off_loop(self.resolve_boolean_details, flag_key, default_value, evaluation_context)

    async def resolve_string_details_async(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return await self._off_loop(self.resolve_string_details, flag_key, default_value, evaluation_context)

    async def resolve_integer_details_async(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return await self._off_loop(self.resolve_integer_details, flag_key, default_value, evaluation_context)

    async def resolve_float_details_async(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return await self._off_loop(self.resolve_float_details, flag_key, default_value, evaluation_context)

    async def resolve_object_details_async(  # type: ignore[override]
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return await self._off_loop(self.resolve_object_details, flag_key, default_value, evaluation_context)


def context_of(evaluation_context: EvaluationContext | None) -> dict[str, Any]:
    """OpenFeature's context as vexil's (flagd's): attributes plus `targetingKey`."""
    if evaluation_context is None:
        return {}
    context = dict(evaluation_context.attributes)
    if evaluation_context.targeting_key:
        context["targetingKey"] = evaluation_context.targeting_key
    return context


def resolution(details: EvaluationDetails[T]) -> FlagResolutionDetails[T]:
    """The client's details in OpenFeature's terms (the names are the same by design)."""
    return FlagResolutionDetails(
        value=details.value,
        error_code=OFErrorCode(details.error_code.value) if details.error_code is not None else None,
        error_message=details.error_message or None,
        reason=OFReason(details.reason.value),
        variant=details.variant,
        # OpenFeature's flag metadata holds only booleans, numbers and strings.
        flag_metadata={
            k: v for k, v in details.flag_metadata.items() if isinstance(v, bool | int | float | str)
        },
    )
