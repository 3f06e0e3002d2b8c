"""`fractional` as flagd buckets: the default string hashing against the JavaScript core.

flagd (Go), the JavaScript `@openfeature/flagd-core` 4.x and flagd's conformance suite
("fractional-v2") hash the UTF-8 bucketing string (or flag key + targeting key) with MurmurHash3
x86-32, seed 0, and pick `bucket = (hash * total_weight) >> 32`.  The Python
`openfeature-flagd-core` 2.0.0 hashes CBOR instead: that stays available per environment
(`"fractionalHashing": "cbor"` in the flag-set metadata) and is compared with the Python core
here and in every other engine test module.
"""

from __future__ import annotations

import string
from typing import Any

import mmh3
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.flags import definition_fields, flag_model
from tests.support.reference import CBOR, FRACTIONAL, NOW, ReferenceFlag, outcome
from vexil.engine import FlagValidationError, ValueType, compile_flag, evaluate

SUITS = {"clubs": "clubs", "diamonds": "diamonds", "hearts": "hearts", "spades": "spades", "wild": "wild"}
QUARTERS = [["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]]

OFFICIAL_FLAGS: dict[str, dict[str, Any]] = {
    "fractional-flag": {
        "state": "ENABLED",
        "variants": SUITS,
        "defaultVariant": "wild",
        "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]}, *QUARTERS]},
    },
    "fractional-flag-shorthand": {
        "state": "ENABLED",
        "variants": {"heads": "heads", "tails": "tails", "draw": "draw"},
        "defaultVariant": "draw",
        "targeting": {"fractional": [["heads"], ["tails", 1]]},
    },
    "fractional-flag-A-shared-seed": {
        "state": "ENABLED",
        "variants": SUITS,
        "defaultVariant": "wild",
        "targeting": {"fractional": [{"cat": ["shared-seed", {"var": "user.name"}]}, *QUARTERS]},
    },
    "fractional-flag-B-shared-seed": {
        "state": "ENABLED",
        "variants": {
            "clubs": "ace-of-clubs",
            "diamonds": "ace-of-diamonds",
            "hearts": "ace-of-hearts",
            "spades": "ace-of-spades",
            "wild": "wild",
        },
        "defaultVariant": "wild",
        "targeting": {"fractional": [{"cat": ["shared-seed", {"var": "user.name"}]}, *QUARTERS]},
    },
    "fractional-hash-edge-flag": {
        "state": "ENABLED",
        "variants": {"lower": "lower", "upper": "upper"},
        "defaultVariant": "lower",
        "targeting": {"fractional": [{"var": "targetingKey"}, ["lower", 50], ["upper", 50]]},
    },
}
"""flagd's conformance flags for `fractional` (flagd-testbed, custom-ops)."""


def _user(name: str) -> dict[str, Any]:
    return {"user": {"name": name}}


OFFICIAL_V2: list[tuple[str, dict[str, Any], str]] = [
    ("fractional-flag", _user("jack"), "hearts"),
    ("fractional-flag", _user("queen"), "spades"),
    ("fractional-flag", _user("ten"), "clubs"),
    ("fractional-flag", _user("nine"), "diamonds"),
    ("fractional-flag", _user("3"), "clubs"),
    ("fractional-flag-shorthand", {"targetingKey": "jon@company.com"}, "heads"),
    ("fractional-flag-shorthand", {"targetingKey": "jane@company.com"}, "tails"),
    ("fractional-flag-A-shared-seed", _user("seven"), "hearts"),
    ("fractional-flag-A-shared-seed", _user("eight"), "diamonds"),
    ("fractional-flag-A-shared-seed", _user("nine"), "clubs"),
    ("fractional-flag-A-shared-seed", _user("two"), "spades"),
    ("fractional-flag-B-shared-seed", _user("seven"), "ace-of-hearts"),
    ("fractional-flag-B-shared-seed", _user("eight"), "ace-of-diamonds"),
    ("fractional-flag-B-shared-seed", _user("nine"), "ace-of-clubs"),
    ("fractional-flag-B-shared-seed", _user("two"), "ace-of-spades"),
    ("fractional-hash-edge-flag", {"targetingKey": "ejOoVL"}, "lower"),
    ("fractional-hash-edge-flag", {"targetingKey": "bY9fO-"}, "lower"),
    ("fractional-hash-edge-flag", {"targetingKey": "SI7p-"}, "lower"),
    ("fractional-hash-edge-flag", {"targetingKey": "6LvT0"}, "upper"),
    ("fractional-hash-edge-flag", {"targetingKey": "ceQdGm"}, "upper"),
]
"""flagd's conformance expectations tagged fractional-v2 (evaluator/gherkin/fractional.feature):
flag, context, the value flagd resolves."""


def vexil_value(key: str, context: dict[str, Any], metadata: dict[str, Any] | None = None) -> Any:
    compiled = compile_flag(
        flag_model(key, **definition_fields(OFFICIAL_FLAGS[key]), environment="test"),
        flag_set_metadata=metadata,
    )
    return evaluate(compiled, context, ValueType.STRING, now=NOW).value


def test_official_v2_expectations() -> None:
    """Every fractional-v2 expectation of flagd's conformance suite, as vexil answers by default."""
    got = [vexil_value(key, context) for key, context, _ in OFFICIAL_V2]
    assert got == [expected for _, _, expected in OFFICIAL_V2]


def test_the_javascript_core_confirms_the_official_table(js_core: Any) -> None:
    """The table above is what the JavaScript core answers too (so it is not vexil's word)."""
    flags = {"flags": OFFICIAL_FLAGS}
    (results,) = js_core.resolve([(flags, [(key, context) for key, context, _ in OFFICIAL_V2])])
    assert [r["value"] for r in results] == [expected for _, _, expected in OFFICIAL_V2]
    assert {r["reason"] for r in results} == {"TARGETING_MATCH"}


def test_cbor_hashing_is_an_environment_opt_in() -> None:
    """With `"fractionalHashing": "cbor"` vexil buckets as the Python core, which differs from
    flagd on most of the official cases."""
    differ = 0
    for key, context, expected in OFFICIAL_V2:
        ours = vexil_value(key, context, CBOR)
        ref = ReferenceFlag(key, OFFICIAL_FLAGS[key]).outcome(context, ValueType.STRING)
        assert ours == ref.value
        differ += ours != expected
    assert differ >= len(OFFICIAL_V2) // 2


def test_utf8_bucketing_as_flagd() -> None:
    """flagd hashes the UTF-8 bytes.  (The JavaScript core hashes UTF-16 code units, so it
    buckets non-ASCII keys differently from flagd; the generated comparison stays ASCII.)"""
    key, buckets = "f", [["a", 1], ["b", 1], ["c", 1], ["d", 1], ["e", 1]]
    flag = flag_model(key, dict.fromkeys("abcde", 1), None, {"fractional": buckets}, environment="test")
    compiled = compile_flag(flag)
    for targeting_key in ("ünïcødé", "日本語", "😀", "plain"):
        point = (mmh3.hash((key + targeting_key).encode(), 0, False) * 5) >> 32
        assert evaluate(compiled, {"targetingKey": targeting_key}).variant == "abcde"[point]
    assert evaluate(compiled, {"targetingKey": "a\ud800"}).variant is None  # no UTF-8 form: null


# -- generated flags against the JavaScript core -------------------------------------------------

ASCII = string.ascii_letters + string.digits + "-_.@"
ascii_text = st.text(ASCII, min_size=0, max_size=10)
NAMES = ["red", "blue", "green", "on", "1", "true"]

weights = st.one_of(
    st.integers(0, 100),
    st.integers(-5, 5),
    st.sampled_from([50.0, 25.0, 0.0, -3.0]),  # integral floats: integers to flagd (JSON numbers)
    st.sampled_from([2**31 - 1, 2**31, 10**12, 1.5, "50", None, True, False]),
)
bucket_variants = st.one_of(st.sampled_from(NAMES), st.sampled_from([None, True, 1, "missing", ["x"]]))
buckets = st.one_of(
    st.tuples(bucket_variants, weights).map(list),
    st.tuples(bucket_variants).map(list),
    st.tuples(st.sampled_from(NAMES), st.just({"if": [{"var": "beta"}, 100, 0]})).map(list),
    st.tuples(st.just({"var": "color"}), st.integers(0, 50)).map(list),
    st.tuples(st.sampled_from(NAMES), st.just({"var": "w"})).map(list),
    st.sampled_from([[], ["red", 1, 2], "red"]),
)
bucket_bys = st.one_of(
    st.just({"var": "email"}),
    st.just({"var": "targetingKey"}),
    st.just({"var": "n"}),
    st.just({"var": "pair"}),
    st.just({"var": "missing"}),
    st.just({"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}),
    st.just({"cat": ["seed-", {"var": "email"}]}),
    ascii_text,
    st.sampled_from([None, 7, True]),
)


@st.composite
def fractional_flags(draw: st.DrawFn) -> dict[str, Any]:
    rule_buckets = draw(st.lists(buckets, min_size=0, max_size=4))
    rule: Any = (
        {"fractional": rule_buckets}
        if draw(st.booleans())
        else {"fractional": [draw(bucket_bys), *rule_buckets]}
    )
    if draw(st.integers(0, 3)) == 0:
        rule = {"if": [{"var": "beta"}, rule, "blue"]}
    out: dict[str, Any] = {"state": "ENABLED", "variants": {n: f"value-{n}" for n in NAMES}}
    default = draw(st.sampled_from([None, "red", "green"]))
    if default is not None:
        out["defaultVariant"] = default
    out["targeting"] = rule
    return out


contexts = st.fixed_dictionaries(
    {},
    optional={
        "targetingKey": st.one_of(ascii_text, st.sampled_from(["user-1", "alice@example.com", ""])),
        "email": st.one_of(ascii_text, st.sampled_from(["a@example.com", "bob@corp.io"])),
        "n": st.sampled_from([0, 3, 2.5, None, "7"]),
        "pair": st.sampled_from([["red", 1], ["blue"], ["nope", 2], [], "red"]),
        "color": st.sampled_from(["red", "green", "orange", 5]),
        "beta": st.booleans(),
        "w": st.sampled_from([50, 50.0, 0.0, -2.0, 1.5, "50", None, 2**31]),
    },
)

flag_keys = st.one_of(
    st.sampled_from(["my-flag", "new-checkout", "a"]), st.text(ASCII, min_size=1, max_size=8)
)


def vexil_outcomes(key: str, definition: dict[str, Any], ctxs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """vexil's answers for a flag loaded from a file: strict if it validates, else as flagd."""
    flag = flag_model(key, **definition_fields(definition), environment="test")
    lenient = compile_flag(flag, strict=False)
    try:
        strict = compile_flag(flag)
    except FlagValidationError:
        strict = None
    out = []
    for context in ctxs:
        ours = outcome(evaluate(lenient, context, ValueType.STRING, now=NOW))
        if strict is not None:
            assert outcome(evaluate(strict, context, ValueType.STRING, now=NOW)) == ours
        out.append((ours.value, ours.variant, ours.reason, ours.error_code))
    return out


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.generate],  # a shrink would call Node thousands of times
)
@given(
    batch=st.lists(
        st.tuples(flag_keys, fractional_flags(), st.lists(contexts, min_size=1, max_size=4)),
        min_size=10,
        max_size=25,
    )
)
def test_generated_fractional_flags_match_the_javascript_core(
    js_core: Any, batch: list[tuple[str, dict[str, Any], list[dict[str, Any]]]]
) -> None:
    cases = [({"flags": {key: definition}}, [(key, c) for c in ctxs]) for key, definition, ctxs in batch]
    results = js_core.resolve(cases)
    for (key, definition, ctxs), theirs in zip(batch, results, strict=True):
        ours = vexil_outcomes(key, definition, ctxs)
        for context, mine, js in zip(ctxs, ours, theirs, strict=True):
            FRACTIONAL["js"] += 1
            expected = (js["value"], js["variant"], js["reason"], js["errorCode"])
            assert mine == expected, f"\n{key!r}: {definition}\n{context}\nvexil {mine} != js {expected}"


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(key=flag_keys, definition=fractional_flags(), ctxs=st.lists(contexts, min_size=1, max_size=4))
def test_cbor_mode_matches_the_python_core(
    key: str, definition: dict[str, Any], ctxs: list[dict[str, Any]]
) -> None:
    reference = ReferenceFlag(key, definition)
    compiled = compile_flag(
        flag_model(key, **definition_fields(definition), environment="test"),
        flag_set_metadata=CBOR,
        strict=False,
    )
    for context in ctxs:
        FRACTIONAL["python"] += 1
        ref = reference.outcome(context, ValueType.STRING)
        ours = outcome(evaluate(compiled, context, ValueType.STRING, now=NOW))
        assert ref.comparable() == ours.comparable(), f"\n{key!r}: {definition}\n{context}\n{ref} != {ours}"
