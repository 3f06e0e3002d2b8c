"""The flags and the evaluation context every scenario uses, built from `bench/engine.py`'s own.

One environment of 100 flags: the four measured ones (a static switch, nested targeting, a
fractional rollout, a rule reading one attribute) plus 96 of the engine benchmark's realistic
mix, so `EvaluateAll` evaluates 100 flags of mixed kinds and the single-flag figures sit in a
realistically sized snapshot; `large_flags` adds static fillers up to 50,000.
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
ATTRIBUTE = "attribute-flag"
SCENARIO_FLAGS = {"static": STATIC, "targeting": TARGETING, "fractional": FRACTIONAL_KEY}
EVALUATE_ALL_FLAGS = 100
LARGE_FLAGS = 50_000
WIDE_ATTRIBUTES = 2000
"""Attributes of the wide context (about 50 KB encoded) sent to the flag whose rule reads one."""


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
        Flag(
            ATTRIBUTE,
            ENVIRONMENT,
            {"on": True, "off": False},
            "off",
            targeting={"if": [{"==": [{"var": "country"}, "DE"]}, "on", "off"]},
        ),
    ]


def mix(count: int) -> list[Flag]:
    """`count` flags of the engine benchmark's mix, in this environment."""
    rng = random.Random(SEED)
    return [dataclasses.replace(flag, environment=ENVIRONMENT) for flag, _ in mixed_flags(count, rng)]


def evaluate_flags(count: int = EVALUATE_ALL_FLAGS) -> list[Flag]:
    """The measured flags and the mix, `count` flags in all."""
    measured = measured_flags()
    return measured + mix(count - len(measured))


def context() -> dict[str, Any]:
    """One realistic caller context (targetingKey, email, country, age, plan, appVersion...)."""
    return contexts(1, random.Random(SEED))[0]


def large_flags(count: int = LARGE_FLAGS) -> list[Flag]:
    """The 100 flags and static fillers, `count` in all: an environment as big as the scale
    comparison needs, compiled in seconds (the mix's rules would take a minute at this size)."""
    flags = evaluate_flags()
    fillers = count - len(flags)
    return flags + [
        Flag(f"filler-{i:05d}", ENVIRONMENT, {"on": True, "off": False}, "on" if i % 2 else "off")
        for i in range(fillers)
    ]


def attribute_contexts() -> dict[str, dict[str, Any]]:
    """For the attribute flag: a single attribute, and the same among `WIDE_ATTRIBUTES` (the rule
    reads one either way, so what the caller sends is all that differs)."""
    wide = {f"attr{i:04d}": f"v{i:010d}" for i in range(WIDE_ATTRIBUTES - 1)}
    return {"narrow": {"country": "DE"}, "wide": {**wide, "country": "DE"}}


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
