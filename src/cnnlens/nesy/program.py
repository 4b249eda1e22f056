"""The rule-set as a logic program: print, parse, run and justify (SPEC §6.6, §6.7).

A :class:`RuleSet` is an ordered list of :class:`Rule` objects. Rules with head ``target(X,c)``
classify; rules with any other head (``ab1(X)``, ``ab2(X)`` …) define exception predicates that
the classifying rules (and other exception rules) call as ``not abN(X)``. Every other predicate
in a body is a *feature*: a column of the table the program runs on.

Literal encodings (one per :class:`Literal` ``op``)
------------------------------------------------

===================  ===================================  ===========================
``Literal``          printed (clingo dialect)             meaning on a row
===================  ===================================  ===========================
``f12`` (holds)      ``f12(X)``                           column ``f12`` is 1 / true
``not f12``          ``not f12(X)``                       column ``f12`` is 0 / false
``color == red``     ``color(X,red)``                     categorical value equals
``color != red``     ``not color(X,red)``                 categorical value differs
``age <= 30``        ``age(X,N1), N1 <= 30``              numeric comparison
``age > 30``         ``age(X,N2), N2 > 30``               numeric comparison
``not ab1``          ``not ab1(X)``                       exception ``ab1`` does not hold
===================  ===================================  ===========================

For the NeSy case (all features 0/1) a literal ``f12 == 1`` is therefore ``f12(X)`` and
``f12 == 0`` is ``not f12(X)``, exactly as in NESY Fig. 3. Numeric literals use the FOLD-R++
style ``p(X,N), N > t`` (the facts are ``age(e1,35).``); each numeric literal in a rule gets
its own variable ``N1``, ``N2`` …, and counts as *one* literal for :attr:`RuleSet.size`.

Dialects (``RuleSet.to_asp(dialect=...)``)
------------------------------------------
* ``"clingo"`` (default): ``<=`` for comparisons, strings in double quotes, and — because clingo
  requires every variable of a rule to occur in a positive body atom ("safety") — the atom
  ``example(X)`` is put first in a rule whose body has no positive atom that binds ``X``
  (e.g. ``ab1(X) :- example(X), not f145(X), not f134(X).``). The fact file then holds one
  ``example(e).`` per example (:meth:`RuleSet.facts_asp` writes it). clingo has integer
  arithmetic only, so a fractional threshold raises an error in this dialect (use
  ``dialect="scasp"`` or scale the column to integers).
* ``"scasp"``: Prolog syntax as s(CASP) reads it: ``=<`` for comparisons, strings in single quotes,
  exact decimal thresholds, no ``example(X)`` atom (s(CASP) does not need safety). This dialect
  always round-trips exactly and is what :meth:`FoldSEM.save` stores.

For a 0/1 table both dialects print the same text apart from the ``example(X)`` atom in rules
whose body starts with ``not``. :meth:`RuleSet.from_asp` reads both (and skips ``example(X)``).
It also reads the NeSyFOLD raw style where a filter predicate is a bare number (``295(X)``),
mapping it to ``f295`` (SPEC §6.6 "predicate for filter j = f<j>").

Semantics
---------
The program is stratified (exception predicates may only depend on features and on other
exception predicates, never cyclically, and ``target`` never occurs in a body), so it has one
answer set; :meth:`RuleSet.fired` computes, for many examples at once, which ``target`` rules
fire — exactly the ``target/2`` atoms of that answer set (checked against clingo in the tests).
:meth:`RuleSet.predict` applies the FOLD-RM order: the first classifying rule that fires wins
(this is also s(CASP)'s first answer to ``?- target(img, X).``, which tries clauses top-down);
if none fires the optional default class is used.
"""
from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import CnnlensError

__all__ = [
    "Literal",
    "Rule",
    "RuleSet",
    "RuleParseError",
    "Justification",
    "TARGET",
    "EXAMPLE",
]

TARGET = "target"
"""Head predicate of the classifying rules: ``target(X, class)``."""
EXAMPLE = "example"
"""Domain predicate the clingo dialect adds for safety; reserved, skipped by the parser."""

_OPS = ("holds", "==", "<=", ">")
_AB = re.compile(r"ab\d+\Z")
"""Exception predicate names: always derived (an ``abN`` no rule defines is simply false, as in
ASP), never read from the data."""
_IDENT = re.compile(r"[a-z][A-Za-z0-9_]*\Z")


class RuleParseError(CnnlensError):
    """A rule file or program text is malformed; the message gives line and column."""

    def __init__(self, message: str, line: int, column: int) -> None:
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(f"line {line}, column {column}: {message}")


# ------------------------------------------------------------------------------------------
# constants: printing and normalising class names and categorical values
# ------------------------------------------------------------------------------------------

def normalize_constant(value: Any) -> int | str:
    """Map a class label or categorical value to the constant stored in a rule (int or str).

    Python/numpy integers stay integers (``target(X,3)``), everything else becomes its ``str``.
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return str(value)


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
    """One body literal (see the module docstring for the encodings).

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

    def negation_of_binary(self) -> "Literal":
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


# ------------------------------------------------------------------------------------------
# data access for the interpreter
# ------------------------------------------------------------------------------------------

class _Table:
    """Column access for the interpreter: DataFrame, dict of columns, 2-D array (+ columns), or a
    set of true unary predicates (closed world: everything else is false / absent)."""

    def __init__(self, data: Any, columns: Sequence[str] | None = None) -> None:
        self.closed_world: set[str] | None = None
        self.cols: dict[str, np.ndarray] = {}
        if isinstance(data, (set, frozenset)):
            self.closed_world = {str(x) for x in data}
            self.n = 1
            return
        if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # pandas DataFrame
            names = [str(c) for c in data.columns] if columns is None else list(columns)
            if len(names) != data.shape[1]:
                raise CnnlensError(f"columns has {len(names)} names for {data.shape[1]} DataFrame columns")
            for name, c in zip(names, data.columns):
                self.cols[name] = data[c].to_numpy()
            self.n = int(data.shape[0])
            return
        if isinstance(data, Mapping):
            lengths = set()
            for k, v in data.items():
                arr = np.asarray(v)
                if arr.ndim == 0:
                    arr = arr.reshape(1)
                self.cols[str(k)] = arr
                lengths.add(len(arr))
            if len(lengths) > 1:
                raise CnnlensError(f"columns have different lengths: {sorted(lengths)}")
            self.n = lengths.pop() if lengths else 1
            return
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise CnnlensError(f"data must be 2-D (examples × columns), got shape {arr.shape}")
        if columns is None:
            columns = [f"f{j}" for j in range(arr.shape[1])]
        if len(columns) != arr.shape[1]:
            raise CnnlensError(f"columns has {len(columns)} names for {arr.shape[1]} data columns")
        for j, name in enumerate(columns):
            self.cols[str(name)] = arr[:, j]
        self.n = int(arr.shape[0])

    def has(self, name: str) -> bool:
        if self.closed_world is not None:
            return name in self.closed_world
        return name in self.cols

    def column(self, name: str) -> np.ndarray:
        if self.closed_world is not None:
            raise CnnlensError(
                f"predicate {name!r} needs a value (categorical or numeric); give the row as a dict "
                "or DataFrame instead of a set of true predicates"
            )
        if name not in self.cols:
            raise CnnlensError(
                f"the rules use feature {name!r} but the data has no such column "
                f"(columns: {', '.join(list(self.cols)[:20])}{' …' if len(self.cols) > 20 else ''})"
            )
        return self.cols[name]

    def unary(self, name: str) -> np.ndarray:
        if self.closed_world is not None:
            return np.full(self.n, name in self.closed_world)
        col = self.column(name)
        if col.dtype == bool:
            return col
        try:
            vals = col.astype(float)
        except (TypeError, ValueError):
            raise CnnlensError(
                f"feature {name!r} is used as {name}(X) (0/1) but its column holds non-numeric values"
            ) from None
        if np.isnan(vals).any():
            raise CnnlensError(f"feature {name!r} has NaN cells; fill or drop them first")
        bad = (vals != 0) & (vals != 1)
        if bad.any():
            raise CnnlensError(
                f"feature {name!r} is used as {name}(X) (0/1) but holds the value {float(vals[bad][0]):g}"
            )
        return vals == 1


def _is_missing_cell(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    if isinstance(v, str):
        return not v.strip()
    return type(v).__name__ in ("NAType", "NaTType")


def _equals(col: np.ndarray, value: int | str) -> np.ndarray:
    """``col == value`` for a categorical literal: a numeric column matches the number the
    constant denotes (``3`` or ``'0.5'``, as :func:`normalize_constant` prints numbers); other
    columns compare the constant of every cell; missing cells (None, NaN, empty) match nothing."""
    if col.dtype.kind in "iuf":
        if isinstance(value, int):
            return col == value
        try:
            f = float(value)
        except ValueError:
            return np.zeros(len(col), dtype=bool)
        if normalize_constant(f) != value:  # e.g. '1e3' or '00.5' name other constants
            return np.zeros(len(col), dtype=bool)
        return col == f
    if col.dtype == bool:
        return col == value if isinstance(value, int) else np.array(
            [normalize_constant(v) == value for v in col], dtype=bool)
    return np.fromiter((not _is_missing_cell(v) and normalize_constant(v) == value for v in col),
                       dtype=bool, count=len(col))


def _as_numbers(col: np.ndarray) -> np.ndarray:
    """Float view of a column for numeric comparisons: NaN where a cell holds no number
    (missing, or a string of a mixed column) — both ``=<`` and ``>`` are then false there, as
    in FOLD-R++ and as in ASP, where such a row has no ``name(X,N)`` fact."""
    if col.dtype.kind in "biuf":
        out = col.astype(np.float64)
    else:
        try:
            out = col.astype(np.float64)
        except (TypeError, ValueError):
            out = np.full(len(col), np.nan)
            for i, v in enumerate(col):
                if isinstance(v, (bool, np.bool_)) or v is None:
                    continue
                try:
                    out[i] = float(v)
                except (TypeError, ValueError):
                    continue
    # ±inf is no number either (no ASP fact can hold it; FoldSEM treats 'inf' as a value)
    return np.where(np.isfinite(out), out, np.nan)


def _eval_literal(lit: Literal, table: _Table, derived: Mapping[str, np.ndarray]) -> np.ndarray:
    if lit.op == "holds":
        val = derived[lit.name] if lit.name in derived else table.unary(lit.name)
    elif lit.op == "==":
        val = _equals(table.column(lit.name), lit.value)
    else:
        num = _as_numbers(table.column(lit.name))
        with np.errstate(invalid="ignore"):
            val = num <= lit.value if lit.op == "<=" else num > lit.value
    val = np.asarray(val, dtype=bool)
    return ~val if lit.negated else val


# ------------------------------------------------------------------------------------------
# the rule-set
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleSet:
    """An ordered, stratified rule program (SPEC §6.6); see the module docstring.

    ``rules`` holds the classifying ``target`` rules in priority order followed by the exception
    rules. ``default`` is the class predicted when no rule fires (``None``: no default).
    """

    rules: tuple[Rule, ...]
    default: Any = None
    _order: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        if self.default is not None:
            object.__setattr__(self, "default", normalize_constant(self.default))
        object.__setattr__(self, "_order", self._stratify())

    # ----- structure ----------------------------------------------------------------------
    @property
    def target_rules(self) -> tuple[Rule, ...]:
        """The classifying rules, in priority order."""
        return tuple(r for r in self.rules if r.is_target)

    @property
    def derived(self) -> tuple[str, ...]:
        """Names of the exception (non-target) predicates: those defined by rules, in order of
        definition, then any ``abN`` called but not defined (false everywhere, as in ASP)."""
        seen: dict[str, None] = {}
        for r in self.rules:
            if not r.is_target:
                seen.setdefault(r.head, None)
        for r in self.rules:
            for lit in r.body:
                if _AB.match(lit.name):
                    seen.setdefault(lit.name, None)
        return tuple(seen)

    @property
    def size(self) -> int:
        """Total number of body literals including ``not abN`` calls (SPEC §6.7)."""
        return sum(len(r.body) for r in self.rules)

    @property
    def n_rules(self) -> int:
        """Number of rules (classifying and exception rules)."""
        return len(self.rules)

    @property
    def predicates(self) -> tuple[str, ...]:
        """Distinct feature predicates used (exception predicates excluded), in order of first use."""
        derived = set(self.derived)
        seen: dict[str, None] = {}
        for r in self.rules:
            for lit in r.body:
                if lit.name not in derived:
                    seen.setdefault(lit.name, None)
        return tuple(seen)

    @property
    def classes(self) -> tuple[Any, ...]:
        """Distinct classes in rule order."""
        seen: dict[Any, None] = {}
        for r in self.target_rules:
            seen.setdefault(r.cls, None)
        return tuple(seen)

    def _stratify(self) -> tuple[str, ...]:
        derived = set(self.derived)
        deps: dict[str, set[str]] = {d: set() for d in derived}
        for r in self.rules:
            for lit in r.body:
                if lit.name == TARGET:
                    raise CnnlensError("'target' may not be used in a rule body (the program must be stratified)")
                if lit.name in derived and lit.op != "holds":
                    raise CnnlensError(f"exception predicate {lit.name!r} is unary; write {lit.name}(X)")
                if not r.is_target and lit.name in derived:
                    deps[r.head].add(lit.name)
        order: list[str] = []
        state: dict[str, int] = {}
        # iterative depth-first search (deep exception chains must not hit the recursion limit)
        for root in sorted(derived):
            if state.get(root):
                continue
            state[root] = 1
            path = [root]
            stack = [iter(sorted(deps[root]))]
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    node = path.pop()
                    state[node] = 2
                    order.append(node)
                    continue
                st = state.get(nxt, 0)
                if st == 2:
                    continue
                if st == 1:
                    cyc = " -> ".join(path[path.index(nxt):] + [nxt])
                    raise CnnlensError(f"the program is not stratified: {cyc} depends on itself")
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(deps[nxt])))
        return tuple(order)

    def rename(self, mapping: Mapping[str, str]) -> "RuleSet":
        """A copy with feature predicates renamed (e.g. filter ``f398`` → concept ``wall3_cabinet2``,
        SPEC §6.8). Names not in ``mapping`` stay."""
        for new in mapping.values():
            if not _IDENT.match(new):
                raise CnnlensError(f"new predicate name {new!r} is not a valid ASP name ([a-z][A-Za-z0-9_]*)")
        derived = set(self.derived)
        rules = []
        for r in self.rules:
            body = tuple(
                Literal(mapping.get(l.name, l.name) if l.name not in derived else l.name, l.op, l.value, l.negated)
                for l in r.body
            )
            rules.append(Rule(r.head, body, r.cls))
        return RuleSet(tuple(rules), self.default)

    # ----- printing and parsing -----------------------------------------------------------
    def to_asp(self, dialect: str = "clingo", *, default_comment: bool = True) -> str:
        """The program text, one rule per line (see the module docstring for the dialects)."""
        if dialect not in ("clingo", "scasp"):
            raise CnnlensError(f"dialect must be 'clingo' or 'scasp', got {dialect!r}")
        lines = [r.to_asp(dialect) for r in self.rules]
        if default_comment and self.default is not None:
            lines.append(f"% default: {_format_constant(self.default, dialect)}")
        return "\n".join(lines) + ("\n" if lines else "")

    def __str__(self) -> str:
        return self.to_asp("scasp")

    @classmethod
    def from_asp(cls, text: str) -> "RuleSet":
        """Parse a program printed by :meth:`to_asp` (either dialect) or written by hand.

        Raises :class:`RuleParseError` with line and column on malformed text. A comment line
        ``% default: <class>`` sets :attr:`default`.
        """
        return _Parser(text).parse()

    def facts_asp(self, data: Any, columns: Sequence[str] | None = None, prefix: str = "e") -> str:
        """ASP facts for the rows of ``data`` (examples named ``e0``, ``e1`` …): ``example(e0).``,
        ``f3(e0).`` for true unary features, ``color(e0,red).`` / ``age(e0,35).`` otherwise.
        Only the features the rules use are written."""
        table = _Table(data, columns)
        lines = [f"{EXAMPLE}({prefix}{i})." for i in range(table.n)]
        kinds: dict[str, str] = {}
        derived = set(self.derived)
        for r in self.rules:
            for lit in r.body:
                if lit.name not in derived:
                    kinds.setdefault(lit.name, lit.op)
        for name, op in kinds.items():
            if op == "holds":
                vals = table.unary(name)
                lines += [f"{name}({prefix}{i})." for i in np.flatnonzero(vals)]
            else:
                col = table.column(name)
                if op == "==":
                    for i, v in enumerate(col):
                        if not _is_missing_cell(v):
                            lines.append(f"{name}({prefix}{i},{_format_constant(normalize_constant(v), 'clingo')}).")
                else:  # no fact where the cell holds no number: both comparisons are false
                    num = _as_numbers(col)
                    for i in np.flatnonzero(np.isfinite(num)):
                        lines.append(f"{name}({prefix}{i},{_format_number(float(num[i]), 'clingo')}).")
        return "\n".join(lines) + "\n"

    # ----- interpreter --------------------------------------------------------------------
    def _derive(self, table: _Table) -> dict[str, np.ndarray]:
        derived: dict[str, np.ndarray] = {}
        by_head: dict[str, list[Rule]] = {}
        for r in self.rules:
            if not r.is_target:
                by_head.setdefault(r.head, []).append(r)
        for name in self._order:  # dependencies first
            acc = np.zeros(table.n, dtype=bool)
            for r in by_head.get(name, ()):
                acc |= self._body(r, table, derived)
            derived[name] = acc
        return derived

    def _body(self, rule: Rule, table: _Table, derived: Mapping[str, np.ndarray]) -> np.ndarray:
        acc = np.ones(table.n, dtype=bool)
        for lit in rule.body:
            acc &= _eval_literal(lit, table, derived)
        return acc

    def fired(self, data: Any, columns: Sequence[str] | None = None) -> np.ndarray:
        """Boolean matrix ``(n_examples, n_target_rules)``: which classifying rules fire
        (= the ``target/2`` atoms of the program's answer set)."""
        table = _Table(data, columns)
        derived = self._derive(table)
        tr = self.target_rules
        out = np.zeros((table.n, len(tr)), dtype=bool)
        for k, r in enumerate(tr):
            out[:, k] = self._body(r, table, derived)
        return out

    def predict_rule(self, data: Any, columns: Sequence[str] | None = None) -> np.ndarray:
        """Index (into :attr:`target_rules`) of the first rule that fires per example; −1 if none."""
        f = self.fired(data, columns)
        if f.shape[1] == 0:
            return np.full(f.shape[0], -1, dtype=np.int64)
        first = f.argmax(axis=1)
        return np.where(f.any(axis=1), first, -1).astype(np.int64)

    def predict(self, data: Any, columns: Sequence[str] | None = None, default: Any = "auto") -> np.ndarray:
        """Ordered first-match prediction (object array of class constants).

        ``default="auto"`` uses :attr:`default`; pass a class to override or ``None`` to leave
        unmatched examples as ``None``.
        """
        idx = self.predict_rule(data, columns)
        d = self.default if (isinstance(default, str) and default == "auto") else default
        heads = np.array([r.cls for r in self.target_rules] + [d], dtype=object)
        return heads[idx]  # −1 picks the default

    # ----- justification ------------------------------------------------------------------
    def justify(self, row: Any, columns: Sequence[str] | None = None, name: str = "img") -> "Justification":
        """Explain the prediction for one example in the s(CASP) style of NESY Fig. 3.

        ``row``: a dict ``{predicate: value}``, a set of the true unary predicates (everything
        else false), a 1-D array with ``columns`` (default ``f0, f1, …``) or a one-row DataFrame.
        """
        table = _Table(row, columns)
        if table.n != 1:
            raise CnnlensError(f"justify explains one example, got {table.n} rows")
        try:
            return _Justifier(self, table, name).run()
        except RecursionError:
            raise CnnlensError("the exception chain of this program is too deep to justify "
                               f"(more than about {sys.getrecursionlimit() // 4} nested abN calls)") from None

    # ----- JSON ---------------------------------------------------------------------------
    def to_json(self) -> str:
        """JSON with the program text (s(CASP) dialect, exact) and summary numbers."""
        return json.dumps({
            "program": self.to_asp("scasp", default_comment=False),
            "default": self.default,
            "size": self.size,
            "n_rules": self.n_rules,
            "predicates": list(self.predicates),
        })

    @classmethod
    def from_json(cls, text: str | bytes) -> "RuleSet":
        """Read :meth:`to_json` output. Malformed input (not UTF-8, not JSON, missing or
        mistyped fields, a program that does not parse) raises :class:`CnnlensError`."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CnnlensError(f"rule-set JSON is not UTF-8 text (byte {exc.start})") from None
        if not isinstance(text, str):
            raise CnnlensError(f"rule-set JSON must be a str, got {type(text).__name__}")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CnnlensError(f"rule-set JSON is malformed (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        except RecursionError:
            raise CnnlensError("rule-set JSON is nested too deeply") from None
        if not isinstance(obj, dict):
            raise CnnlensError(f"rule-set JSON must be an object with a \"program\" field, got {type(obj).__name__}")
        if "program" not in obj:
            raise CnnlensError("rule-set JSON lacks the field 'program'")
        if not isinstance(obj["program"], str):
            raise CnnlensError("rule-set JSON field 'program' must be a string")
        d = obj.get("default")
        if d is not None and (isinstance(d, bool) or not isinstance(d, (int, str))):
            raise CnnlensError(f"rule-set JSON field 'default' must be a class name or integer, got {d!r}")
        rs = cls.from_asp(obj["program"])
        return cls(rs.rules, d)


# ------------------------------------------------------------------------------------------
# justification (s(CASP) style, NESY Fig. 3)
# ------------------------------------------------------------------------------------------

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
    def __init__(self, rs: RuleSet, table: _Table, name: str) -> None:
        self.rs = rs
        self.table = table
        self.name = name
        self.derived = rs._derive(table)
        self.model: dict[str, None] = {}
        self.line_of = {id(r): i + 1 for i, r in enumerate(rs.rules)}

    def truth(self, lit: Literal) -> bool:
        return bool(_eval_literal(lit, self.table, self.derived)[0])

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
        if not np.isfinite(_as_numbers(np.asarray(raw))[0]):
            # missing cell or a string of a mixed column: no fact name(img,N), comparison false
            shown = "missing" if _is_missing_cell(raw[0]) else self.value_text(lit.name)
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
            if r.head == pred and all(self.truth(l) for l in r.body):
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
            if all(self.truth(l) for l in r.body):
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


# ------------------------------------------------------------------------------------------
# parser
# ------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>%[^\n]*)
  | (?P<neck>:-)
  | (?P<cmp><=|=<|>=|==|!=|\\=|<|>|=)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-z][A-Za-z0-9_]*)
  | (?P<var>[A-Z_][A-Za-z0-9_]*)
  | (?P<dstring>"(?:[^"\\\n]|\\.)*")
  | (?P<sstring>'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[(),.])
    """,
    re.VERBOSE,
)
def _default_comment(comment: str) -> str | None:
    """The class text of a ``% default: <class>`` comment, else None (linear time: plain string
    operations, no backtracking regex)."""
    s = comment[1:].lstrip()
    if not s.startswith("default"):
        return None
    s = s[len("default"):].lstrip()
    if not s.startswith(":"):
        return None
    s = s[1:].strip()
    return s or None


@dataclass
class _Tok:
    kind: str
    text: str
    line: int
    col: int


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise CnnlensError(f"program text must be a str, got {type(text).__name__}")
        self.text = text
        self.default: Any = None
        # tokens are produced lazily, so malformed text fails at its first bad token
        self._gen = self._lex_iter(text)
        self.toks: list[_Tok] = []
        self.i = 0

    def _lex(self, text: str) -> list[_Tok]:
        return list(self._lex_iter(text))

    def _lex_iter(self, text: str):
        pos, line, lstart = 0, 1, 0
        n = len(text)
        scan = _TOKEN.scanner(text).match  # continues where the last match ended
        while pos < n:
            m = scan()
            if m is None:
                ch = text[pos]
                raise RuleParseError(f"unexpected character {ch!r}", line, pos - lstart + 1)
            kind = m.lastgroup or ""
            col = pos - lstart + 1
            if kind == "nl":
                line += 1
                lstart = m.end()
            elif kind == "comment":
                dtext = _default_comment(m.group())
                if dtext is not None:
                    sub = _Parser.__new__(_Parser)
                    sub.text = dtext
                    try:
                        sub.toks = sub._lex(dtext)
                    except RuleParseError as exc:
                        raise RuleParseError(f"bad default class: {exc.reason}", line, col) from None
                    sub.i = 0
                    if len(sub.toks) != 2 or sub.toks[0].kind not in ("ident", "number", "dstring", "sstring"):
                        shown = dtext if len(dtext) <= 60 else dtext[:60] + "…"
                        raise RuleParseError(f"bad default class {shown!r}", line, col)
                    self.default = sub._const_value(sub.toks[0])
            elif kind != "ws":
                yield _Tok(kind, m.group(), line, col)
            pos = m.end()
        yield _Tok("eof", "", line, pos - lstart + 1)

    # helpers
    def peek(self, k: int = 0) -> _Tok:
        toks = self.toks
        while len(toks) <= self.i + k and (not toks or toks[-1].kind != "eof"):
            toks.append(next(self._gen))
        return toks[min(self.i + k, len(toks) - 1)]

    def next(self) -> _Tok:
        t = self.peek()
        self.i += 1
        return t

    def fail(self, tok: _Tok, expected: str) -> RuleParseError:
        found = "end of text" if tok.kind == "eof" else repr(tok.text)
        return RuleParseError(f"expected {expected} but found {found}", tok.line, tok.col)

    def expect(self, text: str) -> _Tok:
        t = self.next()
        if t.text != text or t.kind in ("dstring", "sstring"):
            raise self.fail(t, repr(text))
        return t

    def _const_value(self, t: _Tok) -> int | str:
        if t.kind == "number":
            if re.fullmatch(r"-?\d+", t.text):
                return int(t.text)
            raise RuleParseError(f"a class or categorical value must be an integer or a name, got {t.text!r}", t.line, t.col)
        if t.kind in ("dstring", "sstring"):
            return _unquote(t.text)
        return t.text

    def pred_name(self) -> str:
        t = self.next()
        if t.kind == "ident":
            if t.text == "not":
                raise self.fail(t, "a predicate name")
            return t.text
        if t.kind == "number" and re.fullmatch(r"\d+", t.text):
            return f"f{t.text}"  # NeSyFOLD raw style: 295(X) is filter 295
        raise self.fail(t, "a predicate name")

    def var(self, expected: str = "the variable X") -> _Tok:
        t = self.next()
        if t.kind != "var":
            raise self.fail(t, expected)
        return t

    # grammar
    def parse(self) -> RuleSet:
        rules: list[Rule] = []
        while self.peek().kind != "eof":
            rules.append(self.clause())
        try:
            return RuleSet(tuple(rules), self.default)
        except RuleParseError:
            raise
        except CnnlensError as exc:
            last = self.toks[-1]
            raise RuleParseError(str(exc), last.line, last.col) from None

    def clause(self) -> Rule:
        start = self.peek()
        head = self.pred_name()
        self.expect("(")
        xv = self.var()
        cls: Any = None
        if head == TARGET:
            self.expect(",")
            t = self.next()
            if t.kind not in ("ident", "number", "dstring", "sstring") or t.text == "not":
                raise self.fail(t, "a class name")
            cls = self._const_value(t)
        elif head == EXAMPLE:
            raise RuleParseError(f"'{EXAMPLE}' is reserved for the domain atom and cannot be a rule head",
                                 start.line, start.col)
        self.expect(")")
        body: list[Literal] = []
        nxt = self.next()
        if nxt.text == ":-" and nxt.kind == "neck":
            numeric_vars: set[str] = set()
            while True:
                lit = self.literal(xv.text, numeric_vars)
                if lit is not None:
                    body.append(lit)
                t = self.next()
                if t.text == "." and t.kind == "punct":
                    break
                if t.text != "," or t.kind != "punct":
                    raise self.fail(t, "',' or '.'")
        elif not (nxt.text == "." and nxt.kind == "punct"):
            raise self.fail(nxt, "':-' or '.'")
        try:
            return Rule(head, tuple(body), cls)
        except CnnlensError as exc:
            raise RuleParseError(str(exc), start.line, start.col) from None

    def literal(self, x: str, numeric_vars: set[str]) -> Literal | None:
        start = self.peek()
        negated = False
        if start.kind == "ident" and start.text == "not":
            self.next()
            negated = True
        name_tok = self.peek()
        name = self.pred_name()
        if name == TARGET:
            raise RuleParseError("'target' cannot be used in a rule body", name_tok.line, name_tok.col)
        self.expect("(")
        v = self.var()
        if v.text != x:
            raise RuleParseError(f"expected the head variable {x} but found {v.text!r}", v.line, v.col)
        t = self.next()
        if t.text == ")" and t.kind == "punct":
            if name == EXAMPLE:
                if negated:
                    raise RuleParseError(f"'{EXAMPLE}(X)' cannot be negated", start.line, start.col)
                return None
            return Literal(name, "holds", None, negated)
        if t.text != "," or t.kind != "punct":
            raise self.fail(t, "')' or ','")
        arg = self.next()
        if arg.kind == "var":
            if negated:
                raise RuleParseError("a numeric literal cannot be negated; use the opposite comparison",
                                     start.line, start.col)
            if arg.text == x or arg.text in numeric_vars:
                raise RuleParseError(f"variable {arg.text} is already used in this rule", arg.line, arg.col)
            numeric_vars.add(arg.text)
            self.expect(")")
            self.expect(",")
            v2 = self.var(f"the variable {arg.text}")
            if v2.text != arg.text:
                raise RuleParseError(f"expected the variable {arg.text} but found {v2.text!r}", v2.line, v2.col)
            op = self.next()
            if op.kind != "cmp":
                raise self.fail(op, "a comparison ('=<', '<=' or '>')")
            if op.text not in ("<=", "=<", ">"):
                raise RuleParseError(f"unsupported comparison {op.text!r}; FOLD rules use '=<' (or '<=') and '>'",
                                     op.line, op.col)
            num = self.next()
            if num.kind != "number":
                raise self.fail(num, "a number")
            value = float(num.text)
            if not math.isfinite(value):
                raise RuleParseError(f"threshold {num.text} is not finite", num.line, num.col)
            return Literal(name, "<=" if op.text in ("<=", "=<") else ">", value)
        if arg.kind not in ("ident", "number", "dstring", "sstring") or arg.text == "not":
            raise self.fail(arg, "a value or a variable")
        value = self._const_value(arg)
        self.expect(")")
        return Literal(name, "==", value, negated)
