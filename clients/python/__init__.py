"""The Python client SDK of vexil.

    from vexil.client import Client
    with Client(target="127.0.0.1:50051", mode="local") as client:
        client.wait_for_ready(5)
        if client.bool_value("new-checkout", False, {"targetingKey": user_id}):
            ...

`Client` blocks (threads); `AsyncClient` is the asyncio twin.  Both evaluate `remote`ly (one
`Evaluate` RPC per call, bounded by a deadline) or `local`ly (a snapshot kept current by
`Watch`, evaluated in-process by the server's own engine).  Evaluation never raises: every
failure returns the caller's default, and the `*_details` getters say why.
"""

from vexil.client.aio import AsyncClient
from vexil.client.changes import ChangeEvent, ChangeKind
from vexil.client.client import Client
from vexil.client.config import ClientConfig, ClientOptions, ConfigError, Mode, RetryPolicy, load_config
from vexil.client.details import ErrorCode, EvaluationDetails, Reason
from vexil.client.state import ClientStatus, ConnectionState, StateEvent

__all__ = [
    "AsyncClient",
    "ChangeEvent",
    "ChangeKind",
    "Client",
    "ClientConfig",
    "ClientOptions",
    "ClientStatus",
    "ConfigError",
    "ConnectionState",
    "ErrorCode",
    "EvaluationDetails",
    "Mode",
    "Reason",
    "RetryPolicy",
    "StateEvent",
    "load_config",
]
