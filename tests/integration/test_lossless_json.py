"""Lossless JSON: generated flags pushed through every surface of a real server, for both stores.

Each example is a batch of generated flags (object, number, string and boolean variants holding
empty and nested-empty arrays and objects, null, unicode keys, large and tiny numbers, integral
floats, -0.0), generated `$evaluators` and metadata.  Half of the flags enter through the admin API
(protobuf), half through the service the way a flags file enters them (exact JSON); some are then
updated and rolled back.  Every surface must give back what went in:

- vexil's own JSON (flagd sync documents, OFREP, the stored items) exactly;
- protobuf surfaces (admin responses, history, Watch, Evaluate objects, flagd Resolve*, ResolveAll,
  EventStream, the client SDK in both modes, export -> import) with the Struct normalisation
  documented in the README, written here independently as `struct_norm`.

Requests are encoded with protobuf's own `json_format` and answers decoded by `from_value` below, so
nothing here relies on vexil's converters.  The test counts the flags it checked: `make test` must
push at least `MIN_FLAGS` through both stores together.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.client import LoopThread
from tests.support.dynamo import REGION
from tests.support.openfeature import stub
from tests.support.servers import server_settings
from vexil.app import App
from vexil.cli.flagfiles import export_text, run_import
from vexil.client import AsyncClient
from vexil.model import Flag
from vexil.store.memory import MemoryStore
from vexil.transport.flagd_protos import (
    EVALUATION_V1,
    EVALUATION_V2,
    SYNC_V1,
    evaluation_v1,
    evaluation_v2,
    sync_v1,
)
from vexil.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc, flag_pb2

BATCH = {"memory": 250, "dynamodb": 20}
"""Flags per example: one fresh server per example, so a batch is cheap to push through every
surface.  The emulator's writes slow down as its table grows, hence smaller DynamoDB batches on a
fresh table each."""
EXAMPLES = {"memory": 8, "dynamodb": 2}
MIN_FLAGS = 2_000
CHECKED = {"memory": 0, "dynamodb": 0}
WAIT_S = 30.0
INT64 = 2**63

# -- generated JSON ----------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
NUMBERS = st.one_of(
    st.integers(-(2**53), 2**53),
    st.integers(-(2**70), 2**70),  # beyond a double's 53 bits, some beyond int64
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            0.0,
            -0.0,
            1.0,
            -3.0,
            1e20,
            2.0**63,
            5e-324,
            2.2250738585072014e-308,
            1.7976931348623157e308,
            2**53 + 1,
            2**63 - 1,
            2**63,
            -(2**63),
            2**64 + 1,
            0.1,
            1e-7,
            123456789.123,
        ]
    ),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
EMPTIES = st.sampled_from([[], {}, [[]], [{}], {"": []}, {"a": {}}, [[], {}], {"x": [[], {"y": []}]}])
JSON_VALUES = st.recursive(
    st.one_of(SCALARS, EMPTIES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
OBJECTS = st.dictionaries(TEXT, JSON_VALUES, max_size=4)
VARIANT_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=5)
LITERALS = st.lists(SCALARS, max_size=4)
"""Rule operands: JSONLogic reads an object inside a rule as an operation, so only scalars."""


@dataclass(frozen=True)
class Spec:
    """One generated flag: its definition, and the metadata of an update (None: not updated)."""

    kind: str
    variants: dict[str, Any]
    default: str
    targeting: dict[str, Any] | None
    metadata: dict[str, Any]
    update_metadata: dict[str, Any] | None


@dataclass(frozen=True)
class Palette:
    """Values drawn once per example that its flags combine.  A few hundred flags each drawing
    their own nested JSON would exceed what hypothesis lets one example draw; picking from a
    palette costs a handful of choices per flag and still mixes every kind of value."""

    objects: list[dict[str, Any]]
    numbers: list[Any]
    texts: list[str]
    names: list[str]
    literals: list[list[Any]]
    variables: list[str]


PALETTES = st.builds(
    Palette,
    objects=st.lists(OBJECTS, min_size=6, max_size=10),
    numbers=st.lists(NUMBERS, min_size=6, max_size=10),
    texts=st.lists(TEXT, min_size=4, max_size=6),
    names=st.lists(VARIANT_NAMES, min_size=3, max_size=5, unique=True),
    literals=st.lists(LITERALS, min_size=2, max_size=4),
    variables=st.lists(TEXT, min_size=1, max_size=3),
)


@st.composite
def specs(draw: st.DrawFn, palette: Palette, evaluator_names: list[str]) -> Spec:
    kind = draw(st.sampled_from(["object", "object", "object", "number", "string", "bool"]))
    pool = {"object": palette.objects, "number": palette.numbers, "string": palette.texts}
    if kind == "bool":
        variants: dict[str, Any] = {"on": True, "off": False}
    else:
        names = draw(st.lists(st.sampled_from(palette.names), min_size=1, max_size=3, unique=True))
        variants = {name: draw(st.sampled_from(pool[kind])) for name in names}
    default = draw(st.sampled_from(sorted(variants)))
    targeting = None
    if draw(st.booleans()):
        condition: Any = {
            "in": [{"var": draw(st.sampled_from(palette.variables))}, draw(st.sampled_from(palette.literals))]
        }
        if evaluator_names and draw(st.booleans()):
            condition = {"$ref": draw(st.sampled_from(evaluator_names))}
        # Never true, so every surface serves the default variant, whatever the rule holds.
        targeting = {"if": [{"and": [False, condition]}, draw(st.sampled_from(sorted(variants))), None]}
    metadata = draw(st.sampled_from(palette.objects))
    update = draw(st.none() | st.sampled_from(palette.objects))
    return Spec(kind, variants, default, targeting, metadata, update)


@st.composite
def batches(draw: st.DrawFn, size: int) -> tuple[dict[str, Any], dict[str, Any], list[Spec]]:
    palette = draw(PALETTES)
    names = [f"rule-{i}" for i in range(draw(st.integers(0, 3)))]
    evaluators = {
        name: {
            "in": [{"var": draw(st.sampled_from(palette.variables))}, draw(st.sampled_from(palette.literals))]
        }
        for name in names
    }
    flags = draw(st.lists(specs(palette, names), min_size=size, max_size=size))
    return evaluators, draw(st.sampled_from(palette.objects)), flags


# -- the documented normalisation, and strict comparison -----------------------------------------


def struct_norm(value: Any) -> Any:
    """JSON as a protobuf Struct carries it (README, "Lossless JSON"): every number is a double,
    and a double that is integral and within int64 reads back as an int (so 1.0 -> 1, -0.0 -> 0,
    2**53 + 1 -> 2**53); other doubles stay floats.  Everything else is unchanged."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        double = float(value)
        return int(double) if double.is_integer() and -INT64 <= double < INT64 else double
    if isinstance(value, dict):
        return {k: struct_norm(v) for k, v in value.items()}
    return [struct_norm(v) for v in value]


def difference(want: Any, got: Any, path: str = "$") -> str | None:
    """Where `got` differs from `want`: types (1 vs 1.0, True vs 1), -0.0 vs 0.0, keys, order of
    arrays; None when they are the same JSON."""
    if isinstance(want, dict) or isinstance(got, dict):
        if not (isinstance(want, dict) and isinstance(got, dict)):
            return f"{path}: want {want!r}, got {got!r}"
        if set(want) != set(got):
            return f"{path}: keys {sorted(want)!r} != {sorted(got)!r}"
        for key in want:
            found = difference(want[key], got[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(want, list) or isinstance(got, list):
        if not (isinstance(want, list) and isinstance(got, list)) or len(want) != len(got):
            return f"{path}: want {want!r}, got {got!r}"
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            found = difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    if type(want) is not type(got) or want != got:
        return f"{path}: want {want!r} ({type(want).__name__}), got {got!r} ({type(got).__name__})"
    if isinstance(want, float) and math.copysign(1.0, want) != math.copysign(1.0, got):
        return f"{path}: want {want!r}, got {got!r} (sign of zero)"
    return None


def same(want: Any, got: Any, where: str) -> None:
    found = difference(want, got)
    assert found is None, f"{where}: {found}"


class _NoKind:
    def __repr__(self) -> str:
        return "<a Value with no kind: read as null, refused by grpcurl>"


NO_KIND = _NoKind()


def from_value(value: struct_pb2.Value) -> Any:
    """A Value off the wire, decoded independently of vexil.  A Value without a kind (readers take
    it as null, grpcurl refuses it) decodes as NO_KIND, which equals nothing."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return NO_KIND
    if kind == "null_value":
        return None
    if kind == "number_value":
        return struct_norm(value.number_value)
    if kind in ("string_value", "bool_value"):
        return getattr(value, kind)
    if kind == "struct_value":
        return from_struct(value.struct_value)
    return [from_value(v) for v in value.list_value.values]


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {k: from_value(v) for k, v in struct.fields.items()}


def scalar_only(metadata: dict[str, Any]) -> dict[str, Any]:
    """flagd metadata: its schema allows strings, numbers and booleans only."""
    return {k: v for k, v in metadata.items() if v is not None and not isinstance(v, dict | list)}


def is_float_flag(variants: dict[str, Any]) -> bool:
    numbers = [v for v in variants.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return bool(numbers) and any(isinstance(v, float) for v in numbers)


# -- what is expected of each flag ---------------------------------------------------------------


@dataclass
class Expected:
    """A flag as stored, version by version (index 0 is version 1), in exact JSON."""

    key: str
    kind: str
    versions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def now(self) -> dict[str, Any]:
        return self.versions[-1]

    @property
    def value(self) -> Any:
        return self.now["variants"][self.now["defaultVariant"]]


def definition(spec: Spec, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "variants": spec.variants,
        "defaultVariant": spec.default,
        "metadata": spec.metadata if metadata is None else metadata,
    }
    if spec.targeting is not None:
        body["targeting"] = spec.targeting
    return body


def check_flag_message(msg: flag_pb2.Flag, want: dict[str, Any], where: str) -> None:
    same(
        struct_norm(want["variants"]),
        {k: from_value(v) for k, v in msg.variants.items()},
        f"{where} variants",
    )
    same(
        struct_norm(want.get("targeting")),
        from_struct(msg.targeting) if msg.HasField("targeting") else None,
        f"{where} targeting",
    )
    same(struct_norm(want["metadata"]), from_struct(msg.metadata), f"{where} metadata")
    assert msg.default_variant == want["defaultVariant"], where


def check_flag_body(body: dict[str, Any], want: dict[str, Any], where: str, metadata: dict[str, Any]) -> None:
    """A flag of a flagd JSON document."""
    same(want["variants"], body["variants"], f"{where} variants")
    same(want.get("targeting"), body.get("targeting"), f"{where} targeting")
    same(metadata, body.get("metadata", {}), f"{where} metadata")
    assert body.get("defaultVariant") == want["defaultVariant"], where


# -- one server per example ----------------------------------------------------------------------

counter = itertools.count()


@dataclass
class Harness:
    loop: LoopThread
    app: App
    env: str
    copy: str
    channel: grpc.Channel
    admin: Any
    evaluation: Any
    v1: Any
    v2: Any
    sync: Any
    dynamo: Any | None
    table: str
    parallel: int
    """Writes in flight at once: DynamoDB serialises an environment's writes (lost races retry)."""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.app.port}"

    def selector(self, env: str | None = None) -> tuple[tuple[str, str], ...]:
        return (("flagd-selector", f"flagSetId={env or self.env}"),)


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


def fresh_table(endpoint: str, table: str) -> None:
    """An empty table for each example: the emulator's writes slow down as a table grows."""
    import boto3

    from vexil.store.dynamodb_table import table_spec

    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(reset, timeout=10) as response:
        response.read()
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    try:
        client.create_table(**table_spec(table))
        client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    finally:
        client.close()


@contextmanager
def harness(loop: LoopThread, dynamo: tuple[str, str] | None) -> Iterator[Harness]:
    """A fresh server with two fresh environments (the second receives the import)."""
    n = next(counter)
    env, copy = f"lossless-{n}", f"copy-{n}"
    options: dict[str, Any] = {"environments": f"{env},{copy}", "env": "local", "cache_maxsize": 1000}
    options["watch_queue_size"] = 4096
    client = None
    if dynamo is not None:
        import boto3

        endpoint, table = dynamo
        fresh_table(endpoint, table)
        options.update(store="dynamodb", dynamodb_endpoint=endpoint, dynamodb_table=table)
        client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    settings = server_settings(**options)

    async def start() -> App:
        app = App(settings, MemoryStore() if dynamo is None else None)
        await app.start()
        return app

    app = loop.run(start())
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        yield Harness(
            loop,
            app,
            env,
            copy,
            channel,
            admin_pb2_grpc.AdminServiceStub(channel),
            evaluation_pb2_grpc.EvaluationServiceStub(channel),
            stub(channel, EVALUATION_V1),
            stub(channel, EVALUATION_V2),
            stub(channel, SYNC_V1),
            client,
            dynamo[1] if dynamo else "",
            1 if dynamo else 16,
        )
    finally:
        channel.close()
        loop.run(app.stop(grace=0.5))
        if client is not None:
            client.close()


class Stream:
    """A server stream read on a thread of its own (so the server never waits on flow control)."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.items: list[Any] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for item in self.call:
                with self.lock:
                    self.items.append(item)
        except grpc.RpcError:
            pass

    def wait_for(self, done: Callable[[list[Any]], bool], what: str) -> list[Any]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                items = list(self.items)
            if done(items):
                return items
            time.sleep(0.02)
        raise AssertionError(f"not received within {WAIT_S} s: {what}")

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(5)


# -- writing a batch -----------------------------------------------------------------------------


def pipelined(method: Any, requests: list[Any], parallel: int, **kwargs: Any) -> list[Any]:
    """Unary calls with up to `parallel` in flight (answers in request order): a batch costs a
    few round trips instead of one per flag."""
    answers: list[Any] = []
    for start in range(0, len(requests), parallel):
        futures = [method.future(r, timeout=30, **kwargs) for r in requests[start : start + parallel]]
        answers.extend(f.result() for f in futures)
    return answers


def write_batch(h: Harness, batch: tuple[dict[str, Any], dict[str, Any], list[Spec]]) -> tuple[dict, int]:
    """Write the batch (admin API and service doors); returns what must be stored and the last
    config_version."""
    evaluators, env_metadata, specs_ = batch
    request = admin_pb2.UpdateEnvironmentRequest(environment=h.env, reason="lossless")
    json_format.ParseDict(evaluators, request.evaluators)
    json_format.ParseDict(env_metadata, request.metadata)
    answer = h.admin.UpdateEnvironment(request, timeout=30)
    environment = {"evaluators": struct_norm(evaluators), "metadata": struct_norm(env_metadata)}
    same(environment["evaluators"], from_struct(answer.evaluators), "UpdateEnvironment evaluators")
    same(environment["metadata"], from_struct(answer.metadata), "UpdateEnvironment metadata")
    versions = [answer.config_version]
    expected = {f"f{i}": Expected(f"f{i}", spec.kind) for i, spec in enumerate(specs_)}

    # Even flags through the admin API: protobuf in, so the Struct normalisation applies.
    admin_door = [(f"f{i}", definition(spec)) for i, spec in enumerate(specs_) if i % 2 == 0]
    requests = [
        admin_pb2.CreateFlagRequest(
            flag=json_format.ParseDict({"key": key, "environment": h.env, **body}, flag_pb2.Flag()),
            reason="lossless",
        )
        for key, body in admin_door
    ]
    for (key, body), response in zip(
        admin_door, pipelined(h.admin.CreateFlag, requests, h.parallel), strict=True
    ):
        expected[key].versions.append(struct_norm(body))
        check_flag_message(response.flag, expected[key].now, f"CreateFlag {key}")
        versions.append(response.config_version)

    # Odd flags as exact JSON, the way a flags file enters them.
    async def create_exact() -> list[int]:
        done = []
        for i, spec in enumerate(specs_):
            if i % 2 == 1:
                flag = Flag(
                    key=f"f{i}",
                    environment=h.env,
                    variants=spec.variants,
                    default_variant=spec.default,
                    targeting=spec.targeting,
                    metadata=spec.metadata,
                )
                done.append((await h.app.service.create_flag(flag, actor="lossless")).config_version)
                expected[flag.key].versions.append(definition(spec))
        return done

    versions += h.loop.run(create_exact())

    # Updates through the admin API, a third of them rolled back to version 1 as it was stored.
    updated = [
        (f"f{i}", definition(spec, spec.update_metadata))
        for i, spec in enumerate(specs_)
        if spec.update_metadata is not None
    ]
    requests = [
        admin_pb2.UpdateFlagRequest(
            flag=json_format.ParseDict({"key": key, "environment": h.env, **body}, flag_pb2.Flag()),
            expected_version=1,
            reason="lossless",
        )
        for key, body in updated
    ]
    for (key, body), response in zip(
        updated, pipelined(h.admin.UpdateFlag, requests, h.parallel), strict=True
    ):
        expected[key].versions.append(struct_norm(body))
        check_flag_message(response.flag, expected[key].now, f"UpdateFlag {key}")
        versions.append(response.config_version)
    rolled = [key for n, (key, _) in enumerate(updated) if n % 3 == 0]
    requests = [
        admin_pb2.RollbackFlagRequest(environment=h.env, key=key, to_version=1, reason="lossless")
        for key in rolled
    ]
    for key, response in zip(rolled, pipelined(h.admin.RollbackFlag, requests, h.parallel), strict=True):
        expected[key].versions.append(expected[key].versions[0])
        check_flag_message(response.flag, expected[key].now, f"RollbackFlag {key}")
        versions.append(response.config_version)
    return {"environment": environment, "flags": expected}, max(versions)


# -- reading it back, surface by surface ---------------------------------------------------------

READS = 32
"""Reads in flight at once."""


def check_admin_reads(h: Harness, flags: dict[str, Expected]) -> None:
    keys = list(flags)
    gets = pipelined(
        h.admin.GetFlag, [admin_pb2.GetFlagRequest(environment=h.env, key=k) for k in keys], READS
    )
    histories = pipelined(
        h.admin.GetFlagHistory,
        [admin_pb2.GetFlagHistoryRequest(environment=h.env, key=k, page_size=10) for k in keys],
        READS,
    )
    for key, msg, history in zip(keys, gets, histories, strict=True):
        want = flags[key]
        check_flag_message(msg, want.now, f"GetFlag {key}")
        got = {rev.flag.version: rev.flag for rev in history.revisions}
        assert sorted(got) == list(range(1, len(want.versions) + 1)), f"history of {key}: {sorted(got)}"
        for number, body in enumerate(want.versions, 1):
            check_flag_message(got[number], body, f"history {key} v{number}")
    listed: dict[str, flag_pb2.Flag] = {}
    token = ""
    for _ in range(100):
        page = h.admin.ListFlags(
            admin_pb2.ListFlagsRequest(environment=h.env, page_size=25, page_token=token), timeout=30
        )
        listed.update((f.key, f) for f in page.flags)
        token = page.next_page_token
        if not token:
            break
    assert set(listed) == set(flags)
    for key, want in flags.items():
        check_flag_message(listed[key], want.now, f"ListFlags {key}")


def check_evaluations(h: Harness, state: dict[str, Any]) -> None:
    flags: dict[str, Expected] = state["flags"]
    env_metadata = state["environment"]["metadata"]
    every = h.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest(environment=h.env), timeout=30)
    results = {r.flag_key: r for r in every.results}
    singles = pipelined(
        h.evaluation.Evaluate,
        [evaluation_pb2.EvaluateRequest(environment=h.env, flag_key=key) for key in flags],
        READS,
    )
    for (key, want), one in zip(flags.items(), singles, strict=True):
        for name, answer in (("Evaluate", one), ("EvaluateAll", results[key])):
            where = f"{name} {key}"
            assert answer.variant == want.now["defaultVariant"], where
            same(native_value(want.value), answer_value(answer), where)
            same(
                struct_norm({**env_metadata, **want.now["metadata"]}),
                from_struct(answer.metadata),
                f"{where} metadata",
            )


def native_value(value: Any) -> Any:
    """What vexil.v1's typed answer carries for a variant value: ints within int64 exactly,
    other numbers as doubles, objects as Structs."""
    if isinstance(value, dict | list):
        return struct_norm(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return float(value)
    return value


def answer_value(answer: evaluation_pb2.EvaluateResponse) -> Any:
    kind = answer.WhichOneof("value")
    assert kind is not None, f"{answer.flag_key}: no value"
    if kind == "object_value":
        return from_value(answer.object_value)
    return getattr(answer, kind)


RESOLVE = {"object": "ResolveObject", "string": "ResolveString", "bool": "ResolveBoolean"}


def check_flagd(h: Harness, state: dict[str, Any]) -> None:
    flags: dict[str, Expected] = state["flags"]
    env_metadata = state["environment"]["metadata"]
    everything = h.v1.ResolveAll(evaluation_v1.ResolveAllRequest(), metadata=h.selector(), timeout=30)
    methods = {key: resolve_method(want) for key, want in flags.items()}
    answers: dict[str, Any] = {}
    keys = list(flags)
    for start in range(0, len(keys), READS):
        futures = {
            key: getattr(h.v2, methods[key]).future(
                getattr(evaluation_v2, methods[key] + "Request")(flag_key=key),
                metadata=h.selector(),
                timeout=30,
            )
            for key in keys[start : start + READS]
        }
        answers.update((key, future.result()) for key, future in futures.items())
    for key, want in flags.items():
        metadata = struct_norm({**env_metadata, **want.now["metadata"]})
        value, method, answer = want.value, methods[key], answers[key]
        where = f"flagd {method} {key}"
        if method == "ResolveObject":
            same(struct_norm(value), from_struct(answer.value), where)
        elif method == "ResolveFloat":
            same(float(value), answer.value, where)
        else:
            same(value, answer.value, where)
        same(metadata, from_struct(answer.metadata), f"{where} metadata")
        any_flag = everything.flags[key]
        kind = any_flag.WhichOneof("value")
        got = from_struct(any_flag.object_value) if kind == "object_value" else getattr(any_flag, kind)
        want_all = struct_norm(value) if want.kind == "object" else value
        if want.kind == "number":
            want_all = float(value)
        same(want_all, got, f"flagd ResolveAll {key}")
        same(metadata, from_struct(any_flag.metadata), f"flagd ResolveAll {key} metadata")


def resolve_method(want: Expected) -> str:
    """The flagd method a provider would call for this flag's type."""
    if want.kind != "number":
        return RESOLVE[want.kind]
    if is_float_flag(want.now["variants"]) or not -INT64 <= want.value < INT64:
        return "ResolveFloat"
    return "ResolveInt"


def check_sync_document(h: Harness, state: dict[str, Any]) -> None:
    """flagd's in-process providers read this JSON: exact."""
    flags: dict[str, Expected] = state["flags"]
    environment = state["environment"]
    answer = h.sync.FetchAllFlags(sync_v1.FetchAllFlagsRequest(), metadata=h.selector(), timeout=30)
    document = json.loads(answer.flag_configuration)
    same(environment["evaluators"], document.get("$evaluators", {}), "sync $evaluators")
    same(scalar_only(environment["metadata"]), document.get("metadata", {}), "sync metadata")
    for key, want in flags.items():
        merged = scalar_only({**environment["metadata"], **want.now["metadata"]})
        check_flag_body(document["flags"][key], want.now, f"sync {key}", merged)
    first = next(iter(h.sync.SyncFlags(sync_v1.SyncFlagsRequest(), metadata=h.selector(), timeout=30)))
    assert first.flag_configuration == answer.flag_configuration


def check_ofrep(h: Harness, state: dict[str, Any]) -> None:
    """OFREP is JSON: exact (a float flag's integral values as floats, as the README says)."""
    flags: dict[str, Expected] = state["flags"]
    env_metadata = state["environment"]["metadata"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{h.app.http_port}/ofrep/v1/evaluate/flags",
        data=b'{"context": {}}',
        headers={"content-type": "application/json", "flagd-selector": f"flagSetId={h.env}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    answers = {a["key"]: a for a in body["flags"]}
    for key, want in flags.items():
        value = want.value
        if want.kind == "number" and is_float_flag(want.now["variants"]) and isinstance(value, int):
            value = float(value)
        same(value, answers[key]["value"], f"OFREP {key}")
        merged = scalar_only({**env_metadata, **want.now["metadata"]})
        same(merged, answers[key]["metadata"], f"OFREP {key} metadata")


def check_stored(h: Harness, state: dict[str, Any]) -> None:
    """What the store holds: exact (the DynamoDB items as JSON text, read with boto3)."""
    flags: dict[str, Expected] = state["flags"]
    environment = state["environment"]
    for key, want in flags.items():
        if h.dynamo is None:
            flag = h.loop.run(h.app.store.get_flag(h.env, key))
            assert flag is not None
            stored = {"variants": flag.variants, "targeting": flag.targeting, "metadata": flag.metadata}
        else:
            item = h.dynamo.get_item(
                TableName=h.table, Key={"PK": {"S": f"FLAG#{h.env}#{key}"}, "SK": {"S": "METADATA"}}
            )["Item"]
            stored = {name: json.loads(item[name]["S"]) for name in ("variants", "targeting", "metadata")}
            history = h.dynamo.query(
                TableName=h.table,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :v)",
                ExpressionAttributeValues={":pk": {"S": f"FLAG#{h.env}#{key}"}, ":v": {"S": "VERSION#"}},
            )["Items"]
            records = sorted((json.loads(i["flag"]["S"]) for i in history), key=lambda r: r["version"])
            assert len(records) == len(want.versions), f"history items of {key}"
            for record, body in zip(records, want.versions, strict=True):
                same(body["variants"], record["variants"], f"history item {key} v{record['version']}")
                same(body["metadata"], record["metadata"], f"history item {key} v{record['version']}")
        same(want.now["variants"], dict(stored["variants"]), f"stored {key} variants")
        same(want.now.get("targeting"), stored["targeting"], f"stored {key} targeting")
        same(want.now["metadata"], dict(stored["metadata"]), f"stored {key} metadata")
    if h.dynamo is not None:
        item = h.dynamo.get_item(
            TableName=h.table, Key={"PK": {"S": f"ENV#{h.env}"}, "SK": {"S": "METADATA"}}
        )
        same(environment["evaluators"], json.loads(item["Item"]["evaluators"]["S"]), "stored $evaluators")
        same(
            environment["metadata"], json.loads(item["Item"]["metadata"]["S"]), "stored environment metadata"
        )


def check_watch(h: Harness, stream: Stream, state: dict[str, Any], version: int) -> None:
    flags: dict[str, Expected] = state["flags"]
    events = stream.wait_for(
        lambda items: any(e.config_version >= version for e in items), f"Watch up to config_version {version}"
    )
    assert all(e.type != evaluation_pb2.WatchEvent.TYPE_SNAPSHOT for e in events[1:]), "Watch resynced"
    latest = {e.flag.key: e.flag for e in events if e.type == evaluation_pb2.WatchEvent.TYPE_UPSERT}
    for key, want in flags.items():
        check_flag_message(latest[key], want.now, f"Watch event {key}")
    env_events = [e for e in events if e.type == evaluation_pb2.WatchEvent.TYPE_ENVIRONMENT]
    same(state["environment"]["evaluators"], from_struct(env_events[-1].environment.evaluators), "Watch env")
    same(state["environment"]["metadata"], from_struct(env_events[-1].environment.metadata), "Watch env")
    snapshot = next(iter(h.evaluation.Watch(evaluation_pb2.WatchRequest(environment=h.env), timeout=30)))
    assert snapshot.type == evaluation_pb2.WatchEvent.TYPE_SNAPSHOT
    in_snapshot = {f.key: f for f in snapshot.flags}
    for key, want in flags.items():
        check_flag_message(in_snapshot[key], want.now, f"Watch snapshot {key}")
    same(
        state["environment"]["evaluators"], from_struct(snapshot.environment.evaluators), "Watch snapshot env"
    )


def check_event_stream(stream: Stream, flags: dict[str, Expected]) -> None:
    """flagd's EventStream names every written flag in `data.flags` (a Struct of objects)."""

    def named(items: list[Any]) -> set[str]:
        keys: set[str] = set()
        for event in items:
            if event.type == "configuration_change":
                data = from_struct(event.data)
                for key, change in data.get("flags", {}).items():
                    assert change in ({"type": "write"}, {"type": "update"}), change
                    keys.add(key)
        return keys

    stream.wait_for(lambda items: set(flags) <= named(items), "EventStream naming every flag")


def check_clients(h: Harness, state: dict[str, Any]) -> None:
    """The SDK: remote mode reads Evaluate answers, local mode evaluates the Watch snapshot."""
    flags: dict[str, Expected] = state["flags"]

    async def read(mode: str) -> dict[str, Any]:
        # A deadline for a loaded machine: remote all_details answers {} when EvaluateAll is late.
        async with AsyncClient(target=h.target, environment=h.env, mode=mode, deadline=WAIT_S) as client:
            assert await client.wait_for_ready(WAIT_S), f"{mode} client not ready"
            details = await client.all_details()
            assert set(details) == set(flags), f"{mode} client: {len(details)} of {len(flags)} flags"
            return {key: d.value for key, d in details.items()}

    remote, local = h.loop.run(read("remote")), h.loop.run(read("local"))
    for key, want in flags.items():
        same(native_value(want.value), _plain(remote[key]), f"client remote {key}")
        same(struct_norm(want.value), _plain(local[key]), f"client local {key}")


def _plain(value: Any) -> Any:
    """The client's read-only containers as plain ones (they are dict and list subclasses)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def check_export_import(h: Harness, state: dict[str, Any], tmp: Path) -> None:
    """`vexil flags export` -> `vexil flags import` into another environment -> export again:
    the same document, and the flags as the admin API carries them."""

    def call(method: Callable[..., Any], request: Any) -> Any:
        return method(request, timeout=30)

    text, count = export_text(call, h.admin, h.env)
    assert count == len(state["flags"])
    path = tmp / f"{h.env}.json"
    path.write_text(text, encoding="utf-8")
    run_import(call, h.admin, h.copy, str(path), dry_run=False, reason="lossless copy")
    copied, _ = export_text(call, h.admin, h.copy)
    assert copied == text, "export -> import -> export changed the document"
    document = json.loads(text)
    same(state["environment"]["evaluators"], document.get("$evaluators", {}), "export $evaluators")
    for key, want in state["flags"].items():
        check_flag_body(
            document["flags"][key], struct_norm(want.now), f"export {key}", struct_norm(want.now["metadata"])
        )


# -- the property --------------------------------------------------------------------------------


def push_through_every_surface(
    loop: LoopThread, dynamo: tuple[str, str] | None, tmp: Path, batch: Any
) -> int:
    with harness(loop, dynamo) as h:
        watch = Stream(h.evaluation.Watch(evaluation_pb2.WatchRequest(environment=h.env), timeout=120))
        events = Stream(
            h.v2.EventStream(evaluation_v2.EventStreamRequest(), metadata=h.selector(), timeout=120)
        )
        try:
            watch.wait_for(lambda items: bool(items), "the initial Watch snapshot")
            events.wait_for(lambda items: bool(items), "provider_ready")
            state, version = write_batch(h, batch)
            check_watch(h, watch, state, version)
            check_event_stream(events, state["flags"])
        finally:
            watch.close()
            events.close()
        check_admin_reads(h, state["flags"])
        check_evaluations(h, state)
        check_flagd(h, state)
        check_sync_document(h, state)
        check_ofrep(h, state)
        check_stored(h, state)
        check_clients(h, state)
        check_export_import(h, state, tmp)
        return len(state["flags"])


def run_property(store: str, loop: LoopThread, dynamo: tuple[str, str] | None, tmp: Path) -> None:
    @settings(
        max_examples=EXAMPLES[store],
        derandomize=True,
        database=None,
        deadline=None,
        # No shrinking: every step would run a batch through a server again.  A failure names
        # the surface, the flag and the JSON path that differ, which is what one needs.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(batches(BATCH[store]))
    def prop(batch: Any) -> None:
        CHECKED[store] += push_through_every_surface(loop, dynamo, tmp, batch)

    prop()


def test_lossless_json_memory_store(loop_thread: LoopThread, tmp_path: Path) -> None:
    run_property("memory", loop_thread, None, tmp_path)
    assert CHECKED["memory"] >= EXAMPLES["memory"] * BATCH["memory"], CHECKED


def test_lossless_json_dynamodb_store(
    loop_thread: LoopThread, dynamo_table: tuple[str, str], tmp_path: Path
) -> None:
    run_property("dynamodb", loop_thread, dynamo_table, tmp_path)
    assert CHECKED["dynamodb"] >= EXAMPLES["dynamodb"] * BATCH["dynamodb"], CHECKED


def test_at_least_two_thousand_flags_per_run() -> None:
    """Each store's test checks that every example ran (CHECKED); together they reach MIN_FLAGS."""
    assert sum(EXAMPLES[store] * BATCH[store] for store in EXAMPLES) >= MIN_FLAGS


# -- what no surface could give back is refused up front -----------------------------------------

BEYOND_A_DOUBLE = 10**400
"""Valid JSON (an integer literal), but no double holds it: protobuf, JavaScript and most JSON
clients read numbers as doubles."""
LONE_SURROGATE = "\ud800"
"""Python's json accepts the escape, but it is not Unicode: neither UTF-8 nor protobuf carry it."""


def nested(levels: int) -> dict[str, Any]:
    """An object `levels` objects deep."""
    value: Any = "deep"
    for _ in range(levels):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("where", "flag_fields"),
    [
        ("flag.variants.a.n", {"variants": {"a": {"n": BEYOND_A_DOUBLE}}}),
        ("flag.variants.a", {"variants": {"a": -BEYOND_A_DOUBLE, "b": 1}}),
        ("flag.metadata.big", {"metadata": {"big": [BEYOND_A_DOUBLE]}}),
        ("flag.variants.a", {"variants": {"a": {LONE_SURROGATE: 1}}}),
        ("flag.metadata.note", {"metadata": {"note": "x" + LONE_SURROGATE}}),
        # Deeper than 32 levels: no protobuf reader could decode the history or Watch messages.
        ("flag.variants.a", {"variants": {"a": nested(33)}}),
        ("flag.metadata.m", {"metadata": {"m": nested(32)}}),
        # No JSON text holds NaN or an infinity, however deep (a number past 1.8e308 reads as one).
        ("flag.variants.a.x[0]", {"variants": {"a": {"x": [math.nan]}}}),
        ("flag.targeting.==[1]", {"targeting": {"==": [1, math.inf]}}),
        ("flag.metadata.m.n", {"metadata": {"m": {"n": -math.inf}}}),
        # The free-text fields are stored and sent back as text too.
        ("flag.description", {"description": "x" + LONE_SURROGATE}),
        ("flag.owner", {"owner": LONE_SURROGATE}),
        ("flag.tags[1]", {"tags": ("ok", LONE_SURROGATE)}),
    ],
)
def test_json_no_client_can_read_is_refused_before_anything_is_stored(
    loop_thread: LoopThread, where: str, flag_fields: dict[str, Any]
) -> None:
    from vexil.errors import InvalidArgument

    with harness(loop_thread, None) as h:
        good = Flag(key="good", environment=h.env, variants={"a": {"tags": []}}, default_variant="a")
        h.loop.run(h.app.service.create_flag(good, actor="lossless"))
        fields: dict[str, Any] = {"variants": {"a": {}}, "default_variant": "a", **flag_fields}
        bad = Flag(key="bad", environment=h.env, **fields)
        with pytest.raises(InvalidArgument) as refused:
            h.loop.run(h.app.service.create_flag(bad, actor="lossless"))
        assert refused.value.field.startswith(where.split(".")[0]), refused.value
        assert where in f"{refused.value.field}: {refused.value.message}", refused.value
        # Nothing stored changed, and every surface still answers for the environment.
        assert h.loop.run(h.app.store.get_flag(h.env, "bad")) is None
        snapshot = next(iter(h.evaluation.Watch(evaluation_pb2.WatchRequest(environment=h.env), timeout=30)))
        assert [f.key for f in snapshot.flags] == ["good"]
        listed = h.admin.ListFlags(admin_pb2.ListFlagsRequest(environment=h.env), timeout=30)
        assert [f.key for f in listed.flags] == ["good"]


def test_environment_json_no_client_can_read_is_refused(loop_thread: LoopThread) -> None:
    from vexil.errors import InvalidArgument

    with harness(loop_thread, None) as h:
        for evaluators, metadata, where in (
            ({"r": {"in": [1, [BEYOND_A_DOUBLE]]}}, None, "evaluators.r.in[1][0]"),
            ({"r": {"in": [1, [math.nan]]}}, None, "evaluators.r.in[1][0]"),
            (None, {"zz": {"n": math.inf}}, "metadata.zz.n"),
            (None, {LONE_SURROGATE: 1}, "metadata"),
        ):
            with pytest.raises(InvalidArgument) as refused:
                h.loop.run(
                    h.app.service.update_environment(
                        h.env,
                        evaluators=evaluators,
                        metadata=metadata,
                        expected_config_version=None,
                        actor="t",
                    )
                )
            assert refused.value.field == where, refused.value
        answer = h.admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(environment=h.env), timeout=30)
        assert from_struct(answer.evaluators) == {} and from_struct(answer.metadata) == {}


def test_a_value_without_a_kind_is_refused_not_stored_as_null(loop_thread: LoopThread) -> None:
    """What an older client sends for [] (a Value with no kind): refusing it keeps the stored
    flag from silently holding null where the author wrote an array."""
    with harness(loop_thread, None) as h:
        msg = flag_pb2.Flag(key="kindless", environment=h.env, default_variant="a")
        msg.variants["a"].struct_value.fields["tags"].Clear()  # the entry exists, its kind does not
        with pytest.raises(grpc.RpcError) as refused:
            h.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=msg), timeout=30)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "flag.variants.a" in refused.value.details() and "no kind" in refused.value.details()
        assert h.loop.run(h.app.store.get_flag(h.env, "kindless")) is None

        request = admin_pb2.UpdateEnvironmentRequest(environment=h.env)
        request.metadata.fields["list"].Clear()
        with pytest.raises(grpc.RpcError) as refused:
            h.admin.UpdateEnvironment(request, timeout=30)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "metadata" in refused.value.details(), refused.value.details()
        answer = h.admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(environment=h.env), timeout=30)
        assert from_struct(answer.metadata) == {}


def test_json_deeper_than_any_reader_decodes_is_refused_through_the_admin_api(
    loop_thread: LoopThread,
) -> None:
    """Metadata 32 objects deep fits in a CreateFlag request, but not in the GetFlagHistory answer
    that carries it (protobuf readers stop at 100 nested messages): refused up front."""
    with harness(loop_thread, None) as h:
        flag = {"key": "deep", "environment": h.env, "variants": {"a": {}}, "defaultVariant": "a"}
        flag["metadata"] = {"m": nested(32)}
        msg = json_format.ParseDict(flag, flag_pb2.Flag())
        with pytest.raises(grpc.RpcError) as refused:
            h.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=msg), timeout=30)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
        assert "flag.metadata" in refused.value.details() and "32" in refused.value.details()
        flag["metadata"] = {"m": nested(31)}  # the deepest that every surface carries
        msg = json_format.ParseDict(flag, flag_pb2.Flag())
        h.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=msg), timeout=30)
        history = h.admin.GetFlagHistory(
            admin_pb2.GetFlagHistoryRequest(environment=h.env, key="deep"), timeout=30
        )
        same({"m": nested(31)}, from_struct(history.revisions[0].flag.metadata), "deep history")
