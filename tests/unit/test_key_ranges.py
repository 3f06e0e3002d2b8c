"""`key_ranges.bounds_after`: where a load splits the keys after a page into parts read at once.

What the bounds must do is stated here independently of how they are computed: every bound lies
past the page and above the one before it, and for key sets as flags are named, each part
between two bounds holds about as many keys as the page did (no part empty, none many pages
long).
"""

from __future__ import annotations

import itertools
import random
import string
from bisect import bisect_right

import pytest

from vexil.store.key_ranges import bounds_after, past_prefix, sampled

PARTS = 3


def numbered(count: int, width: int, prefix: str = "flag-") -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def words(count: int, prefix: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    return sorted({prefix + "".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(count)})


def parts(keys: list[str], page: int) -> list[int]:
    """Keys in each part after the first `page` keys: (last of the page, bound 1], (bound 1,
    bound 2]... (a key equal to a bound is read by both of the parts it bounds: counted once),
    and last the keys past the last bound (read the same way, a page first)."""
    bounds = bounds_after(keys[:page], PARTS)
    edges = [keys[page - 1], *bounds]
    held = [bisect_right(keys, hi) - bisect_right(keys, lo) for lo, hi in itertools.pairwise(edges)]
    return [*held, len(keys) - bisect_right(keys, edges[-1])]


@pytest.mark.parametrize(
    ("keys", "page"),
    [
        (numbered(10_000, 4), 2_505),  # as the 1 MB pages of the benchmark's 10,000 flags fall
        (numbered(120, 3), 10),
        (numbered(50_000, 5), 2_500),
        (words(4_000, "checkout-", 1), 400),
        (words(4_000, "", 2), 400),
    ],
    ids=["flag-0000", "flag-000", "flag-00000", "checkout-words", "words"],
)
def test_each_part_holds_about_a_page(keys: list[str], page: int) -> None:
    *held, rest = parts(keys, page)
    assert all(page / 2 <= n <= page * 3 / 2 for n in held), held
    assert len(held) == PARTS or rest <= page * 3 / 2, (held, rest)  # fewer only at the end


@pytest.mark.parametrize("keys", [numbered(10_000, 4), words(4_000, "checkout-", 1), words(4_000, "", 2)])
def test_a_sample_of_a_page_gives_the_bounds_the_whole_page_gives(keys: list[str]) -> None:
    page = keys[:2_500]
    sample = sampled(page)
    assert len(sample) < 300 and sample[0] == page[0] and sample[-1] == page[-1]
    assert bounds_after(sample, PARTS) == bounds_after(page, PARTS)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (["a", "b"], ["c", "d", "e"]),  # one letter apart: one letter further each time
        (["flag-1", "flag-2"], ["flag-3", "flag-4", "flag-5"]),
        (["flag-07", "flag-08"], ["flag-09", "flag-10", "flag-11"]),  # a number counts on
        (["a"], []),  # one key tells no width
        (["x", "x"], []),
        (["zx", "zy", "zz"], []),  # past "zz" no letter follows "z": the prefix's keys end
    ],
)
def test_bounds_of_small_pages(page: list[str], expected: list[str]) -> None:
    assert bounds_after(page, PARTS) == expected


def test_bounds_lie_past_the_page_in_order_whatever_the_keys() -> None:
    """Keys written by hand may hold any character; the bounds are then only guesses, but still
    past the page and ascending, so the parts between them cover each key once."""
    rng = random.Random(7)
    alphabet = string.printable.strip() + "éß☃"
    for _ in range(500):
        keys = sorted(
            {"".join(rng.choices(alphabet, k=rng.randint(1, 9))) for _ in range(rng.randint(1, 40))}
        )
        page = keys[: rng.randint(1, len(keys))]
        bounds = bounds_after(page, PARTS)
        assert len(bounds) <= PARTS
        assert all(a < b for a, b in itertools.pairwise([page[-1], *bounds])), (page, bounds)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("FLAG#", "FLAG$"),  # '#' is U+0023, '$' U+0024
        ("a\U0010ffff", "b"),  # nothing follows the last code point: raise the one before
        ("a\ud7ff", "a\ue000"),  # surrogates are no characters of UTF-8 text
    ],
)
def test_past_prefix_is_the_prefix_with_its_last_character_raised(prefix: str, expected: str) -> None:
    assert past_prefix(prefix) == expected


def test_past_prefix_sorts_after_every_key_with_the_prefix_in_utf8_byte_order() -> None:
    """DynamoDB orders string keys by their UTF-8 bytes: every key a hand-written item can hold
    after the prefix, `~` and past it included, must fall in the range prefix..past_prefix."""
    prefix = "FLAG#"
    upper = past_prefix(prefix).encode()
    for rest in ["", "~", "~~~", "フラグ", "a b", "a#b", "a\x00b", "k" * 2000, "\U0010ffff" * 5, "\x7f"]:
        key = (prefix + rest).encode()
        assert prefix.encode() <= key < upper, rest
