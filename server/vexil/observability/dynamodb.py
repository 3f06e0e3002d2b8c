"""DynamoDB call metrics, gathered from the AWS SDK's own event hooks on the store's client.

Hooking botocore's events (rather than wrapping the store's methods) sees every request the
client sends, including the SDK's internal retries: a throttled attempt that a retry later
hides is still counted, which is what the "any throttle for a minute" alert needs.  The hooks:
- `provide-client-params`: ask for `ReturnConsumedCapacity=TOTAL` on every operation that
  supports it (the store's code does not have to know);
- `before-call` / `after-call` / `after-call-error`: latency of each call (retries included),
  its final error code, and the capacity units DynamoDB reports;
- `needs-retry`: every attempt DynamoDB throttled.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

DYNAMODB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

THROTTLE_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
STARTED = "vexil_started"
"""Key under which the start time rides in botocore's per-request context dict."""


class DynamoMetrics:
    """The DynamoDB metric families, and `attach` to feed them from one aiobotocore client."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "vexil_dynamodb_request_duration_seconds",
            "DynamoDB calls made by the store, SDK retries included, by operation.",
            ["operation"],
            buckets=DYNAMODB_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "vexil_dynamodb_errors",
            "DynamoDB calls that failed, by operation and error code (conditional-check and"
            " transaction-cancelled codes are lost races the store retries or reports as conflicts).",
            ["operation", "code"],
            registry=registry,
        )
        self.throttles = Counter(
            "vexil_dynamodb_throttles",
            "DynamoDB attempts refused for throughput (each SDK retry counts), by operation.",
            ["operation"],
            registry=registry,
        )
        self.consumed = Counter(
            "vexil_dynamodb_consumed_capacity_units",
            "Capacity units DynamoDB reported as consumed (ReturnConsumedCapacity=TOTAL), by"
            " operation and kind (read or write).",
            ["operation", "kind"],
            registry=registry,
        )

    def attach(self, client: Any) -> None:
        """Register the hooks on an aiobotocore DynamoDB client (see the module docstring)."""
        events = client.meta.events
        events.register("provide-client-params.dynamodb", _ask_for_capacity)
        events.register("before-call.dynamodb", _started)
        events.register("after-call.dynamodb", self._after_call)
        events.register("after-call-error.dynamodb", self._after_error)
        events.register("needs-retry.dynamodb", self._attempted)

    def _after_call(self, model: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        operation = model.name
        self._observe(operation, context)
        error = parsed.get("Error") or {}
        if error.get("Code"):
            self.errors.labels(operation, str(error["Code"])).inc()
        units = _capacity_units(parsed.get("ConsumedCapacity"))
        if units:
            kind = "read" if operation in READ_OPERATIONS else "write"
            self.consumed.labels(operation, kind).inc(units)

    def _after_error(self, context: dict[str, Any], exception: BaseException, **kwargs: Any) -> None:
        operation = str(kwargs.get("event_name", "")).rsplit(".", 1)[-1] or "unknown"
        self._observe(operation, context)
        self.errors.labels(operation, type(exception).__name__).inc()

    def _observe(self, operation: str, context: dict[str, Any]) -> None:
        started = context.pop(STARTED, None)
        if started is not None:
            self.duration.labels(operation).observe(time.perf_counter() - started)

    def _attempted(self, response: Any, operation: Any, **_: Any) -> None:
        """Called after every attempt: count the ones DynamoDB throttled."""
        if not response:
            return
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
        code = (parsed.get("Error") or {}).get("Code", "")
        throttled = code in THROTTLE_CODES or any(
            (reason or {}).get("Code") == "ThrottlingError"
            for reason in parsed.get("CancellationReasons") or ()
        )
        if throttled:
            self.throttles.labels(operation.name).inc()


def _ask_for_capacity(params: dict[str, Any], model: Any, **_: Any) -> None:
    shape = model.input_shape
    if shape is not None and "ReturnConsumedCapacity" in shape.members:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")


def _started(context: dict[str, Any], **_: Any) -> None:
    context[STARTED] = time.perf_counter()


def _capacity_units(consumed: Any) -> float:
    """Total units from one ConsumedCapacity (a dict, or a list of them for batch/transactions)."""
    if isinstance(consumed, Mapping):
        return float(consumed.get("CapacityUnits") or 0.0)
    if isinstance(consumed, list):
        return sum(_capacity_units(entry) for entry in consumed)
    return 0.0
