"""Post-pruning of a learned FOLD-SE-M program (``FoldSEM(prune=alpha)``; module docstring of
:mod:`cnnlens.nesy.fold`, "Pruning")."""
from __future__ import annotations

import math

import numpy as np

from .fold_learner import _Learner, _Node

__all__: list[str] = []


def _node_size(node: _Node) -> int:
    """Body literals of a rule and its exception rules, ``not abN`` included (docs/algorithms.md §6.7)."""
    return len(node.body) + (1 if node.exceptions else 0) + sum(_node_size(e) for e in node.exceptions)


def _exception_slots(node: _Node):
    """(parent, index) of every exception rule under ``node``, depth-first, in learned order."""
    for i, e in enumerate(node.exceptions):
        yield node, i
        yield from _exception_slots(e)


class _Pruner:
    """Post-pruning of a learned program (``FoldSEM(prune=alpha)``; module docstring, "Pruning").

    Greedy backward elimination on the training rows: each step considers deleting one
    classifying rule (with its exceptions) or one exception rule (with its own exceptions, and
    the ``not abN`` literal when it was the last rule of its set), and measures the *loss* = the
    number of training rows the ordered program (first rule that fires, default class as in
    ``fit``) classifies correctly before minus after. The step with the smallest loss per
    literal saved (ties: more literals saved, then the first in program order: rules in order,
    each followed by its exception rules depth-first) is taken while that loss per literal is
    ≤ ``alpha``. Only rows whose first firing rule changes are re-evaluated, so a step costs
    about (rows the change touches) × (rules).
    """

    def __init__(self, learner: _Learner, learned: list[tuple[int, _Node]], y: np.ndarray,
                 n_classes: int, default: int | None) -> None:
        self.L = learner
        self.learned = list(learned)  # rules are edited in place
        self.rows = np.arange(learner.e.n)
        self.y = y
        self.ncls = n_classes
        self.fixed = default  # None: the most frequent class among the uncovered rows
        self.total = np.bincount(y, minlength=n_classes)
        self._body: dict[int, np.ndarray] = {}

    def _bmask(self, node: _Node) -> np.ndarray:
        k = id(node)
        if k not in self._body:
            ok = np.ones(len(self.rows), dtype=bool)
            for c in node.body:
                ok &= self.L.sat(c, self.rows)
            self._body[k] = ok
        return self._body[k]

    def _cov(self, node: _Node) -> np.ndarray:
        b = self._bmask(node)
        if not node.exceptions:
            return b
        ab = np.zeros_like(b)
        for e in node.exceptions:
            ab |= self._cov(e)
        return b & ~ab

    def _correct(self, cc: int, unc: np.ndarray) -> int:
        if self.fixed is not None:
            d = self.fixed
        else:
            d = int(np.argmax(unc)) if unc.sum() else int(np.argmax(self.total))
        return cc + int(unc[d])

    def _state(self) -> None:
        R = len(self.learned)
        n = len(self.rows)
        self.cls = np.array([c for c, _ in self.learned] + [-1], dtype=np.int64)  # cls[R]: none
        self.covs = np.array([self._cov(nd) for _, nd in self.learned], dtype=bool).reshape(R, n)
        if R:
            anyc = self.covs.any(axis=0)
            self.first = np.where(anyc, self.covs.argmax(axis=0), R)
        else:
            self.first = np.full(n, R)
        self.unc = np.bincount(self.y[self.first == R], minlength=self.ncls)
        self.cc = int((self.cls[self.first] == self.y).sum())
        self.base = self._correct(self.cc, self.unc)

    def _loss(self, r: int, newcov: np.ndarray | None) -> int:
        """Correct training rows lost when rule r's coverage becomes ``newcov`` (None: deleted)."""
        R = len(self.learned)
        if newcov is None:
            D = np.flatnonzero(self.first == r)
            sub = self.covs[r + 1:, D]
            off = r + 1
        else:
            D = np.flatnonzero(self.covs[r] != newcov)
            sub = self.covs[:, D].copy()
            sub[r] = newcov[D]
            off = 0
        if len(sub):
            nf = np.where(sub.any(axis=0), sub.argmax(axis=0) + off, R)
        else:
            nf = np.full(len(D), R)
        yD = self.y[D]
        of = self.first[D]
        cc = self.cc - int((self.cls[of] == yD).sum()) + int((self.cls[nf] == yD).sum())
        unc = (self.unc - np.bincount(yD[of == R], minlength=self.ncls)
               + np.bincount(yD[nf == R], minlength=self.ncls))
        return self.base - self._correct(cc, unc)

    def run(self, alpha: float) -> list[tuple[int, _Node]]:
        while self.learned:
            self._state()
            best = None
            for r, (_, node) in enumerate(self.learned):
                cands = [(self._loss(r, None), _node_size(node), ("rule", r))]
                for parent, i in _exception_slots(node):
                    ex = parent.exceptions.pop(i)
                    try:
                        nc = self._cov(node)
                    finally:
                        parent.exceptions.insert(i, ex)
                    saved = _node_size(ex) + (1 if len(parent.exceptions) == 1 else 0)
                    cands.append((self._loss(r, nc), saved, ("exc", parent, i)))
                for loss, saved, op in cands:
                    # a rule with an empty body (fold-rm mode) saves nothing: dropped only if harmless
                    per = loss / saved if saved else (0.0 if loss <= 0 else math.inf)
                    key = (per, -saved)
                    if best is None or key < best[0]:
                        best = (key, op)
            if best is None or best[0][0] > alpha:
                break
            op = best[1]
            if op[0] == "rule":
                self.learned.pop(op[1])
            else:
                op[1].exceptions.pop(op[2])
        return self.learned
