"""`Client`: the blocking client, for threaded code (WSGI apps, workers, scripts).

Evaluation happens on the caller's thread and never waits longer than the deadline (remote) or
at all (local); the Watch stream is followed on one daemon thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, Unpack

from vexil.client import channel as channels
from vexil.client.config import ClientConfig, ClientOptions, Mode
from vexil.client.core import JSON, ClientCore
from vexil.client.details import ErrorCode, EvaluationDetails, failed
from vexil.client.remote import RemoteEvaluator
from vexil.client.state import ConnectionState
from vexil.client.watcher import ThreadWatcher
from vexil.engine import ValueType

T = TypeVar("T")
Context = Mapping[str, Any]

_BOOL, _STRING, _INT, _FLOAT, _OBJECT, _ANY = (
    ValueType.BOOL,
    ValueType.STRING,
    ValueType.INT,
    ValueType.FLOAT,
    ValueType.OBJECT,
    ValueType.ANY,
)


_GETTERS = {
    "bool_value": _BOOL,
    "string_value": _STRING,
    "int_value": _INT,
    "float_value": _FLOAT,
    "object_value": _OBJECT,
}


class Client(ClientCore):
    """A vexil client with blocking calls.

    >>> client = Client(target="127.0.0.1:50051", mode="local")   # or VEXIL_* variables
    >>> client.wait_for_ready(5)
    >>> client.bool_value("new-checkout", False, {"targetingKey": "user-1"})

    Every getter returns the caller's `default` when the flag cannot be evaluated, whatever the
    reason (unknown flag, wrong type, server down, deadline, credentials): evaluation never
    raises.  The `*_details` getters say why.  Use it as a context manager, or call `close()`.
    """

    def __init__(
        self, config: ClientConfig | None = None, *, start: bool = True, **options: Unpack[ClientOptions]
    ) -> None:
        super().__init__(config, dict(options))
        cfg = self._config
        self._channel = channels.sync_channel(cfg)
        metadata = channels.call_metadata(cfg)
        self._watcher = ThreadWatcher(self._session, self._channel, metadata)
        self._started = False
        evaluator = self._flags if cfg.mode is Mode.LOCAL else RemoteEvaluator(self._channel, cfg, metadata)
        # Bound once: the getters below are one call away from the snapshot or the stub.
        self._value = evaluator.value
        self._details = evaluator.details
        self._all = evaluator.all_details
        if cfg.mode is Mode.LOCAL:
            # Local evaluation costs a few hundred nanoseconds, so even the getter's own frame
            # shows: bind the value getters straight to the snapshot readers (closures that
            # shadow the methods below, which document the API and serve remote mode); the same
            # for the details getters.
            for name, value_type in _GETTERS.items():
                setattr(self, name, self._flags.reader(value_type))
                setattr(self, name.replace("_value", "_details"), self._flags.explainer(value_type))
        if start:
            self.start()

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start following the server (done by the constructor unless `start=False`)."""
        if not self._started and self._tracker.state is not ConnectionState.CLOSED:
            self._started = True
            self._watcher.start()

    def wait_for_ready(self, timeout: float | None = None) -> bool:
        """Block until the client is READY (True) or `timeout` seconds pass (False)."""
        return self._tracker.wait_ready(timeout)

    def close(self) -> None:
        """Stop following, save the snapshot (if configured), release the channel.

        Afterwards every getter returns the caller's default (PROVIDER_NOT_READY)."""
        if self._tracker.state is ConnectionState.CLOSED:
            return
        self._value = _closed_value
        self._details = _closed_details
        self._all = _closed_all
        for name in _GETTERS:
            self.__dict__.pop(name, None)
            self.__dict__.pop(name.replace("_value", "_details"), None)
        self._watcher.close()
        self._channel.close()
        self._tracker.set(ConnectionState.CLOSED, "closed")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- values -------------------------------------------------------------------------------------

    def bool_value(self, flag_key: str, default: bool, context: Context | None = None) -> bool:
        return self._value(flag_key, default, context, _BOOL)

    def string_value(self, flag_key: str, default: str, context: Context | None = None) -> str:
        return self._value(flag_key, default, context, _STRING)

    def int_value(self, flag_key: str, default: int, context: Context | None = None) -> int:
        return self._value(flag_key, default, context, _INT)

    def float_value(self, flag_key: str, default: float, context: Context | None = None) -> float:
        return self._value(flag_key, default, context, _FLOAT)

    def object_value(self, flag_key: str, default: JSON, context: Context | None = None) -> JSON:
        return self._value(flag_key, default, context, _OBJECT)

    # -- details ------------------------------------------------------------------------------------

    def bool_details(
        self, flag_key: str, default: bool, context: Context | None = None
    ) -> EvaluationDetails[bool]:
        return self._details(flag_key, default, context, _BOOL)

    def string_details(
        self, flag_key: str, default: str, context: Context | None = None
    ) -> EvaluationDetails[str]:
        return self._details(flag_key, default, context, _STRING)

    def int_details(
        self, flag_key: str, default: int, context: Context | None = None
    ) -> EvaluationDetails[int]:
        return self._details(flag_key, default, context, _INT)

    def float_details(
        self, flag_key: str, default: float, context: Context | None = None
    ) -> EvaluationDetails[float]:
        return self._details(flag_key, default, context, _FLOAT)

    def object_details(
        self, flag_key: str, default: JSON, context: Context | None = None
    ) -> EvaluationDetails[JSON]:
        return self._details(flag_key, default, context, _OBJECT)

    # -- bulk ---------------------------------------------------------------------------------------

    def all_details(self, context: Context | None = None) -> dict[str, EvaluationDetails[Any]]:
        """Every flag of the environment for one context, by key ({} when unavailable)."""
        return self._all(context)

    def all_values(self, context: Context | None = None) -> dict[str, Any]:
        """The value of every flag that resolves one (disabled, failing and default-less flags are
        left out: the caller's own defaults apply to them)."""
        return {key: d.value for key, d in self._all(context).items() if d.value is not None}


CLOSED = "the client is closed"


def _closed_value(key: str, default: T, context: Context | None, value_type: ValueType) -> T:
    return default


def _closed_details(
    key: str, default: T, context: Context | None, value_type: ValueType
) -> EvaluationDetails[T]:
    return failed(key, default, ErrorCode.PROVIDER_NOT_READY, CLOSED)


def _closed_all(context: Context | None) -> dict[str, EvaluationDetails[Any]]:
    return {}
