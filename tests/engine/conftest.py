"""Reports how many comparisons with the reference the engine tests made in this run."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from .test_differential import CASES
    from .test_expressions import COUNT

    if CASES["count"] or COUNT["cases"]:
        terminalreporter.write_line(
            f"engine vs reference: {CASES['count']:,} flag resolutions (flag x context x type) and "
            f"{COUNT['cases']:,} rule evaluations compared"
        )
