"""The nesy package stays in small modules without import cycles (function-local imports too)."""
from __future__ import annotations

import ast
from pathlib import Path

import cnnlens.nesy

PKG = Path(cnnlens.nesy.__file__).resolve().parent
SPLIT = ["cells", "rules", "table", "interpreter", "justification", "parser", "program",
         "fold", "fold_encoding", "fold_learner", "fold_pruning"]


def _deps() -> dict[str, set[str]]:
    mods = {p.stem: p for p in PKG.glob("*.py")}
    graph = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        graph[name] = deps & set(mods)
    return graph


def test_split_modules_are_at_most_600_lines():
    for name in SPLIT:
        n = len((PKG / f"{name}.py").read_text().splitlines())
        assert n <= 600, f"{name}.py has {n} lines"


def test_no_import_cycles():
    graph = _deps()
    done: set[str] = set()

    def visit(u: str, path: list[str]) -> None:
        for v in sorted(graph[u]):
            assert v not in path, "import cycle: " + " -> ".join(path + [v])
            if v not in done:
                visit(v, path + [v])
        done.add(u)

    for name in sorted(graph):
        visit(name, [name])


def test_one_missing_value_test():
    """Cell semantics live in cells.py only: no other module defines a missing-value test."""
    for path in PKG.glob("*.py"):
        if path.stem == "cells":
            continue
        names = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
        assert not names & {"_is_missing", "_is_missing_cell", "is_missing"}, path.name
