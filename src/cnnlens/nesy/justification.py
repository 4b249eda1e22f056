"""Justifications of a rule program's prediction for one example, in the s(CASP) style of NESY
Fig. 3 (docs/algorithms.md §6.7): the text, the proof tree and the atoms of the model."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cells import as_numbers, is_missing, normalize_constant
from .interpreter import derive, eval_literal
from .rules import TARGET, Literal, Rule, _format_constant
from .table import _Table

__all__ = ["Justification"]


@dataclass
class Justification:
    """A per-example justification: ``text`` (NESY Fig. 3 style), ``tree`` (nested dicts),
    ``model`` (atoms), the predicted class, the fired rule (1-based line in the program) and
    whether the default class was used."""

    prediction: Any
    rule: int | None
    default_used: bool
    text: str
    tree: dict
    model: list[str]

    def to_dict(self) -> dict:
        return {
            "prediction": self.prediction,
            "rule": self.rule,
            "default_used": self.default_used,
            "tree": self.tree,
            "model": self.model,
            "text": self.text,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        return self.text


class _Justifier:
    """Builds the :class:`Justification` of ``rs`` (a :class:`~cnnlens.nesy.RuleSet`) for the
    single example of ``table``."""

    def __init__(self, rs: Any, table: _Table, name: str) -> None:
        self.rs = rs
        self.table = table
        self.name = name
        self.derived = derive(rs.rules, rs._order, table)
        self.model: dict[str, None] = {}
        self.line_of = {id(r): i + 1 for i, r in enumerate(rs.rules)}

    def truth(self, lit: Literal) -> bool:
        return bool(eval_literal(lit, self.table, self.derived)[0])

    def value_text(self, name: str) -> str:
        v = self.table.column(name)[0]
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            f = float(v)
            return str(int(f)) if f.is_integer() else repr(f)
        return _format_constant(normalize_constant(v), "scasp")

    def holds_phrase(self, pred: str, extra: str = "") -> str:
        return f"'{pred}' holds (for {self.name}{extra})"

    def no_evidence(self, pred: str, extra: str = "") -> str:
        return f"there is no evidence that '{pred}' holds (for {self.name}{extra})"

    def literal_node(self, lit: Literal, want: bool) -> dict:
        """Explain why ``lit`` has truth value ``want`` (which it has)."""
        node: dict = {"literal": str(lit), "holds": want}
        d = lit.name in self.derived
        if lit.op == "holds":
            positive_true = want != lit.negated  # does the atom lit.name(X) hold?
            atom = f"{lit.name}({self.name})"
            self.model.setdefault(atom if positive_true else f"not {atom}", None)
            if positive_true:
                node["text"] = self.holds_phrase(lit.name)
                if d:
                    node["because"] = self.derived_true(lit.name)
            else:
                node["text"] = self.no_evidence(lit.name)
                if d:
                    node["because"] = self.derived_false(lit.name)
            return node
        if lit.op == "==":
            positive_true = want != lit.negated
            val = _format_constant(lit.value, "scasp")
            atom = f"{lit.name}({self.name},{val})"
            self.model.setdefault(atom if positive_true else f"not {atom}", None)
            node["text"] = (self.holds_phrase(lit.name, f", and {val}") if positive_true
                            else self.no_evidence(lit.name, f", and {val}"))
            return node
        raw = self.table.column(lit.name)[:1]
        if not np.isfinite(as_numbers(np.asarray(raw))[0]):
            # missing cell or a string of a mixed column: no fact name(img,N), comparison false
            shown = "missing" if is_missing(raw[0]) else self.value_text(lit.name)
            node["text"] = (f"there is no evidence that '{lit.name}' holds a number (for {self.name}; "
                            f"the cell is {shown}), so {lit} is false")
            return node
        v = self.value_text(lit.name)
        self.model.setdefault(f"{lit.name}({self.name},{v})", None)
        op = {True: {"<=": "=<", ">": ">"}, False: {"<=": ">", ">": "=<"}}[want][lit.op]
        node["text"] = f"'{lit.name}' holds (for {self.name}, and {v}), and {v} {op} {lit.value:g}"
        return node

    def rule_true(self, rule: Rule) -> list[dict]:
        return [self.literal_node(lit, True) for lit in rule.body]

    def rule_false(self, rule: Rule) -> list[dict]:
        """All literals of ``rule`` that fail (a rule fails when any literal fails)."""
        out = []
        for lit in rule.body:
            if not self.truth(lit):
                out.append(self.literal_node(lit, False))
        return out

    def derived_true(self, pred: str) -> dict:
        for r in self.rs.rules:
            if r.head == pred and all(self.truth(lt) for lt in r.body):
                return {"rule": self.line_of[id(r)], "children": self.rule_true(r)}
        raise AssertionError("unreachable: derived predicate true without a true rule")

    def derived_false(self, pred: str) -> dict:
        return {"failed_rules": [
            {"rule": self.line_of[id(r)], "children": self.rule_false(r)}
            for r in self.rs.rules if r.head == pred
        ]}

    def run(self) -> Justification:
        tr = self.rs.target_rules
        fired_rule = None
        for r in tr:
            if all(self.truth(lt) for lt in r.body):
                fired_rule = r
                break
        if fired_rule is not None:
            cls_txt = _format_constant(fired_rule.cls, "scasp").strip("'")
            self.model[f"{TARGET}({self.name},{_format_constant(fired_rule.cls, 'scasp')})"] = None
            tree = {
                "text": self.holds_phrase(TARGET, f", and {cls_txt}"),
                "holds": True,
                "rule": self.line_of[id(fired_rule)],
                "children": self.rule_true(fired_rule),
            }
            pred, default_used, line = fired_rule.cls, False, self.line_of[id(fired_rule)]
        else:
            failed = [{"rule": self.line_of[id(r)], "class": r.cls, "children": self.rule_false(r)} for r in tr]
            d = self.rs.default
            tree = {
                "text": self.no_evidence(TARGET),
                "holds": False,
                "failed_rules": failed,
                "default": d,
            }
            pred, default_used, line = d, d is not None, None
        text = self.render(tree)
        model = list(self.model)
        text += "MODEL:\n{ " + ", ".join(model) + " }\n"
        return Justification(pred, line, default_used, text, tree, model)

    def render(self, tree: dict) -> str:
        out: list[str] = []

        def conj(children: list[dict], indent: int, last_end: str) -> None:
            for i, ch in enumerate(children):
                end = last_end if i == len(children) - 1 else ", and"
                emit(ch, indent, end)

        def emit(node: dict, indent: int, end: str) -> None:
            pad = "  " * indent
            because = node.get("because")
            if because and "children" in because:
                out.append(f"{pad}{node['text']}, because (rule {because['rule']})")
                conj(because["children"], indent + 1, end)
            elif because and "failed_rules" in because:
                fr = because["failed_rules"]
                if not fr:
                    out.append(f"{pad}{node['text']}, because no rule defines it{end}")
                    return
                out.append(f"{pad}{node['text']}, because")
                for j, f in enumerate(fr):
                    e = end if j == len(fr) - 1 else "; and"
                    out.append(f"{pad}  rule {f['rule']} fails, because")
                    conj(f["children"], indent + 2, e)
            else:
                out.append(f"{pad}{node['text']}{end}")

        if tree["holds"]:
            out.append(f"{tree['text']}, because (rule {tree['rule']})")
            conj(tree["children"], 1, ".")
        else:
            out.append(f"{tree['text']}, because")
            for j, f in enumerate(tree["failed_rules"]):
                e = "." if j == len(tree["failed_rules"]) - 1 else "; and"
                out.append(f"  rule {f['rule']} fails, because")
                conj(f["children"], 2, e)
            if tree["default"] is not None:
                out.append(f"so the default class {tree['default']} is predicted.")
            else:
                out.append("and there is no default class.")
        return "\n".join(out) + "\n"

