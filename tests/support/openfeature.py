"""Driving OpenFeature providers from tests whose vexil server runs on the test's own event loop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import FeatureProvider

from tests.support.flagset import TYPED_DEFAULTS, Answer, from_details


class OpenFeature:
    """The OpenFeature API driven from a worker thread, so the server's loop keeps serving."""

    async def use(self, provider: FeatureProvider) -> OpenFeatureClient:
        await asyncio.to_thread(api.set_provider_and_wait, provider)
        return api.get_client()

    async def details(self, client: OpenFeatureClient, kind: str, key: str, context: dict[str, Any]) -> Any:
        attributes = {k: v for k, v in context.items() if k != "targetingKey"}
        ctx = EvaluationContext(context.get("targetingKey"), attributes)
        getter = getattr(client, f"get_{kind}_details")
        return await asyncio.to_thread(getter, key, TYPED_DEFAULTS[kind], ctx)

    async def answer(self, client: OpenFeatureClient, kind: str, key: str, context: dict[str, Any]) -> Answer:
        return from_details(await self.details(client, kind, key, context))


def stub(channel: Any, service: ServiceDescriptor) -> Any:
    """A client stub for any service, built from its descriptor (here: vexil's copy of flagd's)."""
    methods = {}
    for method in service.methods:
        request = GetMessageClass(method.input_type)
        response = GetMessageClass(method.output_type)
        make = channel.unary_stream if method.server_streaming else channel.unary_unary
        methods[method.name] = make(
            f"/{service.full_name}/{method.name}",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
    return SimpleNamespace(**methods)
