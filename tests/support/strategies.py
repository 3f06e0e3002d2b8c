"""Hypothesis strategies: flag definitions, `$evaluators` and contexts across the whole language.

They aim at the places where two evaluators can disagree: every operator (with its usual arity
and with wrong ones), nesting, type coercion between strings/numbers/booleans/null/arrays/
objects, missing attributes, dotted paths, unicode, large and negative numbers, version strings,
fractional weights (valid, zero, negative, non-integer), unknown operators and `$ref`s.  Values
are drawn from small pools often enough that comparisons actually match and rules reach every
branch.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ATTRIBUTES = [
    "email", "country", "age", "version", "tags", "user", "plan", "score",
    "beta", "name", "items", "ratio", "targetingKey",
]  # fmt: skip

PATHS = [
    *ATTRIBUTES,
    "user.country", "user.age", "user.tags.0", "tags.0", "tags.1", "tags.length", "name.length",
    "items.0.id", "items.1", "user.missing.deep", "a..b", "missing", "$flagd.flagKey",
    "$flagd.flagKey.length", "$flagd.timestamp", "$flagd", "$flagd.other", "",
]  # fmt: skip

STRINGS = [
    "US", "FR", "", "a@example.com", "bob@corp.io", "example.com", "1.2.3", "v1.2.3", "V2", "1.2",
    "2", "1.0.0-rc.1", "1.0.0-alpha.beta", "1.0.0-alpha.1", "1.0.0+build.5", "1.2.3.4", "01.2.3",
    "on", "off", "red", "blue", "true", "false", "0", "1", "-1", "1.5", "1e3", " 12 ", "inf",
    "nan", "Infinity", "1_000", "ünïcødé", "日本語", "😀", "null", "None", "True", "length",
    "user-1", "user-2", "[object Object]", "a,b",
]  # fmt: skip

VARIANT_NAMES = [
    "on", "off", "true", "false", "red", "blue", "green", "1", "2", "0", "1.5", "-1", "True",
    "null", "None", "US", "FR", "a", "b", "[1, 2]", "😀",
]  # fmt: skip

VERSIONS = [
    "1.2.3", "v1.2.3", "1.2", "1", "2.0.0", "1.2.3-rc.1", "1.2.3-rc.2", "1.2.3-alpha", "1.2.3-1",
    "1.2.3-beta.11", "1.2.3-beta.2", "1.2.3+build", "1.2-rc.1", "0.0.0", "10.20.30", "1.2.3.4",
    "x.y.z", "", "v", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01",
]  # fmt: skip

SEMVER_OPS = ["=", "!=", "<", "<=", ">", ">=", "^", "~", "==", "", "~>"]

OPERATORS = [
    "==", "!=", "===", "!==", "<", "<=", ">", ">=", "!", "!!", "and", "or", "if", "?:",
    "+", "-", "*", "/", "%", "min", "max", "in", "cat", "substr", "merge", "missing",
    "missing_some", "var", "log", "map", "filter", "reduce", "all", "some", "none",
    "fractional", "sem_ver", "starts_with", "ends_with",
]  # fmt: skip

UNKNOWN_OPERATORS = ["foo", "var.x", "in.y", "x.var", "$ref", "regex_match"]

EVALUATOR_NAMES = ["isUS", "adult", "rollout", "beta_users"]

# -- values -------------------------------------------------------------------------------------

EDGE_VALUES = [
    None, True, False, 0, 1, -1, 2, 18, 0.0, -0.0, 1.0, 1.5, -2.5, 18.0, 2**31, 2**53 + 1, 2**63, 2**64,
    -(2**64) - 1, 10**20, 1e16, 1e300, -1e-300, "", "0", "1", "-1", "1.5", "18", " 12 ", "abc", "inf",
    "-inf", "nan", "Infinity", "1_000", "1e3", "0x10", "true", "false", "null", "True", "None", "US",
    "ünï", "😀", "日本", "a,b", "[object Object]", "1.2.3", "length", [], [1], [1, 2], ["a"], [True],
    [None], ["1"], [[1]], [1.5], {}, {"a": 1}, {"0": "x"},
]  # fmt: skip
"""Values where JSONLogic's coercions are subtle: drawn often, so every pair meets."""

edge_values = st.sampled_from(EDGE_VALUES)

numbers = st.one_of(
    st.integers(-3, 25),
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, -0.5, 1.0, 2.0, 18.0, 1e16, 1e300, -0.0, 2**53 + 1.0, 3.14159]),
)

scalars = st.one_of(
    edge_values,
    edge_values,
    st.none(),
    st.booleans(),
    numbers,
    st.sampled_from(STRINGS),
    st.sampled_from(VERSIONS),
    st.text(max_size=6),
)

json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["id", "country", "age", "tags", "0", "x"]), children, max_size=3),
    ),
    max_leaves=6,
)

targeting_keys = st.one_of(
    st.sampled_from(["user-1", "user-2", "user-3", "alice@example.com", "", "😀", "日本"]),
    st.text(min_size=1, max_size=12),
    st.integers(-5, 5),
    st.none(),
)

contexts = st.fixed_dictionaries(
    {},
    optional={
        "targetingKey": targeting_keys,
        "email": st.one_of(st.sampled_from(STRINGS), json_values),
        "country": st.one_of(st.sampled_from(["US", "FR", "", "us"]), json_values),
        "age": st.one_of(st.integers(0, 99), numbers, st.sampled_from(["18", "abc", None, True])),
        "version": st.one_of(st.sampled_from(VERSIONS), json_values),
        "tags": st.one_of(
            st.lists(st.sampled_from(["a", "b", "beta", 1, 2.0, True]), max_size=4), json_values
        ),
        "user": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "country": st.sampled_from(["US", "FR"]),
                    "age": st.integers(0, 99),
                    "tags": st.lists(st.sampled_from(["a", "b"]), max_size=3),
                },
            ),
            json_values,
        ),
        "plan": st.one_of(st.sampled_from(VARIANT_NAMES), json_values),
        "score": numbers,
        "beta": st.one_of(st.booleans(), json_values),
        "name": st.one_of(st.text(max_size=8), json_values),
        "items": st.lists(
            st.one_of(st.fixed_dictionaries({"id": st.integers(0, 5)}), json_values), max_size=4
        ),
        "ratio": numbers,
        "$flagd": json_values,
    },
)

light_contexts = st.dictionaries(
    st.sampled_from(["email", "age", "tags", "version", "user", "targetingKey", "a", "b"]),
    st.one_of(edge_values, edge_values, scalars),
    max_size=4,
)
"""Cheaper to generate than `contexts`, for tests whose interest is in the rule."""

# -- rules -------------------------------------------------------------------------------------

var_keys = st.one_of(
    st.sampled_from(PATHS),
    st.sampled_from([0, 1, 1.5, -1, True, None]),
    st.sampled_from([["email"], ["user", "country"]]),
)


@st.composite
def var_nodes(draw: st.DrawFn, children: st.SearchStrategy[Any] | None = None) -> Any:
    key = draw(var_keys)
    shape = draw(st.integers(0, 4))
    if shape == 0:
        return {"var": key}
    if shape == 1:
        return {"var": [key]}
    if shape == 2:
        return {"var": [key, draw(scalars if children is None else children)]}
    if shape == 3:
        return {"var": []}
    return {"var": [key, draw(scalars), draw(scalars)]}  # one argument too many


literals = st.one_of(scalars, st.sampled_from(VARIANT_NAMES), st.lists(scalars, max_size=3))


def leaves(variant_names: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        literals,
        st.sampled_from(variant_names),
        var_nodes(),
        st.just({"var": "$flagd.timestamp"}),
        st.just({}),
        st.just({"a": 1, "b": 2}),
    )


def _bucket(variant_names: list[str]) -> st.SearchStrategy[Any]:
    weight = st.one_of(
        st.integers(0, 100),
        st.integers(-5, 5),
        st.sampled_from([2**31 - 1, 2**31, 10**12]),
        st.sampled_from([50.0, 1.5, "50", None, True]),
    )
    variant = st.one_of(st.sampled_from(variant_names), st.sampled_from([None, True, False, 1, "missing"]))
    return st.one_of(
        st.tuples(variant, weight).map(list),
        st.tuples(variant).map(list),
        st.sampled_from([[], ["a", 1, 2], "a"]),
    )


@st.composite
def fractional_nodes(draw: st.DrawFn, children: st.SearchStrategy[Any], variant_names: list[str]) -> Any:
    buckets = draw(st.lists(_bucket(variant_names), min_size=0, max_size=4))
    if draw(st.booleans()):
        return {"fractional": buckets}  # shorthand: [flagKey, targetingKey]
    bucket_by = draw(
        st.one_of(
            var_nodes(),
            st.just({"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}),
            st.just({"var": "targetingKey"}),
            children,
            scalars,
        )
    )
    return {"fractional": [bucket_by, *buckets]}


@st.composite
def sem_ver_nodes(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> Any:
    left = draw(st.one_of(st.just({"var": "version"}), st.sampled_from(VERSIONS), children, numbers))
    op = draw(st.sampled_from(SEMVER_OPS))
    right = draw(st.one_of(st.sampled_from(VERSIONS), st.just({"var": "version"}), numbers))
    if draw(st.integers(0, 9)) == 0:
        return {"sem_ver": [left, op]}
    return {"sem_ver": [left, op, right]}


@st.composite
def if_chains(draw: st.DrawFn, children: st.SearchStrategy[Any], variant_names: list[str]) -> Any:
    args = []
    for _ in range(draw(st.integers(1, 3))):
        args.append(draw(children))
        args.append(draw(st.one_of(st.sampled_from(variant_names), children)))
    if draw(st.booleans()):
        args.append(draw(st.one_of(st.sampled_from(variant_names), st.none(), children)))
    return {draw(st.sampled_from(["if", "if", "?:"])): args}


@st.composite
def operations(draw: st.DrawFn, children: st.SearchStrategy[Any], variant_names: list[str]) -> Any:
    kind = draw(st.integers(0, 15))
    if kind <= 5:  # an operator with its usual arity (all of them equally often)
        op = draw(st.sampled_from(OPERATORS))
        count = draw(st.sampled_from(_USUAL_ARITY.get(op, (2,))))
        return {op: [draw(children) for _ in range(count)]}
    if kind == 6:  # any arity, possibly a lone non-array argument
        op = draw(st.sampled_from(OPERATORS))
        if draw(st.booleans()):
            return {op: draw(children)}
        return {op: draw(st.lists(children, max_size=4))}
    if kind == 7:
        return draw(if_chains(children, variant_names))
    if kind == 8:
        return draw(fractional_nodes(children, variant_names))
    if kind == 9:
        return draw(sem_ver_nodes(children))
    if kind == 10:  # string comparisons on a realistic attribute
        op = draw(st.sampled_from(["starts_with", "ends_with", "in"]))
        return {
            op: [draw(st.one_of(var_nodes(), children)), draw(st.one_of(st.sampled_from(STRINGS), children))]
        }
    if kind == 11:  # array iterators over an attribute or a literal array
        op = draw(st.sampled_from(["map", "filter", "all", "some", "none", "reduce"]))
        items = draw(
            st.one_of(st.just({"var": "tags"}), st.just({"var": "items"}), st.lists(scalars, max_size=4))
        )
        sub = draw(
            st.one_of(
                children,
                st.just({"==": [{"var": ""}, "beta"]}),
                st.just({"var": "id"}),
                st.just({">": [{"var": ""}, 1]}),
                st.just({"+": [{"var": "accumulator"}, {"var": "current"}]}),
                st.just({"fractional": [["a", 1], ["b", 1]]}),
            )
        )
        args = [items, sub]
        if op == "reduce" and draw(st.booleans()):
            args.append(draw(st.one_of(scalars, st.just({"var": "x"}))))
        return {op: args}
    if kind == 12:  # comparisons of an attribute with a literal (the common production shape)
        op = draw(st.sampled_from(["==", "!=", "===", "!==", "<", "<=", ">", ">=", "in"]))
        return {
            op: [draw(var_nodes()), draw(st.one_of(literals, st.lists(st.sampled_from(STRINGS), max_size=5)))]
        }
    if kind == 13:  # between
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        return {
            op: [draw(st.one_of(numbers, children)), draw(var_nodes()), draw(st.one_of(numbers, children))]
        }
    if kind == 14:
        return {draw(st.sampled_from(UNKNOWN_OPERATORS)): draw(st.lists(children, max_size=2))}
    return {"$ref": draw(st.sampled_from([*EVALUATOR_NAMES, "unknown"]))}


_USUAL_ARITY: dict[str, tuple[int, ...]] = {
    "!": (1,), "!!": (1,), "log": (1,), "var": (1, 2), "missing": (1, 2, 3), "missing_some": (2,),
    "if": (2, 3, 5), "?:": (3,), "and": (1, 2, 3), "or": (1, 2, 3), "+": (1, 2, 3), "*": (2, 3),
    "-": (1, 2), "min": (1, 2, 3), "max": (1, 2, 3), "cat": (1, 2, 3), "merge": (1, 2, 3),
    "substr": (2, 3), "<": (2, 3), "<=": (2, 3), ">": (2, 3), ">=": (2, 3), "fractional": (2, 3),
    "sem_ver": (3,), "map": (2,), "filter": (2,), "reduce": (2, 3), "all": (2,), "some": (2,),
    "none": (2,),
}  # fmt: skip


def rules(variant_names: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves(variant_names),
        lambda children: operations(children, variant_names),
        max_leaves=10,
    )


@st.composite
def root_rules(draw: st.DrawFn, variant_names: list[str]) -> Any:
    """A targeting rule: mostly one that chooses variant names, sometimes anything at all."""
    children = rules(variant_names)
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        return draw(if_chains(children, variant_names))
    if kind == 5:
        return draw(fractional_nodes(children, variant_names))
    if kind == 6:
        return draw(st.sampled_from([None, {}, [], "", 0, "rule", ["a"], 1]))
    return draw(children)


# -- evaluators (ASCII only: the reference splices them into JSON text with re.sub) ------------

_EVALUATOR_BODIES = [
    {"==": [{"var": "country"}, "US"]},
    {">=": [{"var": "age"}, 18]},
    {"fractional": [{"var": "email"}, ["a", 50], ["b", 50]]},
    {"fractional": [["on", 1], ["off", 3]]},
    {"in": [{"var": "email"}, ["a@example.com", "bob@corp.io"]]},
    {"if": [{"var": "beta"}, "on", "off"]},
    {"starts_with": [{"var": "email"}, "a"]},
    {"sem_ver": [{"var": "version"}, "^", "1.0.0"]},
    "red",
    True,
]

evaluator_sets = st.dictionaries(
    st.sampled_from(EVALUATOR_NAMES), st.sampled_from(_EVALUATOR_BODIES), max_size=3
)

# -- variants and flags -----------------------------------------------------------------------

variant_sets = st.one_of(
    st.just({"true": True, "false": False}),
    st.just({"on": True, "off": False}),
    st.dictionaries(
        st.sampled_from(VARIANT_NAMES), st.sampled_from(["r", "g", "", "😀", "ünï"]), min_size=1, max_size=4
    ),
    st.dictionaries(st.sampled_from(VARIANT_NAMES), st.integers(-(2**40), 2**40), min_size=1, max_size=4),
    st.dictionaries(
        st.sampled_from(VARIANT_NAMES), st.sampled_from([0.5, 1.0, 2, -3, 1e20, 7.0]), min_size=1, max_size=4
    ),
    st.dictionaries(
        st.sampled_from(VARIANT_NAMES),
        st.sampled_from([{"x": 1}, [1, 2], {}, [], {"nested": {"a": [True]}}]),
        min_size=1,
        max_size=3,
    ),
    st.dictionaries(
        st.sampled_from(VARIANT_NAMES), st.sampled_from([1, "s", True, 2.5, {"o": 1}]), min_size=1, max_size=4
    ),
)


@st.composite
def flag_definitions(draw: st.DrawFn) -> dict[str, Any]:
    variants = draw(variant_sets)
    names = sorted(variants)
    default = draw(st.sampled_from([*names, *names, None, "missing"]))
    out: dict[str, Any] = {
        "state": draw(st.sampled_from(["ENABLED"] * 9 + ["DISABLED"])),
        "variants": variants,
    }
    if default is not None:
        out["defaultVariant"] = default
    targeting = draw(root_rules(names))
    if targeting is not None:
        out["targeting"] = targeting
    return out


flag_keys = st.one_of(
    st.sampled_from(["my-flag", "new-checkout", "a", "flag.with.dots"]), st.text(min_size=1, max_size=8)
)


# -- well-formed flags: what people write (strict compile accepts most of them) ----------------

_CONDITION_EVALUATORS = {
    "isUS": {"==": [{"var": "country"}, "US"]},
    "adult": {">=": [{"var": "age"}, 18]},
    "beta_users": {"in": [{"var": "email"}, ["a@example.com", "bob@corp.io"]]},
    "modern": {"sem_ver": [{"var": "version"}, ">=", "1.2.0"]},
}

condition_evaluator_sets = st.dictionaries(
    st.sampled_from(sorted(_CONDITION_EVALUATORS)), st.just(None), max_size=4
).map(lambda names: {name: _CONDITION_EVALUATORS[name] for name in names})

attribute_vars = st.sampled_from(
    [
        "email",
        "country",
        "age",
        "version",
        "plan",
        "score",
        "beta",
        "name",
        "user.country",
        "user.age",
        "tags.0",
        "targetingKey",
        "$flagd.flagKey",
        "missing",
    ]
).map(lambda key: {"var": key})

number_exprs = st.one_of(
    st.sampled_from(
        [{"var": "age"}, {"var": "score"}, {"var": "ratio"}, {"var": "user.age"}, {"var": "tags.length"}]
    ),
    st.builds(
        lambda op, a, b: {op: [a, b]},
        st.sampled_from(["+", "-", "*", "/", "%"]),
        st.just({"var": "age"}),
        st.integers(1, 7),
    ),
    st.builds(
        lambda op, a, b: {op: [a, b]}, st.sampled_from(["min", "max"]), st.just({"var": "score"}), numbers
    ),
    st.just({"reduce": [{"var": "tags"}, {"+": [{"var": "accumulator"}, 1]}, 0]}),
    st.just({"substr": [{"var": "name"}, 0, 2]}),
)

leaf_conditions = st.one_of(
    st.builds(
        lambda op, a, b: {op: [a, b]},
        st.sampled_from(["==", "!=", "===", "!=="]),
        attribute_vars,
        st.one_of(st.sampled_from(STRINGS), numbers, st.booleans(), st.none()),
    ),
    st.builds(
        lambda op, a, b: {op: [a, b]},
        st.sampled_from(["<", "<=", ">", ">="]),
        number_exprs,
        st.one_of(numbers, st.sampled_from(["18", "abc"])),
    ),
    st.builds(
        lambda op, lo, x, hi: {op: [lo, x, hi]},
        st.sampled_from(["<", "<="]),
        st.integers(0, 30),
        number_exprs,
        st.integers(20, 100),
    ),
    st.builds(
        lambda a, b: {"in": [a, b]},
        attribute_vars,
        st.one_of(st.lists(st.sampled_from(STRINGS), max_size=6), st.sampled_from(STRINGS)),
    ),
    st.builds(lambda b: {"in": [b, {"var": "tags"}]}, st.sampled_from(["a", "beta", 1])),
    st.builds(
        lambda op, a, b: {op: [a, b]},
        st.sampled_from(["starts_with", "ends_with"]),
        attribute_vars,
        st.sampled_from(["a", "@example.com", "US", "", "😀", "1."]),
    ),
    st.builds(
        lambda a, op, b: {"sem_ver": [a, op, b]},
        st.just({"var": "version"}),
        st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "^", "~"]),
        st.sampled_from(["1.2.3", "v1.2", "1", "2.0.0-rc.1", "1.2.3-alpha.1", "0.9.0+b"]),
    ),
    st.builds(
        lambda keys: {"missing": keys}, st.lists(st.sampled_from([*ATTRIBUTES, "user.country"]), max_size=3)
    ),
    st.builds(
        lambda n, keys: {"missing_some": [n, keys]},
        st.integers(0, 3),
        st.lists(st.sampled_from(ATTRIBUTES), min_size=1, max_size=3),
    ),
    st.builds(
        lambda op, sub: {op: [{"var": "tags"}, sub]},
        st.sampled_from(["some", "all", "none"]),
        st.sampled_from([{"==": [{"var": ""}, "beta"]}, {">": [{"var": ""}, 1]}, {"var": ""}]),
    ),
    st.just({"!!": [{"filter": [{"var": "items"}, {">": [{"var": "id"}, 2]}]}]}),
    st.just({"==": [{"cat": [{"var": "country"}, "-", {"var": "plan"}]}, "US-red"]}),
    st.just({"in": ["beta", {"merge": [{"var": "tags"}, {"var": "user.tags"}]}]}),
    st.just({"==": [{"map": [{"var": "items"}, {"var": "id"}]}, "1,2"]}),
    st.builds(lambda name: {"$ref": name}, st.sampled_from(sorted(_CONDITION_EVALUATORS))),
    st.just({"<": [{"var": "$flagd.timestamp"}, 1_800_000_000]}),
    attribute_vars,
)

conditions = st.recursive(
    leaf_conditions,
    lambda children: st.one_of(
        st.builds(
            lambda op, xs: {op: xs},
            st.sampled_from(["and", "or"]),
            st.lists(children, min_size=1, max_size=3),
        ),
        st.builds(lambda op, x: {op: x}, st.sampled_from(["!", "!!"]), children),
        st.builds(lambda op, x: {op: [x]}, st.sampled_from(["!", "!!"]), children),
    ),
    max_leaves=5,
)


@st.composite
def well_formed_fractional(draw: st.DrawFn, names: list[str]) -> Any:
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4))
    buckets = [[name, draw(st.integers(0, 100))] if draw(st.integers(0, 4)) else [name] for name in chosen]
    if all(len(b) == 2 and b[1] == 0 for b in buckets):
        buckets[0][1] = 1
    bucket_by = draw(
        st.sampled_from(
            [None, {"var": "email"}, {"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, {"var": "user"},
             {"var": "age"}, {"var": "tags"}, {"var": "score"}]
        )
    )  # fmt: skip
    return {"fractional": buckets if bucket_by is None else [bucket_by, *buckets]}


@st.composite
def well_formed_results(draw: st.DrawFn, names: list[str], depth: int = 0) -> Any:
    kind = draw(st.integers(0, 9))
    if kind <= 4 or depth >= 2:
        return draw(st.sampled_from([*names, None] if kind else names))
    if kind <= 6:
        return draw(well_formed_fractional(names))
    return draw(well_formed_ifs(names, depth + 1))


@st.composite
def well_formed_ifs(draw: st.DrawFn, names: list[str], depth: int = 0) -> Any:
    args = []
    for _ in range(draw(st.integers(1, 3))):
        args.append(draw(conditions))
        args.append(draw(well_formed_results(names, depth)))
    if draw(st.booleans()):
        args.append(draw(well_formed_results(names, depth)))
    return {"if": args}


typed_variant_sets = st.one_of(
    st.just({"on": True, "off": False}),
    st.just({"true": True, "false": False}),
    st.dictionaries(
        st.sampled_from(["red", "blue", "green", "1", "US", "😀"]),
        st.sampled_from(["#f00", "#00f", "", "ünï"]),
        min_size=1,
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from(["small", "big", "neg", "0"]),
        st.one_of(st.integers(-(2**62), 2**62), st.integers(-3, 3)),
        min_size=1,
        max_size=3,
    ),
    st.dictionaries(
        st.sampled_from(["half", "one", "two"]), st.sampled_from([0.5, 1.0, 2, 7.25]), min_size=1, max_size=3
    ),
    st.dictionaries(
        st.sampled_from(["cfg-a", "cfg-b"]), st.sampled_from([{"x": 1}, [1, "a"], {}]), min_size=1, max_size=2
    ),
)


@st.composite
def well_formed_flags(draw: st.DrawFn) -> dict[str, Any]:
    variants = draw(typed_variant_sets)
    names = sorted(variants)
    out: dict[str, Any] = {
        "state": draw(st.sampled_from(["ENABLED"] * 15 + ["DISABLED"])),
        "variants": variants,
    }
    default = draw(st.sampled_from([*names, None]))
    if default is not None:
        out["defaultVariant"] = default
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return out  # static
    if kind == 1:
        out["targeting"] = draw(well_formed_fractional(names))
    elif kind == 2 and {"true", "false"} <= set(names):
        out["targeting"] = draw(conditions)
    else:
        out["targeting"] = draw(well_formed_ifs(names))
    return out
