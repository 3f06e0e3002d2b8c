"""The engine's two failure kinds: definitions it refuses, and rules that fail while running.

A definition is checked once, when it is compiled, so that a mistake is reported to the person
who wrote it (the admin API answers INVALID_ARGUMENT) instead of to every caller at evaluation
time.  Failures that can only be known per evaluation never escape `evaluate`: they become ERROR
resolutions.
"""

from __future__ import annotations


class FlagValidationError(ValueError):
    """A flag definition the engine will not compile.

    `path` names the offending part of the definition in flagd's JSON vocabulary, for example
    `targeting.if[0].fractional[1]`, `variants.blue` or `defaultVariant`; `message` says what is
    wrong and how to fix it.  `str()` of the error is `"<path>: <message>"`.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


class RuleParseError(Exception):
    """Raised while a rule runs when it uses an operator the engine does not know.

    Only reachable for flags compiled with `strict=False` (the reference's behaviour: an unknown
    operator is reported as PARSE_ERROR when, and only when, evaluation reaches it).
    """


class RuleFailure(Exception):
    """Raised while a rule runs by an operator that knows what went wrong and where, in the
    rule's own terms (`division by zero in targeting at targeting.if[0]./`)."""


_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (ZeroDivisionError, "division by zero"),
    (OverflowError, "a number too large to compute with"),
    (RecursionError, "the rule is nested too deeply"),
    (MemoryError, "the rule needs too much memory"),
    (TypeError, "an operator got a value of a type it cannot use"),
    (ValueError, "an operator got a value it cannot use"),
)


def describe_failure(exc: BaseException) -> str:
    """What failed, for the caller's error message: the rule's terms, never Python's (no
    exception class names or interpreter hints, which say nothing to a flag's author)."""
    if isinstance(exc, RuleFailure):
        return str(exc)
    for kind, text in _FAILURES:
        if isinstance(exc, kind):
            return f"{text} in targeting"
    return "an unexpected failure in targeting"
