"""Notebook display of a :class:`~cnnlens.nesy.RuleSet`: the program with simple syntax highlight
(predicates, variables, ``not``, ``:-``, constants, numbers, comments), and a figure of the rules
(their text, or with data how many examples each rule classifies)."""
from __future__ import annotations

import html
import re
from typing import Any

from . import card, short_list

__all__ = ["to_html", "plot", "summary", "highlight"]

MAX_RULES = 60

# one alternative per token kind; anything else is plain text
_TOKEN = re.compile(r"""
    (?P<comment>%.*$)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<neck>:-)
  | (?P<negation>\bnot\b)
  | (?P<predicate>\b[a-z][A-Za-z0-9_]*(?=\())
  | (?P<variable>\b[A-Z_][A-Za-z0-9_]*\b)
  | (?P<number>(?<![A-Za-z0-9_])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)
  | (?P<constant>\b[a-z][A-Za-z0-9_]*\b)
""", re.X)
#: one scoped stylesheet per block (pandas' way): token spans carry only a short class
STYLE = ("<style>.cnnlens-view .asp-comment{color:#6a737d;font-style:italic}"
         ".cnnlens-view .asp-string,.cnnlens-view .asp-constant{color:#22863a}"
         ".cnnlens-view .asp-neck,.cnnlens-view .asp-negation{color:#d73a49;font-weight:700}"
         ".cnnlens-view .asp-predicate{color:#005cc5}.cnnlens-view .asp-variable{color:#b35900}"
         ".cnnlens-view .asp-number{color:#6f42c1}</style>")


def highlight(line: str) -> Any:
    """One program line as :class:`markupsafe.Markup`: every token HTML-escaped and wrapped in a
    ``<span class="asp-<kind>">`` (kinds: comment, string, neck ``:-``, negation ``not``,
    predicate, variable, number, constant; coloured by :data:`STYLE`)."""
    from markupsafe import Markup

    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(line):
        out.append(html.escape(line[pos:m.start()]))
        out.append(f'<span class="asp-{m.lastgroup}">{html.escape(m.group())}</span>')
        pos = m.end()
    out.append(html.escape(line[pos:]))
    return Markup("".join(out))


def summary(rs: Any) -> str:
    return (f"RuleSet({rs.n_rules} rules ({len(rs.target_rules)} classifying), size {rs.size}, "
            f"classes {short_list(list(rs.classes), 6)}, {len(rs.predicates)} predicates"
            + (f", default={rs.default!r}" if rs.default is not None else "") + ")")


def to_html(rs: Any, max_rules: int = MAX_RULES) -> str:
    """One block: counts, then the program (s(CASP) dialect, one rule per line, the first
    ``max_rules``) highlighted; every name and class escaped."""
    if isinstance(max_rules, bool) or not isinstance(max_rules, int) or max_rules < 1:
        from ..errors import CnnlensError

        raise CnnlensError(f"max_rules must be a whole number >= 1, got {max_rules!r}")
    lines = [r.to_asp("scasp") for r in rs.rules[:max_rules]]
    notes = [f"… {rs.n_rules - max_rules} more rules not shown" if rs.n_rules > max_rules else ""]
    if rs.default is not None:
        lines.append(f"% default: {rs.default}")
    if not rs.rules:
        notes.append("no rules")
    facts = [("rules", f"{rs.n_rules} ({len(rs.target_rules)} classifying, {rs.n_rules - len(rs.target_rules)} exception)"),
             ("size", str(rs.size)), ("classes", str(len(rs.classes))), ("predicates", str(len(rs.predicates)))]
    return card("RuleSet", facts=facts, code=[highlight(ln) for ln in lines], notes=notes, style=STYLE)


def plot(rs: Any, data: Any = None, columns: Any = None, max_rules: int = 30) -> Any:
    """Without ``data``: a figure of the program text (the first ``max_rules`` rules). With
    ``data`` (what :meth:`RuleSet.predict` takes): a bar per classifying rule (the first
    ``max_rules``) — the examples it classifies (the first rule that fires) — one for the other
    rules together and one for the examples no rule covers."""
    from .canvas import NotebookFigure as Figure

    if data is None:
        lines = [r.to_asp("scasp") for r in rs.rules[:max_rules]]
        if rs.n_rules > max_rules:
            lines.append(f"… {rs.n_rules - max_rules} more rules")
        if rs.default is not None:
            lines.append(f"% default: {rs.default}")
        width = max([40] + [len(ln) for ln in lines])
        fig = Figure(figsize=(min(16.0, 0.075 * width + 0.6), 0.6 + 0.145 * max(1, len(lines))), layout="constrained")
        ax = fig.subplots()
        ax.set_axis_off()
        ax.text(0.0, 1.0, "\n".join(lines) or "(no rules)", family="monospace", fontsize=8, va="top", ha="left",
                transform=ax.transAxes)
        ax.set_title(f"{rs.n_rules} rules, size {rs.size}", fontsize=9, loc="left")
        return fig
    import numpy as np

    first = rs.predict_rule(data, columns)
    targets = rs.target_rules[:max_rules]
    counts = [int((first == j).sum()) for j in range(len(targets))]
    labels = [_short(r.to_asp("scasp")) for r in targets]
    rest = len(rs.target_rules) - len(targets)
    if rest:
        counts.append(int((first >= len(targets)).sum()))
        labels.append(f"the other {rest} rules")
    counts.append(int((first == -1).sum()))
    labels.append("no rule fires" + (f" → default {rs.default}" if rs.default is not None else ""))
    fig = Figure(figsize=(8.0, 0.8 + 0.3 * len(labels)), layout="constrained")
    ax = fig.subplots()
    ys = np.arange(len(labels))[::-1]
    ax.barh(ys, counts, color=["C0"] * len(targets) + ["0.6"] * (len(labels) - len(targets)))
    ax.set_yticks(ys, labels, family="monospace", fontsize=7)
    ax.set_xlabel(f"examples classified (first rule that fires), of {len(first)}")
    ax.set_title("rule coverage", fontsize=9, loc="left")
    return fig


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
