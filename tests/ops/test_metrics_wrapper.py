"""The metrics interceptor's wrapper, on the real Evaluate handler: it counts every call it
passes through, it is made once per method, and calls to methods no service has are counted
without their names.

What the wrapper costs per call is measured where speed is measured, as a ratio in `make bench`
(server CPU per Evaluate against the no-op floor), not with a clock here.
"""

from __future__ import annotations

from types import SimpleNamespace

import grpc

from tests.support.flags import flag_pb
from tests.support.servers import running_app, server_settings
from vexil.api.evaluation import EvaluationServicer
from vexil.observability.interceptor import MetricsInterceptor
from vexil.v1 import evaluation_pb2
from vexil.wire import flag_from_pb

CALLS = 1_000
METHOD = "/vexil.v1.EvaluationService/Evaluate"


class Context:
    """The little of a ServicerContext the handler and the wrapper touch on success."""

    def code(self) -> None:
        return None

    def invocation_metadata(self) -> tuple:
        return ()


async def test_the_wrapper_counts_every_call_and_passes_the_answer_through() -> None:
    async with running_app(server_settings()) as app:
        await app.service.create_flag(flag_from_pb(flag_pb("f", default="on")), actor="test")
        bare = EvaluationServicer(app.service, app.hub).Evaluate
        handler = grpc.unary_unary_rpc_method_handler(bare)
        interceptor = MetricsInterceptor(app.metrics.requests, app.metrics.evaluations)
        wrapped = interceptor.wrap(METHOD, handler).unary_unary
        request = evaluation_pb2.EvaluateRequest(flag_key="f")
        context = Context()
        expected = await bare(request, context)
        for _ in range(CALLS):
            assert await wrapped(request, context) == expected
        codes = app.metrics.requests.call("vexil", METHOD.lstrip("/")).codes
        assert codes == {"OK": CALLS}


async def test_wrapper_is_made_once_per_method() -> None:
    async with running_app(server_settings()) as app:
        details = SimpleNamespace(method=METHOD, invocation_metadata=())
        first = app.services.service(details)
        second = app.services.service(details)
        raw = next(h for h in (g.service(details) for g in app.services.generic_handlers) if h is not None)
        assert first is second
        assert first is not None and first.unary_unary is not raw.unary_unary


async def test_unknown_methods_are_counted_without_their_names() -> None:
    async with running_app(server_settings()) as app:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            for n in range(3):
                call = channel.unary_unary(f"/made.up.Service/Method{n}")
                try:
                    await call(b"")
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() is grpc.StatusCode.UNIMPLEMENTED
        stats = app.metrics.requests.call("grpc", "(unknown)")
        assert stats.codes == {"UNIMPLEMENTED": 3}
