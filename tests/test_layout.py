"""Architecture checks of the whole ``cnnlens`` package (architecture issue): small modules, no
access to :class:`~cnnlens.Classifier` internals outside ``cnnlens/classifier/``, and no import
cycle between modules (function-local imports included, ``if TYPE_CHECKING:`` imports excluded).

Each check is a detector function plus a test on the real package; the ``test_detector_*`` tests
run each detector on a tiny synthetic package written to ``tmp_path`` to show that it does fail
on a bad case (and does not on the allowed ones). ``tests/nesy/test_layout.py`` keeps its
nesy-only checks; ``ruff check`` is not run here.
"""
from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

import cnnlens
from cnnlens import Classifier

SRC = Path(cnnlens.__file__).resolve().parent  # src/cnnlens
MAX_LINES = 600


# ============================================================================ helpers
def iter_modules(root: Path, package: str) -> Iterator[tuple[str, Path]]:
    """``(dotted module name, path)`` of every ``.py`` file under ``root`` (``__init__`` → the package)."""
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join([package, *parts]), path


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root.parent))


# ============================================================================ 1. module size
def long_modules(root: Path, limit: int = MAX_LINES) -> list[str]:
    """``"path: n lines"`` for every module of ``root`` over ``limit`` lines."""
    out = []
    for path in sorted(root.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > limit:
            out.append(f"{_rel(path, root)}: {n} lines")
    return out


def test_no_module_over_600_lines():
    offenders = long_modules(SRC)
    assert not offenders, f"modules over {MAX_LINES} lines: " + ", ".join(offenders)


def test_detector_long_modules(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ok.py").write_text("x = 1\n" * MAX_LINES)
    (pkg / "sub" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert long_modules(pkg) == [f"pkg/sub/big.py: {MAX_LINES + 1} lines"]


# ============================================================================ 2. Classifier internals
def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def classifier_private_names() -> set[str]:
    """Private (single-underscore) attributes and methods of a Classifier: its MRO's class dicts,
    a used instance's ``__dict__`` and every ``self._x = …`` assignment in the classifier package."""
    names = {k for cls in Classifier.__mro__ if cls is not object for k in vars(cls) if _is_private(k)}
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 2)).eval()
    clf = Classifier(net, mean=[0.5] * 3, std=[0.25] * 3)
    x = torch.rand(1, 3, 8, 8)
    clf.logits(x), clf.features(x), clf.targets(x, None)  # attributes set lazily on first use
    names |= {k for k in vars(clf) if _is_private(k)}
    for _, path in iter_modules(SRC / "classifier", "cnnlens.classifier"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self" and _is_private(node.attr)):
                names.add(node.attr)
    return names


def private_accesses(tree: ast.AST, private: set[str]) -> list[tuple[int, str]]:
    """``(line, what)`` for every ``X._name`` (X not ``self``/``cls``) and every
    ``getattr/hasattr/setattr/delattr(X, "_name", …)`` with ``_name`` in ``private``."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in private:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                hits.append((node.lineno, f"{ast.unparse(node)}"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in private):
            hits.append((node.lineno, ast.unparse(node)))
    return sorted(hits)


def classifier_internals_outside(root: Path, package: str, inside: str, private: set[str]) -> list[str]:
    """``"path:line: code"`` for each access to ``private`` names in modules outside ``inside``."""
    out = []
    for name, path in iter_modules(root, package):
        if name == inside or name.startswith(inside + "."):
            continue
        for line, what in private_accesses(ast.parse(path.read_text(encoding="utf-8")), private):
            out.append(f"{_rel(path, root)}:{line}: {what}")
    return out


def test_private_names_are_collected():
    names = classifier_private_names()
    # a method (class dict), instance attributes and a lazily set one
    assert {"_ensure_eval", "_mean", "_std", "_lock"} <= names, sorted(names)
    assert not any(n.startswith("__") for n in names)


def test_no_classifier_internals_outside_its_package():
    hits = classifier_internals_outside(SRC, "cnnlens", "cnnlens.classifier", classifier_private_names())
    assert not hits, "Classifier internals used outside cnnlens/classifier/:\n" + "\n".join(hits)


def test_detector_classifier_internals(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "classifier").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "classifier" / "__init__.py").write_text("def f(clf):\n    return clf._mean\n")  # inside: allowed
    (pkg / "user.py").write_text(textwrap.dedent("""\
        class Other:
            def m(self):
                return self._mean, cls_like.__class__, clf.mean

            @classmethod
            def c(cls):
                return cls._std

        def bad(clf):
            a = clf._mean
            b = getattr(clf, "_std", None)
            c = hasattr(clf.inner, "_lock")
            clf.model._mean = 1
            return clf._public_but_unknown, getattr(clf, "mean"), clf.__dict__
        """))
    hits = classifier_internals_outside(pkg, "pkg", "pkg.classifier", {"_mean", "_std", "_lock"})
    assert hits == [
        "pkg/user.py:10: clf._mean",
        "pkg/user.py:11: getattr(clf, '_std', None)",
        "pkg/user.py:12: hasattr(clf.inner, '_lock')",
        "pkg/user.py:13: clf.model._mean",
    ], hits


# ============================================================================ 3. import cycles
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` (function bodies too), skipping the bodies of
    ``if TYPE_CHECKING:`` (their ``else`` branches run and are kept)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children: list[ast.AST] = [node.test, *node.orelse]
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _imports(child)


def import_graph(root: Path, package: str) -> dict[str, dict[str, list[str]]]:
    """``{module: {imported module: ["path:line", …]}}`` over the modules of ``package``.

    ``import a.b.c`` → an edge to ``a.b.c`` (the longest prefix that is a module), not to ``a.b``;
    ``from X import y`` → ``X.y`` when that is a module, else ``X`` (relative ``X`` resolved)."""
    modules = dict(iter_modules(root, package))
    graph: dict[str, dict[str, list[str]]] = {m: {} for m in modules}

    def known(name: str) -> str | None:
        parts = name.split(".")
        while parts:
            if ".".join(parts) in modules:
                return ".".join(parts)
            parts.pop()
        return None

    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = mod if is_pkg else mod.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names if a.name.split(".")[0] == package]
            else:
                if node.level:
                    base_parts = here.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if base.split(".")[0] != package:
                    continue
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in modules else known(base))
            for t in targets:
                where = f"{_rel(path, root)}:{node.lineno}"
                if t is not None and t != mod and where not in graph[mod].get(t, []):
                    graph[mod].setdefault(t, []).append(where)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (cycles), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[list[str]] = []

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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(sccs)


def cycle_report(graph: dict[str, dict[str, list[str]]]) -> list[str]:
    """One entry per cycle (strongly connected component): its modules and every import inside it."""
    out = []
    for comp in strongly_connected(graph):
        members = set(comp)
        edges = [f"    {a} -> {b} at {', '.join(where)}"
                 for a in comp for b, where in sorted(graph[a].items()) if b in members]
        out.append("cycle: " + " <-> ".join(comp) + "\n" + "\n".join(edges))
    return out


def test_no_import_cycles():
    cycles = cycle_report(import_graph(SRC, "cnnlens"))
    assert not cycles, f"{len(cycles)} import cycle(s) between cnnlens modules:\n" + "\n".join(cycles)


def test_import_graph_sees_the_real_package():
    graph = import_graph(SRC, "cnnlens")
    assert "cnnlens.classifier.core" in graph["cnnlens.classifier"]
    assert "cnnlens.errors" in graph["cnnlens.validation"]
    assert "cnnlens.classifier" in graph["cnnlens.attribution"]  # from ..classifier import Classifier


def test_detector_import_cycles(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from .a import f\n",
        "a.py": "def f():\n    from . import b\n    return b\n",  # function-local import, kept
        "b.py": "from .a import f\n",  # a <-> b
        "c.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import X\n"
                 "else:\n    from .e import Y\n"),  # the TYPE_CHECKING edge c -> d is dropped, c -> e kept
        "d.py": "from .c import Z\n",
        "e.py": "import os\nimport pkg.sub.m\n",  # an edge to pkg.sub.m only, not to pkg.sub
        "sub/__init__.py": "from .. import e\nfrom . import m, VALUE\n",  # -> pkg.e, pkg.sub.m, pkg.sub
        "sub/m.py": "from ..sub import VALUE\n",  # -> pkg.sub: sub <-> m through VALUE
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(pkg, "pkg")
    assert set(graph["pkg.a"]) == {"pkg.b"} and graph["pkg.a"]["pkg.b"] == ["pkg/a.py:2"]
    assert set(graph["pkg.c"]) == {"pkg.e"}
    assert set(graph["pkg.e"]) == {"pkg.sub.m"}
    assert set(graph["pkg.sub"]) == {"pkg.e", "pkg.sub.m"}  # `from . import VALUE` is a self edge, dropped
    assert set(graph["pkg.sub.m"]) == {"pkg.sub"}
    assert strongly_connected(graph) == [["pkg.a", "pkg.b"], ["pkg.e", "pkg.sub", "pkg.sub.m"]]
    report = cycle_report(graph)
    assert report[0].startswith("cycle: pkg.a <-> pkg.b") and "pkg.a -> pkg.b at pkg/a.py:2" in report[0]
    # without the function-local import, no cycle between a and b
    (pkg / "a.py").write_text("def f():\n    return 1\n")
    assert strongly_connected(import_graph(pkg, "pkg")) == [["pkg.e", "pkg.sub", "pkg.sub.m"]]


def test_every_progress_bar_goes_through_the_one_helper():
    """Only cnnlens._progress creates tqdm bars, so quiet_progress() silences every bar."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "_progress.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tqdm"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(a.name.startswith("tqdm") for a in node.names):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, "tqdm used directly (use cnnlens._progress.bar): " + ", ".join(offenders)


def test_one_docstring_style():
    """Google style everywhere (``Args:`` / ``Returns:`` / ``Raises:`` / ``Attributes:`` sections):
    no numpy-style underlined sections, no reST field lists, no ad-hoc option paragraphs."""
    import re

    bad_patterns = {
        "numpy-style section": re.compile(r"^\s*(Parameters|Returns|Attributes|Raises|Examples|Notes)\s*\n\s*-{3,}\s*$", re.M),
        "reST field": re.compile(r"^\s*:(param|type|returns?|rtype|raises)\b", re.M),
        "prose option list": re.compile(r"^\s*(Options|Params):\s", re.M),
    }
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                for what, pattern in bad_patterns.items():
                    if doc and pattern.search(doc):
                        offenders.append(f"{path.relative_to(SRC)}:{getattr(node, 'lineno', 1)} {what}")
    assert not offenders, "docstrings not in Google style:\n" + "\n".join(offenders)
