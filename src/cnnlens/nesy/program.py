"""The rule-set as a logic program: print, parse, run and justify (docs/algorithms.md §6.6, §6.7).

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
mapping it to ``f295`` (§6.6 "predicate for filter j = f<j>").

Semantics
---------
The program is stratified (exception predicates may only depend on features and on other
exception predicates, never cyclically, and ``target`` never occurs in a body), so it has one
answer set; :meth:`RuleSet.fired` computes, for many examples at once, which ``target`` rules
fire — exactly the ``target/2`` atoms of that answer set (checked against clingo in the tests).
:meth:`RuleSet.predict` applies the FOLD-RM order: the first classifying rule that fires wins
(this is also s(CASP)'s first answer to ``?- target(img, X).``, which tries clauses top-down);
if none fires the optional default class is used.

Modules: :mod:`~cnnlens.nesy.rules` (literals, rules, printing constants),
:mod:`~cnnlens.nesy.cells` (what a table cell means), :mod:`~cnnlens.nesy.table` (column access),
:mod:`~cnnlens.nesy.interpreter` (evaluation), :mod:`~cnnlens.nesy.justification` and
:mod:`~cnnlens.nesy.parser`; this module holds :class:`RuleSet` and re-exports the public names.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CnnlensError
from .cells import as_numbers, is_missing, normalize_constant
from .interpreter import fired
from .justification import Justification, _Justifier
from .parser import RuleParseError, _Parser
from .rules import _AB, _IDENT, EXAMPLE, TARGET, Literal, Rule, _format_constant, _format_number
from .table import _Table

__all__ = [
    "Literal",
    "Rule",
    "RuleSet",
    "RuleParseError",
    "Justification",
    "TARGET",
    "EXAMPLE",
]


@dataclass(frozen=True)
class RuleSet:
    """An ordered, stratified rule program (§6.6); see the module docstring.

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
        """Total number of body literals including ``not abN`` calls (§6.7)."""
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

    def rename(self, mapping: Mapping[str, str]) -> RuleSet:
        """A copy with feature predicates renamed (e.g. filter ``f398`` → concept ``wall3_cabinet2``,
        §6.8). Names not in ``mapping`` stay."""
        for new in mapping.values():
            if not _IDENT.match(new):
                raise CnnlensError(f"new predicate name {new!r} is not a valid ASP name ([a-z][A-Za-z0-9_]*)")
        derived = set(self.derived)
        rules = []
        for r in self.rules:
            body = tuple(
                Literal(mapping.get(lt.name, lt.name) if lt.name not in derived else lt.name, lt.op, lt.value, lt.negated)
                for lt in r.body
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

    def __repr__(self) -> str:
        from ..display.rules import summary

        return summary(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, max_rules: int = 60) -> str:
        """A self-contained HTML block (what Jupyter shows): counts and the program (s(CASP)
        dialect, the first ``max_rules`` rules) with predicates, variables, ``not`` and ``:-``
        highlighted; every name and class escaped."""
        from ..display.rules import to_html

        return to_html(self, max_rules)

    def plot(self, data: Any = None, columns: Sequence[str] | None = None, max_rules: int = 30):
        """A matplotlib :class:`~matplotlib.figure.Figure` (not shown; ``fig.savefig(path)``): the
        program text, or with ``data`` (as :meth:`predict` takes) a bar per classifying rule
        counting the examples it classifies, plus those no rule covers."""
        from ..display.rules import plot

        return plot(self, data, columns, max_rules)

    @classmethod
    def from_asp(cls, text: str) -> RuleSet:
        """Parse a program printed by :meth:`to_asp` (either dialect) or written by hand.

        Raises :class:`RuleParseError` with line and column on malformed text. A comment line
        ``% default: <class>`` sets :attr:`default`.
        """
        return _Parser(text).parse(RuleSet)

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
                        if not is_missing(v):
                            lines.append(f"{name}({prefix}{i},{_format_constant(normalize_constant(v), 'clingo')}).")
                else:  # no fact where the cell holds no number: both comparisons are false
                    num = as_numbers(col)
                    for i in np.flatnonzero(np.isfinite(num)):
                        lines.append(f"{name}({prefix}{i},{_format_number(float(num[i]), 'clingo')}).")
        return "\n".join(lines) + "\n"

    # ----- interpreter --------------------------------------------------------------------
    def fired(self, data: Any, columns: Sequence[str] | None = None) -> np.ndarray:
        """Boolean matrix ``(n_examples, n_target_rules)``: which classifying rules fire
        (= the ``target/2`` atoms of the program's answer set)."""
        return fired(self.rules, self._order, _Table(data, columns))

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
    def justify(self, row: Any, columns: Sequence[str] | None = None, name: str = "img") -> Justification:
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
    def from_json(cls, text: str | bytes) -> RuleSet:
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

