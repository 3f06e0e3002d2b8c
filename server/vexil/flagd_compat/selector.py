"""Which environment a flagd or OFREP caller means, for callers that know nothing of vexil.

flagd selects a flag set with the `flagd-selector` request header (`flagSetId=<name>`); its sync
protocol also has a deprecated `selector` request field.  vexil reads an environment from either
(the header wins), and also accepts a bare name (`prod`).  Without a selector, the credentials'
environment applies (a key scoped to one environment), else the server's default environment.

Problems with a selector are FAILED_PRECONDITION, not INVALID_ARGUMENT or NOT_FOUND: flagd
providers read those two codes as TYPE_MISMATCH and FLAG_NOT_FOUND, which would hide that the
client is pointed at an environment this server does not serve.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vexil import identity
from vexil.errors import (
    EnvironmentNotAllowed,
    InvalidSelector,
    NotFound,
)
from vexil.service import FlagService

SELECTOR_HEADER = "flagd-selector"
SELECTOR_KEY = "flagSetId"


def parse_selector(selector: str) -> str:
    """The environment a selector names, "" when it names none.

    Accepted: `flagSetId=<env>` (flagd's form; repeating the same pair is harmless) or `<env>`.
    flagd's other selector keys (`source=...`) name flag sources vexil does not have, so a
    selector using them is refused instead of silently serving some other environment.
    """
    text = selector.strip()
    if not text:
        return ""
    if "=" not in text and "," not in text:
        return text
    chosen = ""
    for part in text.split(","):
        key, sep, value = (item.strip() for item in part.partition("="))
        if not sep or key != SELECTOR_KEY or not value:
            raise InvalidSelector(
                f"selector '{text[:100]}' is not understood: use '{SELECTOR_KEY}=<environment>' "
                "or just '<environment>'"
            )
        if chosen and value != chosen:
            raise InvalidSelector(f"selector '{text[:100]}' names more than one environment")
        chosen = value
    return chosen


def check_header_text(value: str) -> None:
    """Refuse a selector header that is not UTF-8 text (aiohttp hands such bytes over as surrogate
    escapes), showing its bytes, rather than match it against environment names or echo it as
    text no encoder can write."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise InvalidSelector(f"selector '{shown[:100]}' is not UTF-8 text") from None


def parse_selector_headers(values: Sequence[str]) -> str:
    """The environment an HTTP request's `flagd-selector` headers name, "" when they name none.

    A header sent more than once is one selector, as HTTP has it: every value must name the same
    environment, as the pairs of one value must, or the request is refused.
    """
    for value in values:
        check_header_text(value)
    chosen = ""
    for value in values:
        name = parse_selector(value)
        if name and chosen and name != chosen:
            sent = ", ".join(f"'{item[:100]}'" for item in values)
            raise InvalidSelector(
                f"the {SELECTOR_HEADER} header, sent {len(values)} times ({sent}), "
                "names more than one environment"
            )
        chosen = chosen or name
    return chosen


def select_environment(service: FlagService, selector: str = "") -> str:
    """The served environment the caller means (see the module docstring for the rules)."""
    return served_environment(service, parse_selector(selector))


def served_environment(service: FlagService, name: str) -> str:
    """The served environment `name` (parsed from a selector, "" for none) means for this caller."""
    try:
        environment = service.environment(name)
    except NotFound as exc:
        raise InvalidSelector(exc.message) from None
    principal = identity.current_principal.get()
    allowed = principal.environments if principal is not None else None
    if allowed is not None and environment not in allowed:
        raise EnvironmentNotAllowed(f"these credentials may not read environment '{environment}'")
    return environment


def header_selector(metadata: Iterable[tuple[str, str]] | None) -> str:
    """The environment a gRPC call's `flagd-selector` metadata names, "" when it names none: every
    value of it, read as an HTTP request's headers are (`parse_selector_headers`)."""
    return parse_selector_headers([value for key, value in metadata or () if key.lower() == SELECTOR_HEADER])
