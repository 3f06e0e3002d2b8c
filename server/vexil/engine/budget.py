"""Bounded work: the limits a rule must fit when compiled and the budget each evaluation spends.

A rule harmless in itself can be made expensive by the caller's context (a `reduce` over an array
the caller sends) or by its own shape (iterators nested in iterators, a `cat` that doubles its
accumulator).  Evaluation runs on the server's event loop, so one such call would stall every
other.  Two guards:

- Compile-time limits (`MAX_NODES`, `MAX_LITERAL_ARRAY`, `MAX_LOOP_NESTING`): a definition over
  them is refused with `FlagValidationError` naming the path, like any other mistake.
- A run-time budget per evaluation, spent only where work can grow with the data: each run of an
  iterator (`map`, `filter`, `reduce`, `all`, `some`, `none`) costs its element count times the
  size of its sub-rule in *operations*; `merge`, `in` over a computed array and building arrays
  cost their length; `cat` and `substr` cost the length of the string they build in
  *characters*.  A rule with none of these sites is not metered at all, so static and simple
  rules cost exactly what they did.  Overspending raises `BudgetExceeded`, which `evaluate`
  turns into an ERROR resolution ("evaluation budget exceeded").

The meter is thread-local (the client SDK may evaluate from several threads), filled at the root
of every metered rule and emptied of limits when it returns (see `rules.compile_rule`), so
nothing leaks from one evaluation to the next, and a charge made outside a metered evaluation
(a `to_string` of an array in a rule with no loop, constant folding) never refuses anything.
The defaults allow a few milliseconds of work (`make bench` measures the costliest rules found,
about 5 ms on a loaded 2-core machine); `configure` changes them per process.
"""

from __future__ import annotations

import threading

MAX_NODES = 10_000
"""Most operator and value nodes one rule may compile to (`$ref`s counted where they expand).
A literal array of plain values counts as one node (it is one set or list once compiled)."""
MAX_LITERAL_ARRAY = 100_000
"""Most elements of one array written in a rule (an allow-list of 50,000 ids fits)."""
MAX_LOOP_NESTING = 2
"""Most iterators (`map`, `filter`, `reduce`, `all`, `some`, `none`) nested inside each other."""
MAX_INT_BITS = 4096
"""Largest integer arithmetic may produce (JSON numbers are doubles: nothing real comes close)."""

DEFAULT_OPERATIONS = 20_000
"""Operations one evaluation may spend: a few ms of the most expensive kind found (printing
arrays, failed number parses), well under 10 ms."""
DEFAULT_CHARACTERS = 1_000_000
"""Characters of strings (and elements of arrays) one evaluation may build."""

EXCEEDED = "evaluation budget exceeded"


class BudgetExceeded(Exception):
    """An evaluation spent more than its budget; `evaluate` answers ERROR with this message."""


_UNMETERED = 1 << 62

_limits = [DEFAULT_OPERATIONS, DEFAULT_CHARACTERS]
"""The per-evaluation budget, (operations, characters): one for the process, not per thread."""


class _Allowance(threading.local):
    """What the metered rule running on this thread has left of one unit of the budget."""

    left = _UNMETERED

    def __init__(self, unit: int, overspent: str) -> None:
        self.unit = unit
        """Index of this unit's limit in `_limits`."""
        self.overspent = overspent
        """What `BudgetExceeded` says went over, given that limit."""

    def charge(self, amount: int) -> None:
        """Take `amount` off what is left; going below zero raises `BudgetExceeded` naming the limit."""
        left = self.left - amount
        self.left = left
        if left < 0:
            raise BudgetExceeded(f"{EXCEEDED} ({self.overspent.format(_limits[self.unit])})")


_operations = _Allowance(0, "more than {:,} operations")
_characters = _Allowance(1, "built more than {:,} characters")


def configure(*, operations: int = DEFAULT_OPERATIONS, characters: int = DEFAULT_CHARACTERS) -> None:
    """Set the per-evaluation budget for this process (the server calls it from its settings)."""
    if operations < 1 or characters < 1:
        raise ValueError("an evaluation budget is at least 1")
    _limits[:] = [operations, characters]


def limits() -> tuple[int, int]:
    """The per-evaluation budget in force: (operations, characters)."""
    return _limits[0], _limits[1]


def start() -> None:
    """A metered rule begins: a full budget."""
    _operations.left, _characters.left = _limits


def stop() -> None:
    """A metered rule has returned (or raised): charges outside one are not limited."""
    _operations.left = _characters.left = _UNMETERED


spend = _operations.charge
"""`spend(operations)`: charge operations; raises `BudgetExceeded` when the evaluation has none left."""
build = _characters.charge
"""`build(characters)`: charge building characters of string (or elements of array)."""
