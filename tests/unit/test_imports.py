"""The service's module graph: no import circle, and the core's edges where the design
puts them. Read from the source with `ast`, so an import hidden behind TYPE_CHECKING or
inside a function counts too: a circle there still ties the modules together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "service"
PACKAGE = "eucgate"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in (ROOT / PACKAGE).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from package import module` depends on that module, not on the
                # package's __init__ (as import-linter and pydeps read it too).
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_service_has_no_import_circle() -> None:
    assert _cycles(_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        # The check registry stands between the bundle schema and the rules.
        ("eucgate.core.checks", "eucgate.core.bundle"),
        ("eucgate.core.checks", "eucgate.core.rules"),
        ("eucgate.core.bundle", "eucgate.core.checks"),
        ("eucgate.core.bundle", "eucgate.core.rules"),
    ],
)
def test_core_edges(module: str, forbidden: str) -> None:
    imported = _graph()[module]
    assert not {m for m in imported if m == forbidden or m.startswith(forbidden + ".")}


def test_the_core_imports_nothing_above_it() -> None:
    graph = _graph()
    for module, imported in graph.items():
        if module.startswith("eucgate.core"):
            upward = {m for m in imported if not m.startswith("eucgate.core")}
            # eucgate.errors is the one shared module below every layer.
            assert upward <= {"eucgate.errors", "eucgate"}, (module, upward)
