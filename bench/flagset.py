"""The flags and the evaluation context every scenario uses, built from `bench/engine.py`'s own.

One environment of 100 flags: the three measured ones (a static switch, nested targeting, a
fractional rollout) plus 97 of the engine benchmark's realistic mix, so `EvaluateAll` evaluates
100 flags of mixed kinds and the single-flag figures sit in a realistically sized snapshot.
The footprint scenario uses the same mix, 10,000 flags strong.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

from bench.engine import EVALUATORS, FRACTIONAL, NESTED, TIERS, contexts, mixed_flags
from vexil.model import Environment, Flag

ENVIRONMENT = "local"
SEED = 20261128

STATIC = "static-flag"
TARGETING = "targeting-flag"
FRACTIONAL_KEY = "fractional-flag"
SCENARIO_FLAGS = {"static": STATIC, "targeting": TARGETING, "fractional": FRACTIONAL_KEY}
EVALUATE_ALL_FLAGS = 100


def measured_flags() -> list[Flag]:
    return [
        Flag(STATIC, ENVIRONMENT, {"on": True, "off": False}, "on"),
        Flag(TARGETING, ENVIRONMENT, TIERS, "none", targeting=NESTED),
        Flag(
            FRACTIONAL_KEY,
            ENVIRONMENT,
            {"control": "control", "treatment-a": "a", "treatment-b": "b"},
            "control",
            targeting=FRACTIONAL,
        ),
    ]


def mix(count: int) -> list[Flag]:
    """`count` flags of the engine benchmark's mix, in this environment."""
    rng = random.Random(SEED)
    return [dataclasses.replace(flag, environment=ENVIRONMENT) for flag, _ in mixed_flags(count, rng)]


def evaluate_flags() -> list[Flag]:
    return measured_flags() + mix(EVALUATE_ALL_FLAGS - 3)


def context() -> dict[str, Any]:
    """One realistic caller context (targetingKey, email, country, age, plan, appVersion...)."""
    return contexts(1, random.Random(SEED))[0]


def environment() -> Environment:
    return Environment(name=ENVIRONMENT, evaluators=EVALUATORS, config_version=1)


def stored(flags: list[Flag]) -> list[Flag]:
    """The flags as a store holds them (version 1, timestamps), for writing straight to DynamoDB."""
    now = time.time()
    return [
        dataclasses.replace(f, version=1, created_at=now, updated_at=now, updated_by="bench") for f in flags
    ]


def write_flagd_file(path: Path, flags: list[Flag]) -> Path:
    """The flags as a flagd flag-definition file, for `vexil serve --flags` (memory store)."""
    document = {"$evaluators": EVALUATORS, "flags": {flag.key: flag.definition() for flag in flags}}
    path.write_text(json.dumps(document))
    return path
