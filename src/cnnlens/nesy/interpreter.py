"""The interpreter of a stratified rule program over a table (docs/algorithms.md §6.6): literal truth values
and the rule bodies, for many examples at once.

:class:`~cnnlens.nesy.RuleSet` calls it with its rules and the dependency order of its exception
predicates (``abN``); the result of :func:`fired` is exactly the ``target/2`` atoms of the
program's answer set (module docstring of :mod:`cnnlens.nesy.program`, "Semantics").
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .cells import as_numbers, equals
from .rules import Literal, Rule
from .table import _Table

__all__: list[str] = []


def eval_literal(lit: Literal, table: _Table, derived: Mapping[str, np.ndarray]) -> np.ndarray:
    """Truth value of ``lit`` per example; ``derived`` holds the exception predicates computed
    so far."""
    if lit.op == "holds":
        val = derived[lit.name] if lit.name in derived else table.unary(lit.name)
    elif lit.op == "==":
        val = equals(table.column(lit.name), lit.value)
    else:
        num = as_numbers(table.column(lit.name))
        with np.errstate(invalid="ignore"):
            val = num <= lit.value if lit.op == "<=" else num > lit.value
    val = np.asarray(val, dtype=bool)
    return ~val if lit.negated else val


def rule_body(rule: Rule, table: _Table, derived: Mapping[str, np.ndarray]) -> np.ndarray:
    """Examples on which every literal of ``rule``'s body holds."""
    acc = np.ones(table.n, dtype=bool)
    for lit in rule.body:
        acc &= eval_literal(lit, table, derived)
    return acc


def derive(rules: Sequence[Rule], order: Sequence[str], table: _Table) -> dict[str, np.ndarray]:
    """Truth value of every exception predicate, computed in ``order`` (dependencies first)."""
    derived: dict[str, np.ndarray] = {}
    by_head: dict[str, list[Rule]] = {}
    for r in rules:
        if not r.is_target:
            by_head.setdefault(r.head, []).append(r)
    for name in order:
        acc = np.zeros(table.n, dtype=bool)
        for r in by_head.get(name, ()):
            acc |= rule_body(r, table, derived)
        derived[name] = acc
    return derived


def fired(rules: Sequence[Rule], order: Sequence[str], table: _Table) -> np.ndarray:
    """Boolean matrix ``(n_examples, n_target_rules)``: which classifying rules fire."""
    derived = derive(rules, order, table)
    tr = [r for r in rules if r.is_target]
    out = np.zeros((table.n, len(tr)), dtype=bool)
    for k, r in enumerate(tr):
        out[:, k] = rule_body(r, table, derived)
    return out
