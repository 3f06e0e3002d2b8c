"""The types of the CLI's numeric options: every `type=` of a number comes from here.

A number outside what the option can mean (a negative version, one beyond the uint64 the request
carries, a timeout that is negative, zero, NaN or longer than gRPC can wait) is refused while the
command line is parsed, as a usage error naming the option and the allowed range (exit 2), never
sent on to fail as a traceback or as a misleading status from the server.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
DAY = 86400.0


def whole(least: int = 0, most: int = UINT64_MAX) -> Callable[[str], int]:
    """An integer from `least` to `most` (default: what a uint64 field of a request holds)."""

    def parse(text: str) -> int:
        refused = argparse.ArgumentTypeError(
            f"must be a whole number from {least} to {most}, not {text[:40]!r}"
        )
        try:
            value = int(text)
        except ValueError:  # not a number, or one of more digits than int() reads
            raise refused from None
        if not least <= value <= most:
            raise refused
        return value

    return parse


def positive(most: float = math.inf) -> Callable[[str], float]:
    """A finite number of more than 0 (and at most `most`)."""
    allowed = "more than 0" + (f" and at most {most:g}" if most < math.inf else "")
    return _number(lambda value: 0 < value <= most, allowed)


def non_negative(most: float = math.inf) -> Callable[[str], float]:
    """A finite number of 0 or more (and at most `most`)."""
    allowed = f"from 0 to {most:g}" if most < math.inf else "of 0 or more"
    return _number(lambda value: 0 <= value <= most, allowed)


def _number(within: Callable[[float], bool], allowed: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and within(value)):
            raise argparse.ArgumentTypeError(f"must be a number {allowed}, not {text[:40]!r}")
        return value

    return parse
