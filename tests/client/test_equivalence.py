"""Remote and local mode give identical answers: 1,000 generated flag/context pairs.

Flags are generated (seeded, so a failure reproduces) with targeting built from `if`, `==`,
`in`, `fractional`, `sem_ver`, `starts_with`, `ends_with`, comparisons, `and`/`or`, `$ref` and
rules that pick a variant by name from the context; contexts mix the attribute types that a
Struct round trip changes (integral floats, big ints, tuples).  Each pair is asked with a random
getter type, so type mismatches and coercions are compared too.
"""

from __future__ import annotations

import random
from typing import Any

from tests.support.client import FAST, Admin, LoopThread, Replica, wait_until
from tests.support.flags import flag_pb
from vexil.client import Client, EvaluationDetails
from vexil.engine import ValueType
from vexil.store.memory import MemoryStore

FLAGS = 100
CONTEXTS_PER_FLAG = 10
SEED = 20240611

EVALUATORS = {
    "is_jp": {"==": [{"var": "country"}, "JP"]},
    "is_staff": {"ends_with": [{"var": "email"}, "@vexil.dev"]},
    "age_is_30": {"==": [{"cat": [{"var": "age"}]}, "30"]},
}
COUNTRIES = ["JP", "US", "FR", "CA", "BR"]
PLANS = ["free", "pro", "team", "enterprise"]
VERSIONS = ["1.0.0", "1.2.3", "2.0.0-beta.1", "2.0.0", "0.9.12", "v1.4.0", "not-a-version"]


def variants_of(rng: random.Random, kind: str) -> dict[str, Any]:
    names = ["a", "b", "c"][: rng.randint(2, 3)]
    if kind == "bool":
        return {"on": True, "off": False}
    if kind == "string":
        return {n: f"value-{n}-{rng.randint(0, 99)}" for n in names}
    if kind == "int":
        return {n: rng.randint(-1000, 1000) for n in names}
    if kind == "float":
        return {n: rng.choice([0.5, 1.25, 2.0, -3.75, 10.0]) + i for i, n in enumerate(names)}
    return {n: {"limit": rng.randint(1, 9), "tags": [n, "x"], "ratio": 0.5} for n in names}


def condition(rng: random.Random) -> dict[str, Any]:
    return rng.choice(
        [
            {"==": [{"var": "country"}, rng.choice(COUNTRIES)]},
            {"in": [{"var": "country"}, rng.sample(COUNTRIES, 2)]},
            {"in": ["@example", {"var": "email"}]},
            {"sem_ver": [{"var": "version"}, rng.choice([">=", "<", "=", "^", "~"]), "1.2.0"]},
            {"starts_with": [{"var": "email"}, rng.choice(["admin", "dev", "a"])]},
            {"ends_with": [{"var": "email"}, "@vexil.dev"]},
            {">": [{"var": "age"}, rng.choice([18, 30, 30.5])]},
            {"<=": [{"var": "score"}, 50]},
            {"==": [{"var": "user.tier"}, "gold"]},
            {"$ref": rng.choice(list(EVALUATORS))},
            {"and": [{"==": [{"var": "plan"}, "pro"]}, {"!=": [{"var": "country"}, "US"]}]},
            {"or": [{"$ref": "is_jp"}, {"in": [{"var": "plan"}, ["team", "enterprise"]]}]},
            # These see the number types a Struct round trip changes (30.0 arrives as 30).
            {"==": [{"cat": [{"var": "age"}]}, "30"]},
            {"in": [{"cat": ["", {"var": "score"}]}, ["50", "10", "99.9"]]},
            {"$ref": "age_is_30"},  # reached through $evaluators
            {"==": [{"cat": [{"var": {"cat": ["ag", "e"]}}]}, "30"]},  # a computed path: any attribute
        ]
    )


def targeting(rng: random.Random, names: list[str]) -> dict[str, Any] | None:
    shape = rng.randrange(7)
    if shape == 0:
        return None  # static
    if shape == 1:
        weights = [[n, rng.randint(0, 50)] for n in names]
        weights[0][1] += 1
        bucket = rng.choice([None, {"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, {"var": "age"}])
        return {"fractional": weights if bucket is None else [bucket, *weights]}
    if shape == 2:
        return {"if": [condition(rng), rng.choice(names), rng.choice([*names, None])]}
    if shape == 3:
        inner = {"if": [condition(rng), rng.choice(names), None]}
        return {"if": [condition(rng), rng.choice(names), inner]}
    if shape == 4:
        return {
            "if": [
                {"and": [condition(rng), condition(rng)]},
                names[0],
                {"fractional": [[n, 1] for n in names]},
            ]
        }
    if shape == 5:
        return {"var": "tier"}  # a variant named by the context (possibly none of them)
    return {"if": [condition(rng), {"cat": ["", rng.choice(names)]}, None]}


def context(rng: random.Random) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if rng.random() < 0.9:
        ctx["targetingKey"] = f"user-{rng.randint(0, 10_000)}"
    pool = {
        "country": lambda: rng.choice(COUNTRIES),
        "email": lambda: (
            rng.choice(["admin", "dev", "ann", "bob"]) + rng.choice(["@example.com", "@vexil.dev"])
        ),
        "version": lambda: rng.choice(VERSIONS),
        "age": lambda: rng.choice([17, 30, 30.0, 30.0, 30.5, 45, "31", 2**60 + 1]),
        "score": lambda: rng.choice([10, 50.0, 99.9, None]),
        "plan": lambda: rng.choice(PLANS),
        "tier": lambda: rng.choice(["a", "b", "c", "gold", "on", "off", True]),
        "user": lambda: {"tier": rng.choice(["gold", "silver"]), "ids": (1, 2.0)},
    }
    for name, make in pool.items():
        if rng.random() < 0.75:
            ctx[name] = make()
    return ctx


def same(remote: EvaluationDetails[Any], local: EvaluationDetails[Any]) -> bool:
    return remote == local and type(remote.value) is type(local.value)


def test_remote_and_local_agree_on_a_thousand_generated_pairs(loop_thread: LoopThread) -> None:
    rng = random.Random(SEED)
    server = Replica(loop_thread, MemoryStore(), cache_maxsize=1000).start()
    admin = Admin(server.target)
    try:
        version = admin.evaluators(EVALUATORS)
        kinds = ["bool", "string", "int", "float", "object"]
        keys = []
        for i in range(FLAGS):
            kind = kinds[i % len(kinds)]
            variants = variants_of(rng, kind)
            names = list(variants)
            default = rng.choice([*names, None]) if rng.random() < 0.9 else None
            rule = targeting(rng, names)
            key = f"gen-{i}-{kind}"
            metadata = {"kind": kind, "n": i} if rng.random() < 0.5 else None
            version = admin.create(
                flag_pb(
                    key,
                    variants,
                    default,
                    rule,
                    state="DISABLED" if rng.random() < 0.05 else None,
                    metadata=metadata,
                )
            )
            keys.append(key)
        admin.kill_environment(False)  # an ENVIRONMENT event the local client must apply as well
        version += 1

        with (
            Client(target=server.target, mode="remote", **FAST) as remote,
            Client(target=server.target, mode="local", **FAST) as local,
        ):
            assert local.wait_for_ready(10)
            assert wait_until(lambda: local.status().config_version == version, 10)
            getters = [
                ("bool_details", False),
                ("string_details", "default"),
                ("int_details", -1),
                ("float_details", -1.5),
                ("object_details", {"default": True}),
            ]
            pairs = mismatches = 0
            outcomes: set[str] = set()
            for key in keys:
                for _ in range(CONTEXTS_PER_FLAG):
                    ctx = context(rng)
                    getter, default = rng.choice(getters)
                    r = getattr(remote, getter)(key, default, ctx)
                    lo = getattr(local, getter)(key, default, ctx)
                    pairs += 1
                    outcomes.add(f"{r.reason}/{r.error_code}")
                    if not same(r, lo):
                        mismatches += 1
                        print(f"MISMATCH {key} {getter} {ctx}\n  remote {r}\n  local  {lo}")
            assert pairs == FLAGS * CONTEXTS_PER_FLAG == 1000
            assert mismatches == 0
            # The generator reaches every kind of answer, so the comparison means something.
            for expected in ("STATIC/None", "TARGETING_MATCH/None", "DEFAULT/None", "DISABLED/None"):
                assert expected in outcomes, outcomes
            for code in ("TYPE_MISMATCH", "GENERAL"):
                assert f"ERROR/{code}" in outcomes, outcomes

            for _ in range(5):
                ctx = context(rng)
                remote_all, local_all = remote.all_details(ctx), local.all_details(ctx)
                assert remote_all.keys() == local_all.keys() == set(keys)
                assert all(same(remote_all[k], local_all[k]) for k in keys)
                assert remote.all_values(ctx) == local.all_values(ctx)
    finally:
        admin.close()
        server.stop()


def test_value_types_map_one_to_one() -> None:
    from vexil.client.remote import VALUE_TYPES

    assert set(VALUE_TYPES) == set(ValueType)


def test_only_the_attributes_a_rule_reads_are_checked_and_those_exactly(loop_thread: LoopThread) -> None:
    """Local mode converts only the context attributes a rule can read (`vexil.client.reads`);
    rules reaching attributes in every way the engine allows must still agree with the server.
    Each rule here answers differently for a context the Struct round trip changes: 2**60 + 1
    arrives as 2**60 (a double), and a float bucketing value hashes differently from an int."""
    big = 2**60
    server = Replica(loop_thread, MemoryStore()).start()
    admin = Admin(server.target)
    is_big = {"==": [{"var": "n"}, big]}
    rules = {
        "direct": {"if": [is_big, "y", "n"]},
        "ref": {"if": [{"$ref": "n_is_big"}, "y", "n"]},
        "nested-ref": {"if": [{"$ref": "via_ref"}, "y", "n"]},
        "dotted-path": {"if": [{"==": [{"var": "user.n"}, big]}, "y", "n"]},
        "var-default": {"if": [{"==": [{"var": ["nothing", {"var": "n"}]}, big]}, "y", "n"]},
        "computed-path": {"if": [{"==": [{"var": {"cat": ["", "n"]}}, big]}, "y", "n"]},
        "in-array-op": {"if": [{"some": [{"var": "ns"}, {"==": [{"var": ""}, big]}]}, "y", "n"]},
        "fractional-by-age": {"fractional": [{"var": "age"}, ["y", 1], ["n", 1]]},
        "fractional-by-ref": {"fractional": [{"$ref": "bucket"}, ["y", 1], ["n", 1]]},
        "missing": {"if": [{"missing": ["n"]}, "y", "n"]},
    }
    try:
        admin.evaluators(
            {"n_is_big": is_big, "via_ref": {"and": [{"$ref": "n_is_big"}, True]}, "bucket": {"var": "age"}}
        )
        for key, rule in rules.items():
            version = admin.create(flag_pb(key, {"y": "yes", "n": "no"}, "n", rule))
        contexts = [
            {"n": big + 1, "ns": [big + 1], "user": {"n": big + 1}, "age": 30.0, "targetingKey": "t"},
            {"n": big, "ns": (1, big), "user": {"n": big}, "age": 30},
            {"n": 7, "ns": [], "user": {}, "age": 31.0},
            {},
        ]
        with (
            Client(target=server.target, mode="remote", **FAST) as remote,
            Client(target=server.target, mode="local", **FAST) as local,
        ):
            assert wait_until(lambda: local.status().config_version == version, 10)
            for key in rules:
                for ctx in contexts:
                    r, lo = remote.string_details(key, "?", ctx), local.string_details(key, "?", ctx)
                    assert same(r, lo), (key, ctx, r, lo)
                    assert local.string_value(key, "?", ctx) == r.value, (key, ctx)
            assert remote.string_value("direct", "?", contexts[0]) == "yes"  # 2**60 + 1 arrives as 2**60
    finally:
        admin.close()
        server.stop()


def test_context_reads_analysis() -> None:
    from vexil.client.reads import NOTHING, context_reads
    from vexil.engine import compile_flag
    from vexil.model import Flag

    evaluators = {"staff": {"ends_with": [{"var": "email"}, "@x"]}, "twice": {"and": [{"$ref": "staff"}] * 2}}

    def reads(targeting: object) -> object:
        entry = compile_flag(Flag("f", "e", {"a": 1, "b": 2}, "a", targeting=targeting), evaluators)
        return context_reads(entry, evaluators)

    assert reads(None) == NOTHING
    assert reads({"if": [True, "a", "b"]}) == NOTHING  # a constant rule
    assert reads({"if": [{"==": [{"var": "user.country"}, "JP"]}, "a", None]}) == {"user"}
    assert reads({"if": [{"$ref": "staff"}, "a", {"var": ["tier", {"var": "plan"}]}]}) == {
        "email",
        "tier",
        "plan",
    }
    assert reads({"fractional": [["a", 1], ["b", 1]]}) == {"targetingKey"}
    assert reads({"if": [{"missing_some": [1, ["x", "y.z"]]}, "a", "b"]}) == {"x", "y"}
    assert reads({"if": [{"==": [{"var": "$flagd.flagKey"}, "f"]}, "a", "b"]}) == NOTHING
    assert reads({"if": [{"$ref": "twice"}, "a", "b"]}) == {"email"}
    assert reads({"var": {"cat": ["ti", "er"]}}) is None  # a computed path: anything
    assert reads({"if": [{"<": [{"var": "$flagd.timestamp"}, 0]}, "a", "b"]}) is None
