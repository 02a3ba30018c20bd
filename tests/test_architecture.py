"""The package's shape: layers point down, no import cycle, no oversized module,
no references to material outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "gempy_gravinv"
MAX_LINES = 600

# Layer of each top-level module or subpackage; a module may import only from its own
# layer or lower ones. A new top-level module must be placed here (docs/architecture.md).
LAYERS = {
    "_constants": 0, "_validation": 0, "_json": 0,
    "_kernels": 1, "_components": 1, "_lattice": 1, "_mesh": 1, "_mesh_design": 1, "_survey": 1, "_ground": 1,
    "_plausible": 1,
    "_operator": 2, "_multi": 2, "_device": 2, "_runtime": 2, "_forward": 2, "_distributed": 2, "io": 2,
    "metrics": 3, "density": 3, "geomodel": 3,
    "inversion": 4, "bayes": 4, "simpeg": 4,
    "cases": 5,
    "output": 6, "plotting": 6,
    "compare": 7, "gempy_view": 7, "benchmark": 7,
    "cli": 8, "__main__": 8, "": 8,  # "" is the package itself (its public facade)
}
# Edges forbidden although they point down (the inversion layer writes no files).
FORBIDDEN = {("inversion", "output"), ("inversion", "plotting"), ("density", "bayes"),
             ("density", "cli"), ("density", "cases")}


def _modules() -> dict[str, tuple[Path, list[str]]]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            pkg = parts
        else:
            pkg = parts[:-1]
        mods[".".join(parts)] = (p, pkg)
    return mods


def _graph() -> dict[str, set[str]]:
    """Module -> modules of the package it imports (at any level: functions included)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, pkg) in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg[: len(pkg) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    cand = f"{target}.{alias.name}"
                    deps.add(cand if cand in mods else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_cycle_even_inside_functions():
    assert _cycles(_graph()) == []


def test_every_module_has_a_layer():
    unknown = sorted({_top(m) for m in _modules()} - set(LAYERS))
    assert not unknown, f"place these in LAYERS (and docs/architecture.md): {unknown}"


def test_imports_point_down_the_layers():
    bad = []
    for mod, deps in _graph().items():
        a = _top(mod)
        for dep in deps:
            b = _top(dep)
            if a == b:
                continue
            if LAYERS.get(b, 99) > LAYERS.get(a, -1) or (a, b) in FORBIDDEN:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def test_the_checks_catch_a_cycle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert LAYERS["inversion"] < LAYERS["output"] and ("inversion", "plotting") in FORBIDDEN


_CITATION = re.compile("|".join([r"\b[Ii]ssue\s*#?\d+", r"\b[Ss]tops?\s+\d+\b", "DESIGN" + r"\.md",
                                 r"\.\./" + "shared"]))


@pytest.mark.parametrize("folder", ["gempy_gravinv", "docs", "examples", "benchmarks", "tests"])
def test_repository_stands_alone(folder):
    hits = []
    for p in sorted((ROOT / folder).rglob("*")):
        if p.suffix not in (".py", ".md") or p.name == Path(__file__).name:
            continue
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if _CITATION.search(line):
                hits.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not hits, "references to issues, stops or files outside the repository:\n" + "\n".join(hits)
