"""vexil's flagd protos are flagd's, byte for byte, so they share one process with the flagd provider.

protobuf keeps one registry of message types per process, keyed by file name; a second file
defining `flagd.*` messages under another name, or with other content, cannot be loaded next to
the provider's ("duplicate symbol").  vexil's files carry the provider's names and must produce
identical descriptors: then either can be imported first and they share their message classes.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["evaluation.v1.evaluation_pb2", "evaluation.v2.evaluation_pb2", "sync.v1.sync_pb2"]


def serialized(module: object) -> bytes:
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)  # type: ignore[attr-defined]
    return proto.SerializeToString()


@pytest.mark.parametrize("name", MODULES)
def test_descriptors_are_the_providers(name: str) -> None:
    ours = importlib.import_module(f"vexil.flagd.{name}")
    theirs = importlib.import_module(f"openfeature.schemas.protobuf.flagd.{name}")
    assert serialized(ours) == serialized(theirs)
    assert ours.DESCRIPTOR is theirs.DESCRIPTOR


@pytest.mark.parametrize(
    "first, second",
    [
        ("vexil.app", "openfeature.contrib.provider.flagd"),
        ("openfeature.contrib.provider.flagd", "vexil.app"),
    ],
)
def test_both_load_in_one_process_in_either_order(first: str, second: str) -> None:
    code = (
        f"import {first}, {second}\n"
        "from vexil.flagd.evaluation.v2 import evaluation_pb2 as ours\n"
        "from openfeature.schemas.protobuf.flagd.evaluation.v2 import evaluation_pb2 as theirs\n"
        "assert ours.ResolveBooleanRequest is theirs.ResolveBooleanRequest\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


def test_make_proto_writes_into_the_vexil_namespace() -> None:
    """`make proto` relocates flagd's generated modules under `vexil.flagd`, without gRPC stubs
    (theirs would import the provider's module path)."""
    sys.path.insert(0, str(ROOT / "proto"))
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "proto"))
    proto = ROOT / "proto" / "openfeature" / "schemas" / "protobuf" / "flagd" / "sync" / "v1" / "sync.proto"
    targets = [str(target) for _, target in generate.generated_names(proto)]
    assert targets == ["vexil/flagd/sync/v1/sync_pb2.py", "vexil/flagd/sync/v1/sync_pb2.pyi"]
    assert not (ROOT / "server" / "openfeature").exists()
