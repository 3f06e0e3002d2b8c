"""Regenerate the Python protobuf/gRPC code from the .proto files (`make proto`).

Generated modules land beside the server code (`server/vexil/v1/...`) so that their own
imports (`from vexil.v1 import flag_pb2`) resolve inside the one `vexil` namespace.
`--check` regenerates into a scratch folder and fails when the checked-in files differ,
which is how the test suite keeps hand edits out of generated code.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "server"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


# flagd's protos keep the file names the OpenFeature flagd provider registers
# (`openfeature/schemas/protobuf/flagd/...`): protobuf's descriptor pool accepts the same file
# twice only under the same name with the same content, and tests load both in one process.
# Their Python modules still live in vexil's namespace, and their `_pb2_grpc.py` would import
# the provider's module path, so none is generated (`vexil.transport.flagd_protos` registers them).
RELOCATE = {"openfeature/schemas/protobuf/": "vexil/"}


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.rglob("*.proto"))


def _relocated(rel: Path) -> tuple[Path, bool]:
    """Where a generated file goes (relative to OUT_DIR), and whether gRPC stubs are wanted."""
    text = rel.as_posix()
    for prefix, target in RELOCATE.items():
        if text.startswith(prefix):
            return Path(target + text[len(prefix) :]), False
    return rel, True


def generated_names(proto: Path) -> list[tuple[Path, Path]]:
    """(protoc's output path, checked-in path) for each file generated from `proto`."""
    rel = proto.relative_to(PROTO_DIR).with_suffix("")
    target, with_grpc = _relocated(rel)
    suffixes = SUFFIXES if with_grpc else SUFFIXES[:2]
    return [
        (rel.parent / f"{rel.name}{suffix}", target.parent / f"{target.name}{suffix}") for suffix in suffixes
    ]


def _protoc(out_dir: Path) -> None:
    include = str(resources.files("grpc_tools") / "_proto")
    for proto in proto_files():
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(proto.relative_to(PROTO_DIR)),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto.relative_to(ROOT)}")


def generate(out_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        _protoc(Path(scratch))
        for proto in proto_files():
            for produced, target in generated_names(proto):
                destination = out_dir / target
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(scratch) / produced, destination)


def stale_files() -> list[str]:
    """Generated files (relative to OUT_DIR) whose content differs from a fresh generation."""
    with tempfile.TemporaryDirectory() as scratch:
        _protoc(Path(scratch))
        stale = []
        for proto in proto_files():
            for produced, target in generated_names(proto):
                current = OUT_DIR / target
                if not current.exists() or not filecmp.cmp(Path(scratch) / produced, current, shallow=False):
                    stale.append(str(target))
        return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if checked-in code is stale")
    args = parser.parse_args()
    if args.check:
        stale = stale_files()
        if stale:
            print(f"stale generated code under {OUT_DIR} (run `make proto`):", *stale, sep="\n  ")
            return 1
        print("generated code is up to date")
        return 0
    generate(OUT_DIR)
    print(f"generated code for {len(proto_files())} proto files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
