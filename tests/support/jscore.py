"""The JavaScript flagd core (`@openfeature/flagd-core`, pinned in tests/js) as a reference.

flagd itself buckets `fractional` by hashing the bucketing string, and so does its JavaScript
core; the Python core hashes CBOR instead.  The tests compare vexil's default (string) hashing
with the JavaScript core, run under Node by `tests/js/evaluate.js`, and check the coercions where
vexil follows flagd rather than the Python core against the JavaScript core's own rule values
(`rule_values`).

`install()` runs `npm ci` into tests/js/node_modules (`tests.support.npm`).
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.npm import npm_ci, tool

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "evaluate.js"


def install() -> None:
    """Install the pinned packages unless the installed ones match the lock file."""
    npm_ci(JS_DIR)


Evaluation = tuple[str, Mapping[str, Any]]
"""(flag key, context)."""


def _run(payload: Mapping[str, Any]) -> Any:
    done = subprocess.run(
        [tool("node"), str(SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the JavaScript core failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _plain(typed: Mapping[str, Any]) -> Any:
    ((kind, value),) = typed.items()
    if kind == "number":
        number = float(value)  # "NaN", "Infinity", "-0" included
        return int(number) if number.is_integer() and not math.isinf(number) else number
    if kind == "array":
        return [_plain(item) for item in value]
    if kind == "object":
        return {k: _plain(v) for k, v in value.items()}
    if kind in ("null", "undefined"):
        return None
    return value


def rule_values(
    cases: Sequence[tuple[Any, Mapping[str, Any]]], key: str = "my-flag"
) -> list[tuple[Any, ...]]:
    """For each (rule, context): the value the JavaScript core's targeting computes, as
    `("value", v)` (numbers integral where they are, as JSON would give them) or
    `("error", message)` (the core's JSONLogic engine throws where the result is NaN)."""
    out = _run({"rules": [{"rule": rule, "context": ctx, "key": key} for rule, ctx in cases]})
    return [("value", _plain(r["value"])) if "value" in r else ("error", r["error"]) for r in out]


def resolve(cases: Sequence[tuple[Mapping[str, Any], Sequence[Evaluation]]]) -> list[list[dict[str, Any]]]:
    """For each (flag-set document, evaluations): the JavaScript core's string resolutions,
    `{"value", "variant", "reason", "errorCode"}` each (value null for the caller's default)."""
    payload = {
        "cases": [
            {"flags": flags, "evaluations": [{"key": key, "context": ctx} for key, ctx in evaluations]}
            for flags, evaluations in cases
        ]
    }
    result: list[list[dict[str, Any]]] = _run(payload)
    return result
