"""Where to split what is left of a sorted key range so that each part holds about one page.

A load reads an environment's flags from an index sorted by flag key, one page (1 MB) at a time,
and wants the pages after the first at once.  DynamoDB gives a page's continuation only with the
page, so the split has to be guessed: a page that held the keys from `first` to `last` shows how
much of the key space one page's worth of keys spans, and the next parts are taken that wide.

Splitting at fixed first characters (the earlier way) read nothing in parallel for the usual key
sets, whose keys share a prefix (`checkout-...`, `flag-0001`...): every key fell in one range,
and the other ranges were queries that found nothing.  Measuring the span past the prefix the
page's keys share puts the bounds among the keys.

Keys are measured as numbers in a mixed radix: each of the `WINDOW` characters after the shared
prefix is a digit whose alphabet is what the page's keys hold at that place, widened to whole
classes (any digit stands for 0-9, a lower-case letter for a-z...), with 0 for "the key has
ended".  So `flag-0999` is followed by `flag-1000` (not by `flag-09:`, which no key reaches), and
a number at the end of the shared prefix (`flag-00` of `flag-000`...`flag-009`) is counted on
into.  Letters in the prefix stay fixed: past the last key they could spell, there is no bound,
and the rest is read a page at a time.  A bound is only a guess: the ranges between bounds still
cover every key, however the keys really lie.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TypeVar

DIGITS = "0123456789"
CLASSES = (DIGITS, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
T = TypeVar("T")
WINDOW = 6
"""Characters past the shared prefix that the measure reads (the rest only orders keys)."""
SAMPLE = 256
"""Keys of a page that `sampled` keeps: a 1 MB page holds thousands, a sample shows the same
alphabets, and the load's work on the event loop stays small (10,000 keys: 20 ms, 0.7 ms)."""


def _shared_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _widened(char: str) -> str:
    for members in CLASSES:
        if char in members:
            return members
    return char


class _Radix:
    """The mixed radix of the places after `prefix`: one alphabet per place, and a digit for
    "ended" only at a place where some of the page's keys have ended (so fixed-width numbers
    count as decimals: `flag-09` is followed by `flag-10`, not by `flag-1`)."""

    def __init__(self, prefix: str, keys: Sequence[str]) -> None:
        self.prefix = prefix
        self.places: list[tuple[str, int]] = []  # (alphabet, 1 if "ended" is a digit there)
        self.top = 1
        for place in range(len(prefix), len(prefix) + WINDOW):
            chars: set[str] = set()
            ends = 0
            for key in keys:
                if place < len(key):
                    chars.update(_widened(key[place]))
                else:
                    ends = 1
            alphabet = "".join(sorted(chars))
            self.places.append((alphabet, ends))
            self.top *= len(alphabet) + ends

    def value(self, key: str) -> int:
        value = 0
        for offset, (alphabet, ends) in enumerate(self.places):
            place = len(self.prefix) + offset
            digit = 0  # the key has ended
            if place < len(key):
                digit = max(ends, bisect.bisect_right(alphabet, key[place]) - 1 + ends)
            value = value * (len(alphabet) + ends) + digit
        return value

    def text(self, value: int) -> str:
        digits = []
        for alphabet, ends in reversed(self.places):
            value, digit = divmod(value, len(alphabet) + ends)
            digits.append(digit)
        chars = []
        for digit, (alphabet, ends) in zip(reversed(digits), self.places, strict=True):
            if ends and digit == 0:  # the key ends here: nothing after it counts
                break
            chars.append(alphabet[digit - ends])
        return self.prefix + "".join(chars)


def past_prefix(prefix: str) -> str:
    """The least string past every string that starts with `prefix`: `prefix` with its last
    character one higher (`FLAG#` -> `FLAG$`).  A range from `prefix` to it holds every key with
    the prefix however it goes on (DynamoDB orders strings by their UTF-8 bytes, which is code
    point order, as Python does); a bound made of the prefix and some "highest" character holds
    only the keys that sort before it, and a key past it would silently fall out of the range.
    A last character at the top of Unicode is dropped and the one before it raised instead."""
    chars = prefix
    while chars:
        point = ord(chars[-1]) + 1
        if 0xD800 <= point <= 0xDFFF:  # surrogates are no characters of UTF-8 text
            point = 0xE000
        if point <= 0x10FFFF:
            return chars[:-1] + chr(point)
        chars = chars[:-1]
    raise ValueError(f"no string sorts past every string starting with {prefix!r}")


def sampled(page: Sequence[T]) -> list[T]:
    """About `SAMPLE` of `page`, its first and last among them, in order: what `bounds_after`
    needs to read of a page."""
    return [*page[:: max(1, len(page) // SAMPLE)], page[-1]]


def bounds_after(keys: Sequence[str], count: int) -> list[str]:
    """Up to `count` keys past the last of `keys` (a page's keys in order, or a `sampled` few of
    them), ascending, each about as far past the one before it as the page's last key is past its
    first: the bounds of parts holding about a page each, if the keys go on as densely.  None
    when the page tells no width (one key) or the prefix's keys end first."""
    first, last = keys[0], keys[-1]
    shared = _shared_prefix(first, last)
    radix = _Radix(shared[: len(shared.rstrip(DIGITS))], keys)
    width = radix.value(last) - radix.value(first)
    bounds: list[str] = []
    at = radix.value(last)
    while width > 0 and len(bounds) < count:
        at += width
        if at >= radix.top:
            break
        bound = radix.text(at)
        if bound > (bounds[-1] if bounds else last):
            bounds.append(bound)
    return bounds
