"""Every module of fedlab imports, and no two modules import each other, directly or through others.

The import graph is read from the source (every ``import`` statement, including those inside functions and
``if TYPE_CHECKING:`` blocks), so a cycle that happens not to break at run time is found too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fedlab"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """fedlab modules that ``module`` imports anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


MODULES = _modules()


def _needs_flower(path: Path) -> bool:
    """The module calls fedlab.deploy.require_flower() on import (Flower is an optional extra)."""
    return "\nrequire_flower()\n" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports(module: str) -> None:
    from fedlab.deploy import flower_available

    if _needs_flower(MODULES[module]) and not flower_available():
        with pytest.raises(ImportError, match=r"fedlab-med\[flower\]"):
            importlib.import_module(module)
        return
    importlib.import_module(module)


def test_no_import_cycles() -> None:
    known = set(MODULES)
    graph = {m: _imports(m, p, known) for m, p in MODULES.items()}
    assert graph["fedlab.data.manifest_tables"] >= {"fedlab.data.manifest", "fedlab.data.report"}  # the reader works
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
