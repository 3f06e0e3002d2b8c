"""Empty arrays and objects through the real CLI and the real grpcurl, against a `vexil serve` process.

`vexil flags import` then `vexil flags export` must give back the same JSON, and grpcurl must be
able to print the Evaluate answer of an object flag holding them (it refuses a Value without a
kind: "nil Value").
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.grpcurl import grpcurl_binary
from tests.support.servers import VEXIL, ServerProcess

EMPTIES = {"tags": [], "m": {}, "n": [[], {}]}
DOCUMENT = {
    "flags": {
        # The variants themselves are the empties (every one an object-typed value) ...
        "empty-variants": {"state": "ENABLED", "variants": EMPTIES, "defaultVariant": "n"},
        # ... and one variant holds them all.
        "empty-inside": {
            "state": "ENABLED",
            "variants": {"full": {"x": 1}, "empties": EMPTIES},
            "defaultVariant": "empties",
            "metadata": {"team": "web"},
        },
    },
    "$evaluators": {"nobody": {"in": [{"var": "user"}, []]}},
    "metadata": {"owner": "lossless"},
}


def canonical(document: object) -> str:
    """Text that differs whenever the JSON does ([] vs null, 1 vs 1.0), with keys sorted."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ServerProcess(tmp_path_factory.mktemp("lossless-cli")) as server:
        yield server.target


def vexil(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VEXIL, *args, "--target", target], capture_output=True, text=True, timeout=60)


def grpcurl(target: str, method: str, body: dict[str, object], *headers: str) -> dict[str, object]:
    args = [grpcurl_binary(), "-plaintext"]
    for header in headers:
        args += ["-H", header]
    done = subprocess.run(
        [*args, "-d", json.dumps(body), target, method], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip(), f"grpcurl {method}: {done.stderr or done.stdout}"
    try:
        answer: dict[str, object] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"grpcurl {method} printed no JSON: {done.stdout!r} {done.stderr!r}") from None
    return answer


def test_import_then_export_gives_the_same_json(target: str, tmp_path: Path) -> None:
    path = tmp_path / "empties.json"
    path.write_text(json.dumps(DOCUMENT), encoding="utf-8")
    imported = vexil(target, "flags", "import", str(path), "--reason", "empties")
    assert imported.returncode == 0, imported.stderr

    exported = vexil(target, "flags", "export")
    assert exported.returncode == 0, exported.stderr
    assert canonical(json.loads(exported.stdout)) == canonical(DOCUMENT)

    # Importing the export changes nothing: every flag is reported unchanged.
    path.write_text(exported.stdout, encoding="utf-8")
    again = vexil(target, "flags", "import", str(path), "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert sorted(summary["unchanged"]) == sorted(DOCUMENT["flags"]), summary
    assert summary["environment_updated"] is False, summary


def test_grpcurl_prints_the_object_answers(target: str) -> None:
    # Written by grpcurl itself, so only the server's encoding of its answers is under test.
    for key, body in DOCUMENT["flags"].items():
        flag = {
            "key": f"grpcurl-{key}",
            "variants": body["variants"],
            "default_variant": body["defaultVariant"],
        }
        grpcurl(target, "vexil.v1.AdminService/CreateFlag", {"flag": flag})

    evaluate = "vexil.v1.EvaluationService/Evaluate"
    answer = grpcurl(target, evaluate, {"flag_key": "grpcurl-empty-inside"})
    assert canonical(answer["object_value"]) == canonical(EMPTIES), answer
    answer = grpcurl(target, evaluate, {"flag_key": "grpcurl-empty-variants"})
    assert canonical(answer["object_value"]) == canonical([[], {}]), answer

    resolved = grpcurl(
        target,
        "flagd.evaluation.v2.Service/ResolveObject",
        {"flag_key": "grpcurl-empty-inside"},
        "flagd-selector: local",
    )
    assert canonical(resolved["value"]) == canonical(EMPTIES), resolved

    got = grpcurl(target, "vexil.v1.AdminService/GetFlag", {"key": "grpcurl-empty-variants"})
    assert canonical(got["variants"]) == canonical(EMPTIES), got


def test_import_refuses_a_number_beyond_a_double_and_writes_nothing(target: str, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    # Valid JSON, but no double (so no protobuf message and no JavaScript client) holds it.
    path.write_text(
        '{"flags": {"too-big": {"variants": {"a": {"n": 1' + "0" * 400 + '}}, "defaultVariant": "a"}}}'
    )
    refused = vexil(target, "flags", "import", str(path))
    assert refused.returncode == 2, (refused.returncode, refused.stderr)
    assert "flags.too-big.variants.a.n" in refused.stderr and "double" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert vexil(target, "flags", "get", "too-big").returncode == 3
