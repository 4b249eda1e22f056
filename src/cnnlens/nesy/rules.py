"""Rules and literals of a FOLD program, and how constants and numbers print (docs/algorithms.md §6.6).

The literal encodings and the two dialects are described in :mod:`cnnlens.nesy.program`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import CnnlensError
from .cells import normalize_constant

__all__ = ["Literal", "Rule", "TARGET", "EXAMPLE", "normalize_constant"]

TARGET = "target"
"""Head predicate of the classifying rules: ``target(X, class)``."""
EXAMPLE = "example"
"""Domain predicate the clingo dialect adds for safety; reserved, skipped by the parser."""

_OPS = ("holds", "==", "<=", ">")
_AB = re.compile(r"ab\d+\Z")
"""Exception predicate names: always derived (an ``abN`` no rule defines is simply false, as in
ASP), never read from the data."""
_IDENT = re.compile(r"[a-z][A-Za-z0-9_]*\Z")


# ------------------------------------------------------------------------------------------
# constants: printing class names, categorical values and thresholds
# ------------------------------------------------------------------------------------------

def _format_constant(value: int | str, dialect: str) -> str:
    if isinstance(value, int):
        return str(value)
    if _IDENT.match(value) and value != "not":
        return value
    q = '"' if dialect == "clingo" else "'"
    escaped = (value.replace("\\", "\\\\").replace(q, "\\" + q)
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f"{q}{escaped}{q}"


def _format_number(value: float, dialect: str) -> str:
    if float(value).is_integer():
        return str(int(value))
    if dialect == "clingo":
        raise CnnlensError(
            f"threshold {value!r} is not an integer and clingo has integer arithmetic only; "
            "print with dialect='scasp' or scale the numeric column to integers before fitting"
        )
    return repr(float(value))


# ------------------------------------------------------------------------------------------
# literals, rules
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Literal:
    """One body literal (see :mod:`cnnlens.nesy.program` for the encodings).

    ``name`` is the predicate; ``op`` is ``"holds"`` (unary ``name(X)``), ``"=="`` (categorical
    ``name(X,value)``), ``"<="`` or ``">"`` (numeric ``name(X,N), N op value``); ``negated``
    puts ``not`` in front (only for ``holds`` and ``==``).
    """

    name: str
    op: str = "holds"
    value: Any = None
    negated: bool = False

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise CnnlensError(f"literal op {self.op!r} is not one of {', '.join(_OPS)}")
        if self.op in ("<=", ">"):
            if self.negated:
                raise CnnlensError("numeric literals cannot be negated; use the opposite comparison")
            v = float(self.value)
            if not math.isfinite(v):
                raise CnnlensError(f"numeric threshold of {self.name!r} must be finite, got {self.value!r}")
            object.__setattr__(self, "value", v)
        elif self.op == "==":
            object.__setattr__(self, "value", normalize_constant(self.value))
        elif self.value is not None:
            raise CnnlensError("a unary ('holds') literal takes no value")

    def __str__(self) -> str:
        if self.op == "holds":
            return ("not " if self.negated else "") + self.name
        if self.op == "==":
            return f"{self.name} {'!=' if self.negated else '=='} {self.value}"
        return f"{self.name} {self.op} {self.value:g}"

    def negation_of_binary(self) -> Literal:
        """``f(X)`` ↔ ``not f(X)`` (only for unary literals)."""
        return Literal(self.name, "holds", None, not self.negated)

    def to_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "value": self.value, "negated": self.negated}


@dataclass(frozen=True)
class Rule:
    """``head(X[, cls]) :- body.`` — ``head`` is ``"target"`` (then ``cls`` is the class) or the
    name of an exception predicate such as ``"ab1"`` (then ``cls`` is ``None``)."""

    head: str
    body: tuple[Literal, ...]
    cls: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", tuple(self.body))
        if self.head == TARGET:
            if self.cls is None:
                raise CnnlensError("a target rule needs a class")
            object.__setattr__(self, "cls", normalize_constant(self.cls))
        elif self.cls is not None:
            raise CnnlensError(f"rule for {self.head!r} cannot have a class")

    @property
    def is_target(self) -> bool:
        return self.head == TARGET

    def head_text(self, var: str = "X", dialect: str = "clingo") -> str:
        if self.is_target:
            return f"{TARGET}({var},{_format_constant(self.cls, dialect)})"
        return f"{self.head}({var})"

    def to_asp(self, dialect: str = "clingo") -> str:
        parts: list[str] = []
        nvar = 0
        binds = False
        for lit in self.body:
            if lit.op == "holds":
                parts.append(("not " if lit.negated else "") + f"{lit.name}(X)")
                binds = binds or not lit.negated
            elif lit.op == "==":
                parts.append(("not " if lit.negated else "") + f"{lit.name}(X,{_format_constant(lit.value, dialect)})")
                binds = binds or not lit.negated
            else:
                nvar += 1
                op = lit.op if (dialect == "clingo" or lit.op == ">") else "=<"
                parts.append(f"{lit.name}(X,N{nvar}), N{nvar} {op} {_format_number(lit.value, dialect)}")
                binds = True
        if dialect == "clingo" and not binds:
            parts.insert(0, f"{EXAMPLE}(X)")
        head = self.head_text("X", dialect)
        if not parts:
            return f"{head}."
        return f"{head} :- {', '.join(parts)}."

    def __str__(self) -> str:
        return self.to_asp("scasp")
