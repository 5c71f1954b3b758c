"""The import graph of reprolib (every import, module-level or inside a function): no circles;
``evals`` imports nothing from ``zoo``; no library module imports the book builder."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "reprolib"


def _module(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and t.startswith("reprolib"):
                    graph[name].add(t)
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_known_edges():
    g = import_graph()
    assert "reprolib.merge.registry" in g["reprolib.kit.scorer"]
    assert "reprolib.evals.suite" in g["reprolib.kit.scorer"]


def test_no_import_circles():
    assert _cycles(import_graph()) == []


def test_evals_import_nothing_from_zoo():
    g = import_graph()
    bad = {m: sorted(t for t in deps if t.startswith("reprolib.zoo")) for m, deps in g.items() if m.startswith("reprolib.evals")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_no_library_module_imports_the_book_builder():
    g = import_graph()
    allowed = {"reprolib.cli", "reprolib.book", "reprolib.__main__", "reprolib.stages"}   # entry points
    assert sorted(m for m, deps in g.items() if "reprolib.book" in deps and m not in allowed) == []
