"""The import graph keeps its direction: the core never depends on a door into it.

The core (the service, cache, snapshots, engine, stores, hub, model, errors and who is calling)
must run under any transport, so it may not import the gRPC adapters (`vexil.api`), the HTTP side
(`vexil.http`) or the CLI (`vexil.cli`), not even inside a function or under TYPE_CHECKING, nor
load gRPC or aiohttp through any module. The protocol adapters are leaves: only the composition
root (`vexil.app`) wires them, so anything two adapters (or an adapter and the HTTP side, the CLI
or the SDK) share lives outside `vexil.api`.

The graph is read from the source with `ast`, so every import statement counts, wherever it is.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Where each part of the `vexil` namespace lives (pyproject.toml's package-dir).
PACKAGE_DIRS = {
    "vexil": ROOT / "server" / "vexil",
    "vexil.cli": ROOT / "clients" / "cli",
    "vexil.client": ROOT / "clients" / "python",
    "vexil.openfeature": ROOT / "clients" / "openfeature",
}
GENERATED = ("vexil.v1", "vexil.flagd")

CORE = (
    "vexil.service",
    "vexil.cache",
    "vexil.snapshot",
    "vexil.engine",
    "vexil.store",
    "vexil.hub",
    "vexil.model",
    "vexil.errors",
    "vexil.identity",
)
DOORS = ("vexil.api", "vexil.http", "vexil.cli")
ADAPTERS = "vexil.api"
COMPOSITION_ROOT = "vexil.app"
TRANSPORT_LIBRARIES = ("grpc", "grpc_health", "grpc_reflection", "grpc_status", "aiohttp")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str
    """file:line of the import statement."""

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({self.where})"


def _within(module: str, parts: tuple[str, ...] | str) -> bool:
    names = (parts,) if isinstance(parts, str) else parts
    return any(module == name or module.startswith(name + ".") for name in names)


def _modules() -> dict[str, Path]:
    """Every hand-written module of the namespace, by dotted name (packages by their __init__)."""
    found: dict[str, Path] = {}
    for package, directory in PACKAGE_DIRS.items():
        for path in sorted(directory.rglob("*.py")):
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            if name in found or _within(name, GENERATED):
                continue  # a sub-package mapped elsewhere (vexil.cli) is read from its own dir
            found[name] = path
    return found


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(module: str, path: Path, known: set[str]) -> list[Edge]:
    """What `module` imports: every statement, at any depth of the tree."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    edges = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            # `from vexil import identity` imports the module vexil.identity, not just the package.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        edges += [Edge(module, t, where) for t in targets]
    return list(dict.fromkeys(edges))


def _graph() -> dict[str, list[Edge]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


GRAPH = _graph()


def _runs(target: str) -> list[str]:
    """Importing `vexil.a.b` also runs the packages above it (`vexil.a`'s __init__)."""
    parts = target.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 1, -1)]


def test_the_graph_is_read_from_the_source() -> None:
    """Guards against a check that passes because it reads nothing."""
    assert any(e.target == "vexil.model" for e in GRAPH["vexil.service"]), GRAPH["vexil.service"]
    for name in (*CORE, *DOORS, COMPOSITION_ROOT):
        assert any(_within(m, name) for m in GRAPH), f"no module {name} in the source tree"


def test_the_core_imports_no_door() -> None:
    offending = [
        str(edge)
        for module, edges in GRAPH.items()
        if _within(module, CORE)
        for edge in edges
        if _within(edge.target, DOORS)
    ]
    assert not offending, "the core imports a door (api, http or cli):\n" + "\n".join(offending)


def _reaches(forbidden: tuple[str, ...]) -> list[str]:
    """Each chain of imports by which a core module gets to a `forbidden` module."""
    paths = []
    named: set[tuple[str, str]] = set()
    for start in sorted(m for m in GRAPH if _within(m, CORE)):
        previous: dict[str, Edge | None] = {start: None}
        queue = deque([start])
        while queue:
            for edge in GRAPH[queue.popleft()]:
                if _within(edge.target, forbidden):
                    if (start, edge.target) in named:
                        continue  # one chain (the shortest) per core module and target is enough
                    named.add((start, edge.target))
                    chain = [str(edge)]
                    step = previous[edge.source]
                    while step is not None:
                        chain.append(str(step))
                        step = previous[step.source]
                    paths.append(f"{start} reaches {edge.target}:\n    " + "\n    ".join(reversed(chain)))
                    continue
                for target in _runs(edge.target):
                    if target in GRAPH and target not in previous:
                        # A package above the target runs too: say so in the chain.
                        package = f"{edge.where}, package of {edge.target}"
                        previous[target] = (
                            edge if target == edge.target else Edge(edge.source, target, package)
                        )
                        queue.append(target)
    return paths


def test_the_core_reaches_no_door_through_other_modules() -> None:
    """An edge via a helper module (core -> x -> api) drags the door in just the same."""
    paths = _reaches(DOORS)
    assert not paths, "the core reaches a door:\n" + "\n".join(paths)


def test_the_core_loads_no_transport_library() -> None:
    """The core runs the same under any transport: it never loads gRPC or aiohttp, even through
    a vexil module (the caller's identity once lived in a module that imported grpc)."""
    paths = _reaches(TRANSPORT_LIBRARIES)
    assert not paths, "the core loads a transport library:\n" + "\n".join(paths)


def test_only_the_composition_root_imports_the_protocol_adapters() -> None:
    offending = [
        str(edge)
        for module, edges in GRAPH.items()
        if module != COMPOSITION_ROOT
        for edge in edges
        if _within(edge.target, ADAPTERS)
    ]
    assert not offending, (
        "only vexil.app may import a protocol adapter; move what is shared out of vexil.api:\n"
        + "\n".join(offending)
    )
