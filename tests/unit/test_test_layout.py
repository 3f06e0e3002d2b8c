"""Tests share fixtures, not each other's modules.

A helper that lives in one test module and is imported by another couples the two: renaming or
deleting a test breaks an unrelated folder, and the same helper gets written again elsewhere
because nobody looks for it in a test file.  Shared helpers therefore live in `tests/support`, and
a folder's fixtures in its own conftest.py, which pytest loads (never imported by hand).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
SUPPORT = "tests.support"


def package_of(path: Path) -> str:
    """The package a module file belongs to (what its relative imports start from)."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """Every module `source` (a module of `package`) imports, at any depth of its code; relative
    imports made absolute."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                if node.module:
                    found.append((node.lineno, f"{prefix}.{node.module}"))
                else:  # `from . import x`: x is a module of that package
                    found += [(node.lineno, f"{prefix}.{alias.name}") for alias in node.names]
            else:
                assert node.module is not None
                found.append((node.lineno, node.module))
    return found


def crossings(source: str, package: str, where: str) -> list[str]:
    """The imports of another test module (anything under tests/ but tests/support)."""
    out = []
    for lineno, name in imported_modules(source, package):
        if name != "tests" and not name.startswith("tests."):
            continue
        if name == SUPPORT or name.startswith(SUPPORT + "."):
            continue
        out.append(f"{where}:{lineno}: imports {name}")
    return out


def test_the_import_reader_sees_every_form_of_import() -> None:
    """The checker itself: each way of reaching another test module is reported, support is not."""
    probe = (
        "import tests.flagd.harness\n"
        "from tests.ops.support import vexil\n"
        "from .strategies import PATHS\n"
        "from . import jscore\n"
        "from ..client import conftest\n"
        "from tests.support.servers import free_port\n"
        "import tests.support.pki\n"
        "def later():\n"
        "    from tests.integration.test_lifecycle import bool_flag\n"
    )
    found = crossings(probe, "tests.engine", "probe.py")
    assert [line.split(": imports ")[1] for line in found] == [
        "tests.flagd.harness",
        "tests.ops.support",
        "tests.engine.strategies",
        "tests.engine.jscore",
        "tests.client",
        "tests.integration.test_lifecycle",
    ]


def test_no_test_module_imports_another_outside_support() -> None:
    modules = [p for p in sorted(TESTS.rglob("*.py")) if p.relative_to(TESTS).parts[0] != "support"]
    assert len(modules) > 100  # the walk found the suite (not an empty folder)
    found = [
        line
        for path in modules
        for line in crossings(path.read_text(encoding="utf-8"), package_of(path), str(path.relative_to(ROOT)))
    ]
    assert not found, (
        "test modules import other test modules; move the shared helper to tests/support "
        "(or the fixture to the folder's conftest.py):\n" + "\n".join(found)
    )
