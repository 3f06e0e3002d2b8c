"""Reports how many comparisons with the reference the engine tests made in this run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import jscore, reference
from tests.support.reference import CASES, FRACTIONAL, RULES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES["count"] or RULES["cases"]:
        terminalreporter.write_line(
            f"engine vs reference: {CASES['count']:,} flag resolutions (flag x context x type) and "
            f"{RULES['cases']:,} rule evaluations compared"
        )
    if FRACTIONAL["js"] or FRACTIONAL["python"]:
        terminalreporter.write_line(
            f"fractional: {FRACTIONAL['js']:,} resolutions compared with the JavaScript core (string "
            f"hashing), {FRACTIONAL['python']:,} with the Python core (CBOR hashing)"
        )


@pytest.fixture(scope="session")
def js_core() -> Any:
    """The JavaScript flagd core, installed from tests/js/package-lock.json (cached)."""

    jscore.install()
    return jscore


@pytest.fixture
def flagd_reference() -> Iterator[None]:
    """flagd's coercions and the reference's stopped clock around a whole test of comparisons,
    patched once (`reference.flagd_reference`); not for tests that also ask the Python core's
    own answer."""
    with reference.flagd_reference():
        yield
