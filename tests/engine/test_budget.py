"""Bounded work: compile-time limits on rules and the run-time budget of one evaluation.

The stalling rules come from the issue: iterators nested over arrays the caller sends, a `reduce`
that doubles a string, a product that squares itself.  Each must end quickly as an ERROR
resolution (or be refused when compiled), while the shapes real flag sets hold (a 50,000-id
allow-list, a 200-branch `if` chain, a fractional over 100 buckets) stay valid and fast.
Expected answers are computed here in plain Python, not by the engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vexil.engine import FlagValidationError, Reason, ValueType, budget, compile_flag, evaluate
from vexil.model import Flag

ACC = {"var": "accumulator"}
CUR = {"var": "current"}
WALL = 0.5
"""Seconds one cut-off evaluation may take under a loaded test machine (the budget is a few ms)."""


def make(targeting: Any, variants: dict[str, Any] | None = None, key: str = "f") -> Flag:
    return Flag(
        key=key,
        environment="test",
        variants=variants or {"yes": True, "no": False},
        default_variant="no",
        targeting=targeting,
    )


def pick(condition: Any) -> dict[str, Any]:
    """A rule selecting "yes" when `condition` is truthy, else "no"."""
    return {"if": [condition, "yes", "no"]}


def timed(flag: Flag, context: dict[str, Any]) -> tuple[Any, float]:
    compiled = compile_flag(flag)
    started = time.perf_counter()
    resolution = evaluate(compiled, context, ValueType.BOOL)
    return resolution, time.perf_counter() - started


def refused(flag: Flag, *, strict: bool = True) -> FlagValidationError:
    with pytest.raises(FlagValidationError) as info:
        compile_flag(flag, strict=strict)
    return info.value


@pytest.fixture
def small_budget() -> Iterator[None]:
    before = budget.limits()
    budget.configure(operations=1_000, characters=1_000)
    try:
        yield
    finally:
        budget.configure(operations=before[0], characters=before[1])


# -- run time: the stalling requests of the issue are cut off quickly ---------------------------


def nested_sum(depth: int) -> dict[str, Any]:
    """`reduce` nested `depth` deep, each over the current element (an array from the context)."""
    inner: Any = {"+": [ACC, CUR]}
    items: Any = CUR
    for level in range(depth):
        items = {"var": "xs"} if level == depth - 1 else CUR
        inner = {"reduce": [items, inner if level == 0 else {"+": [ACC, inner]}, 0]}
    return inner


def test_nested_iterators_over_a_large_context_are_cut_off() -> None:
    # Two levels (the most the compiler allows) over 250 x 250 elements: 62,500 inner steps.
    rule = pick({">": [nested_sum(2), -1]})
    big = {"xs": [list(range(250)) for _ in range(250)]}
    resolution, took = timed(make(rule), big)
    assert resolution.reason is Reason.ERROR
    assert "evaluation budget exceeded" in resolution.error_message
    assert took < WALL
    # The same rule over a small context is served, with the sum computed here.
    small = {"xs": [[1, 2], [3, 4, 5]]}
    total = 1 + 2 + 3 + 4 + 5
    assert evaluate(compile_flag(make(pick({"==": [nested_sum(2), total]}))), small).variant == "yes"


def test_a_doubling_string_is_cut_off_before_it_grows() -> None:
    rule = pick({"reduce": [{"var": "xs"}, {"cat": [ACC, ACC]}, "ab"]})
    resolution, took = timed(make(rule), {"xs": list(range(64))})  # 2**65 characters uncut
    assert resolution.reason is Reason.ERROR
    assert "evaluation budget exceeded" in resolution.error_message
    assert took < WALL
    fine, _ = timed(make(pick({"==": [rule["if"][0], "ab" * 8]})), {"xs": [1, 2, 3]})
    assert fine.variant == "yes"


def test_a_doubling_array_is_cut_off() -> None:
    rule = pick({"reduce": [{"var": "xs"}, {"merge": [ACC, ACC]}, [1]]})
    resolution, took = timed(make(rule), {"xs": list(range(64))})
    assert resolution.reason is Reason.ERROR and "evaluation budget exceeded" in resolution.error_message
    assert took < WALL


def test_a_squaring_product_is_cut_off() -> None:
    rule = pick({"reduce": [{"var": "xs"}, {"*": [ACC, ACC]}, 3]})
    resolution, took = timed(make(rule), {"xs": list(range(40))})  # 3**(2**40) uncut
    assert resolution.reason is Reason.ERROR and "evaluation budget exceeded" in resolution.error_message
    assert took < WALL
    fine = evaluate(compile_flag(make(pick({"==": [rule["if"][0], 3**8]}))), {"xs": [0, 0, 0]})
    assert fine.variant == "yes"


def test_one_iterator_over_a_huge_array_is_cut_off() -> None:
    rule = pick({"some": [{"var": "xs"}, {"==": [{"var": ""}, -1]}]})
    resolution, took = timed(make(rule), {"xs": list(range(1_000_000))})
    assert resolution.reason is Reason.ERROR and "evaluation budget exceeded" in resolution.error_message
    assert took < WALL
    # 2,000 elements (10,000 operations) are inside the budget: the answer is computed.
    served, _ = timed(make(rule), {"xs": [*range(1_999), -1]})
    assert served.reason is Reason.TARGETING_MATCH and served.variant == "yes"


def test_printing_arrays_in_a_loop_is_charged() -> None:
    # Each element, an array of 5,000 numbers, is printed to compare it with a string.
    rule = pick({"some": [{"var": "xs"}, {"==": [{"var": ""}, "x"]}]})
    resolution, took = timed(make(rule), {"xs": [list(range(5_000))] * 300})
    assert resolution.reason is Reason.ERROR and "evaluation budget exceeded" in resolution.error_message
    assert took < WALL
    # The same comparison in a rule without a loop is not metered, even right after a cut-off.
    top = pick({"==": [{"var": "a"}, "0,1,2"]})
    assert evaluate(compile_flag(make(top)), {"a": [0, 1, 2]}).variant == "yes"
    assert evaluate(compile_flag(make(top)), {"a": list(range(100_000))}).variant == "no"


def test_parsing_long_strings_as_numbers_in_a_loop_is_charged() -> None:
    # The caller's one long string, referenced 2,000 times by the rule and parsed as a number
    # each time (`>` with a number, false, so every copy is tried): 2,000 parses of 60,000
    # characters uncut (half a second).
    copies = {"merge": [{"var": ""}] * 2_000}
    rule = pick({"some": [{"var": "xs"}, {"some": [copies, {">": [{"var": ""}, 5]}]}]})
    resolution, took = timed(make(rule), {"xs": ["1." + "0" * 60_000]})
    assert resolution.reason is Reason.ERROR and "evaluation budget exceeded" in resolution.error_message
    assert took < WALL
    short = evaluate(compile_flag(make(rule)), {"xs": ["7"]})
    assert short.reason is Reason.TARGETING_MATCH and short.variant == "yes"


def test_the_budget_is_per_evaluation_and_configurable(small_budget: None) -> None:
    # 180 elements x weight 5 (one per element, plus the sub-rule's 4 nodes: `==`, `var`, its
    # path, the literal) = 900 of 1,000 operations.
    rule = pick({"some": [{"var": "xs"}, {"==": [{"var": ""}, -1]}]})
    compiled = compile_flag(make(rule))
    context = {"xs": list(range(180))}
    for _ in range(5):  # spending 90 % each time never accumulates across evaluations
        assert evaluate(compiled, context).reason is Reason.TARGETING_MATCH
    over = evaluate(compiled, {"xs": list(range(400))})
    assert over.reason is Reason.ERROR and "1,000 operations" in over.error_message
    text = pick({"cat": ["x" * 600, {"var": "s"}]})
    assert evaluate(compile_flag(make(text)), {"s": "y" * 300}).reason is Reason.TARGETING_MATCH
    long = evaluate(compile_flag(make(text)), {"s": "y" * 500})
    assert long.reason is Reason.ERROR and "1,000 characters" in long.error_message


def test_a_failed_number_parse_costs_ten_operations(small_budget: None) -> None:
    # Comparing numbers with a word parses the word each time and fails (an exception): 5 for
    # the element and its sub-rule, 10 for the failed parse, 15 an element of 1,000.
    rule = compile_flag(make(pick({"some": [{"var": "xs"}, {"==": [{"var": ""}, "x"]}]})))
    assert evaluate(rule, {"xs": list(range(66))}).reason is Reason.TARGETING_MATCH  # 990
    over = evaluate(rule, {"xs": list(range(67))})  # 1,005
    assert over.reason is Reason.ERROR and "1,000 operations" in over.error_message


def test_configure_refuses_a_zero_budget() -> None:
    with pytest.raises(ValueError):
        budget.configure(operations=0, characters=10)


# -- compile time: limits named with their path ---------------------------------------------------


def test_three_nested_iterators_are_refused_with_the_path() -> None:
    error = refused(make(pick({">": [nested_sum(3), -1]})))
    assert error.path == "targeting.if[0].>[0].reduce[1].+[1].reduce[1].+[1].reduce"
    assert "nest at most 2" in error.message
    # Refused even when compiling leniently (the budget is not a flagd compatibility question).
    assert refused(make(pick({">": [nested_sum(3), -1]})), strict=False).path.endswith(".reduce")
    for op in ("map", "filter", "all", "some", "none"):
        rule = {op: [{"var": "a"}, {op: [CUR, {op: [CUR, {"var": ""}]}]}]}
        assert refused(make(pick(rule))).path == f"targeting.if[0].{op}[1].{op}[1].{op}"


def test_too_many_nodes_are_refused_with_the_path() -> None:
    # 4,000 comparisons of 3 nodes each: 12,000 nodes in the `or`.
    many = {"or": [{"==": [{"var": "id"}, f"u{i}"]} for i in range(4_000)]}
    error = refused(make(pick(many)))
    assert error.path.startswith("targeting.if[0].or[")
    assert "more than 10,000 nodes" in error.message


def test_ref_expansion_counts_every_use() -> None:
    # Each evaluator uses the previous one twice: 2**20 uses of the first one once expanded.
    evaluators: dict[str, Any] = {"e0": {"==": [{"var": "id"}, 1]}}
    for i in range(1, 21):
        evaluators[f"e{i}"] = {"or": [{"$ref": f"e{i - 1}"}, {"$ref": f"e{i - 1}"}]}
    flag = make(pick({"$ref": "e20"}))
    started = time.perf_counter()
    with pytest.raises(FlagValidationError) as info:
        compile_flag(flag, evaluators)
    assert "more than 10,000 nodes" in info.value.message
    assert time.perf_counter() - started < 5.0


def test_an_oversized_literal_array_is_refused() -> None:
    error = refused(make(pick({"in": [{"var": "id"}, list(range(100_001))]})))
    assert error.path == "targeting.if[0].in[1]"
    assert "at most 100,000 elements" in error.message


# -- what real flag sets hold stays valid and fast -------------------------------------------------


def test_a_50000_id_allow_list_is_a_set_lookup() -> None:
    ids = [f"user-{i:06d}" for i in range(50_000)]
    compiled = compile_flag(make(pick({"in": [{"var": "targetingKey"}, ids]})))
    members = [{"targetingKey": ids[-1 - i]} for i in range(200)]  # the end of the list
    strangers = [{"targetingKey": f"other-{i}"} for i in range(200)]
    assert all(evaluate(compiled, c).variant == "yes" for c in members)
    assert all(evaluate(compiled, c).variant == "no" for c in strangers)
    started = time.perf_counter()
    for _ in range(25):
        for context in members + strangers:
            evaluate(compiled, context)
    # 10,000 lookups: a list scan of 50,000 strings would take tens of seconds; a set, milliseconds.
    assert time.perf_counter() - started < 1.0


def test_a_200_branch_if_chain_is_valid_and_fast() -> None:
    branches: list[Any] = []
    for i in range(200):
        branches += [{"==": [{"var": "n"}, i]}, f"v{i}"]
    variants = {f"v{i}": i for i in range(200)} | {"other": -1}
    flag = Flag(
        key="chain", environment="test", variants=variants, default_variant="other",
        targeting={"if": [*branches, "other"]},
    )  # fmt: skip
    compiled = compile_flag(flag)
    assert evaluate(compiled, {"n": 199}).value == 199
    assert evaluate(compiled, {"n": 7}).value == 7
    assert evaluate(compiled, {"n": 500}).value == -1
    started = time.perf_counter()
    for _ in range(1_000):
        evaluate(compiled, {"n": 199})  # the last branch: 200 comparisons
    assert time.perf_counter() - started < 2.0


def test_a_fractional_over_100_buckets_is_valid() -> None:
    variants = {f"b{i}": i for i in range(100)}
    flag = Flag(
        key="split", environment="test", variants=variants, default_variant="b0",
        targeting={"fractional": [[f"b{i}", 1] for i in range(100)]},
    )  # fmt: skip
    compiled = compile_flag(flag)
    seen = {evaluate(compiled, {"targetingKey": f"user-{i}"}).variant for i in range(2_000)}
    assert seen <= set(variants) and len(seen) > 80


# -- the meter itself: one allowance per unit, per thread -----------------------------------------


def test_each_unit_is_charged_apart_and_names_its_own_limit(small_budget: None) -> None:
    budget.configure(operations=1_500, characters=2_500)
    budget.start()
    try:
        budget.spend(1_500)
        budget.build(2_500)  # spending every operation leaves the characters untouched
        with pytest.raises(budget.BudgetExceeded) as operations:
            budget.spend(1)
        with pytest.raises(budget.BudgetExceeded) as characters:
            budget.build(1)
    finally:
        budget.stop()
    assert str(operations.value) == "evaluation budget exceeded (more than 1,500 operations)"
    assert str(characters.value) == "evaluation budget exceeded (built more than 2,500 characters)"
    budget.spend(10**9)  # outside a metered rule nothing is refused
    budget.build(10**9)


def test_the_meter_is_per_thread(small_budget: None) -> None:
    """The SDK evaluates from several threads: one thread's spending, or its start and stop,
    never reaches another's."""
    started, spent = threading.Event(), threading.Event()
    seen: list[str] = []

    def other() -> None:
        budget.start()
        try:
            budget.spend(900)
            budget.build(900)
            started.set()
            assert spent.wait(10)
            budget.spend(100)  # the main thread's spending is not this thread's: 100 left
            budget.build(100)
            seen.append("within")
            budget.spend(1)
        except budget.BudgetExceeded as exc:
            seen.append(str(exc))
        finally:
            budget.stop()

    worker = threading.Thread(target=other)
    worker.start()
    try:
        assert started.wait(10)
        budget.spend(10**9)  # this thread never started a metered rule: unmetered
        budget.start()
        budget.spend(1_000)
        budget.build(1_000)
        spent.set()
    finally:
        budget.stop()
        spent.set()
        worker.join(10)
    assert seen == ["within", "evaluation budget exceeded (more than 1,000 operations)"]
