"""The FOLD-SE-M search (docs/algorithms.md §6.5): literal scores, rule learning with exceptions, the covering
loop and the multi-class drivers, over an encoded table (:mod:`cnnlens.nesy.fold_encoding`),
and the learned rules as a :class:`~cnnlens.nesy.RuleSet`.

The algorithm is described in the module docstring of :mod:`cnnlens.nesy.fold`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fold_encoding import _Encoded
from .program import RuleSet
from .rules import TARGET, Literal, Rule

__all__ = ["information_gain", "gini_score"]

TAIL_BASES = ("left", "train")
"""What ``tail`` multiplies for a classifying rule: the examples left, or the training rows."""
EXCEPTION_TAILS = ("left", "train", "none")
"""What ``tail`` multiplies for an exception rule set: examples left, training rows, or no tail."""


# ------------------------------------------------------------------------------------------
# scores (§6.5)
# ------------------------------------------------------------------------------------------

def _xlogx(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a·ln(a/(a+b)) with 0 where a == 0 (zero-count terms are dropped, §6.5)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a * np.log(a / (a + b))
    return np.where(a > 0, out, 0.0)


def information_gain(tp: Any, fp: Any, tn: Any, fn: Any) -> np.ndarray:
    """Weighted-entropy information gain of §6.5 (element-wise over arrays of counts)::

        IG = [tp·ln(tp/(tp+fp)) + fp·ln(fp/(tp+fp)) + tn·ln(tn/(tn+fn)) + fn·ln(fn/(tn+fn))] / N

    zero-count terms dropped; −∞ where tp + tn < fp + fn.
    """
    tp, fp, tn, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, tn, fn))
    n = tp + fp + tn + fn
    s = _xlogx(tp, fp) + _xlogx(fp, tp) + _xlogx(tn, fn) + _xlogx(fn, tn)
    with np.errstate(divide="ignore", invalid="ignore"):
        ig = np.where(n > 0, s / np.maximum(n, 1), 0.0)
    return np.where(tp + tn < fp + fn, -np.inf, ig)


def gini_score(tp: Any, fp: Any, tn: Any, fn: Any) -> np.ndarray:
    """−(weighted Gini impurity) of the split, with the same −∞ rule as :func:`information_gain`."""
    tp, fp, tn, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, tn, fn))
    n = tp + fp + tn + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = np.where(tp + fp > 0, 2 * tp * fp / (tp + fp), 0.0)
        g2 = np.where(tn + fn > 0, 2 * tn * fn / (tn + fn), 0.0)
        s = np.where(n > 0, -(g1 + g2) / np.maximum(n, 1), 0.0)
    return np.where(tp + tn < fp + fn, -np.inf, s)


HEURISTICS = {"ig": information_gain, "gini": gini_score}


@dataclass
class _Node:
    """A learned rule before naming: body candidates + exception rule set."""

    body: list[tuple[str, int, bool]]  # (block 'ind'|'num', index, second-kind flag)
    exceptions: list[_Node] = field(default_factory=list)


def _seg_cumsum(cnt: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``cnt`` restarting wherever ``seg`` (sorted segment ids) changes."""
    cs = np.cumsum(cnt)
    if len(cs) == 0:
        return cs
    first = np.ones(len(seg), dtype=bool)
    first[1:] = seg[1:] != seg[:-1]
    offs = np.maximum.accumulate(np.where(first, cs - cnt, 0))  # cs - cnt is non-decreasing
    return cs - offs


class _Learner:
    """The search of §6.5 over an :class:`_Encoded` table.

    ``mode="fold-se-m"``: the FOLD-SE-M search (tail pruning, candidates that keep no positive or
    drop no negative are skipped, exceptions also after a stop on "no finite literal").
    ``mode="fold-rm"``: FOLD-RM as published (Wang & Gupta) and as the ``foldrm`` package: no
    tail, every literal over the values present in the current examples is offered (even one
    that keeps no positive), literals already used by a rule or its ancestors are not offered
    again, a rule stopped because no literal scores finitely gets no exceptions.

    The keyword options fix the FOLD-SE-M driver's choices; :class:`FoldSEM` passes its
    parameters of the same names (see there): ``class_order``, ``reopen_classes``,
    ``tail_base``, ``exception_tail``, ``remove_covered_negatives`` and ``catch_all``.
    """

    def __init__(self, enc: _Encoded, ratio: float, tail: float, heuristic: str,
                 mode: str = "fold-se-m", *, class_order: str = "frequent",
                 reopen_classes: bool = True, tail_base: str = "left",
                 exception_tail: str = "left", remove_covered_negatives: bool = True,
                 catch_all: bool = True) -> None:
        self.e = enc
        self.ratio = float(ratio)
        self.tail = float(tail)
        self.min_cover = float(tail) * enc.n
        self._n_left = enc.n  # examples left in the multi-class driver (exception tail base)
        self.score = HEURISTICS[heuristic]
        self.rm = mode == "fold-rm"
        self.class_order = class_order
        self.reopen_classes = bool(reopen_classes)
        self.tail_base = tail_base
        self.exception_tail = exception_tail
        self.remove_covered_negatives = bool(remove_covered_negatives)
        self.catch_all = bool(catch_all)
        self._is_flag = np.array([v is None for v in enc.ind_value], dtype=bool)  # 0/1 columns
        T = len(enc.thr)
        self._T = T
        q = enc.num_rank.shape[1]
        # local (present-values-only) threshold search pays off when the subset is small
        self._local_rows = max(1, T // max(4 * q, 1)) if q else 0

    # --- literal satisfaction -------------------------------------------------------------
    def sat(self, cand: tuple[str, int, bool], idx: np.ndarray) -> np.ndarray:
        block, k, second = cand
        if block == "ind":
            v = self.e.ind[idx, k].astype(bool)
            return ~v if second else v
        q = int(self.e.thr_col[k])
        x = self.e.num_vals[idx, q]
        # NaN (missing / string cell): both comparisons are false (FOLD-R++ convention)
        return (x > self.e.thr[k]) if second else (x <= self.e.thr[k])

    def covers(self, node: _Node, idx: np.ndarray) -> np.ndarray:
        ok = np.ones(len(idx), dtype=bool)
        for c in node.body:
            ok &= self.sat(c, idx)
        if node.exceptions and ok.any():
            sub = idx[ok]
            ab = np.zeros(len(sub), dtype=bool)
            for ex in node.exceptions:
                ab |= self.covers(ex, sub)
            ok[np.flatnonzero(ok)[ab]] = False
        return ok

    # --- counts for all candidates --------------------------------------------------------
    def _ind_counts(self, P: np.ndarray, N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = self.e
        if e.ind_f32 is not None and len(P) + len(N) > e.n // 6:
            masks = np.zeros((2, e.n), dtype=np.float32)
            masks[0, P] = 1.0
            masks[1, N] = 1.0
            c = masks @ e.ind_f32  # exact: integer counts < 2**24
            return c[0].astype(np.int64), c[1].astype(np.int64)
        return (e.ind[P].sum(axis=0, dtype=np.int64), e.ind[N].sum(axis=0, dtype=np.int64))

    def _num_counts(self, P: np.ndarray, N: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For the candidate thresholds: (threshold indices, #P ≤ t, #N ≤ t, #P with a number
        in that column, #N with a number). One sorted pass with prefix counts: over all
        thresholds (bincount of the global ranks + a segmented cumulative sum) for large
        subsets, over the values present in the subset only (sort of the subset's ranks) for
        small ones — the counts of an absent threshold equal those of the nearest present value
        below it, which comes first in the tie order, so both give the same best literal."""
        e = self.e
        T = self._T
        q = e.num_rank.shape[1]
        nP, nN = len(P), len(N)
        if e.num_present is None:
            presP = np.full(q, nP, dtype=np.int64)
            presN = np.full(q, nN, dtype=np.int64)
        else:
            presP = e.num_present[P].sum(axis=0, dtype=np.int64)
            presN = e.num_present[N].sum(axis=0, dtype=np.int64)
        if nP + nN <= self._local_rows:
            RP = e.num_rank[P].ravel()
            RN = e.num_rank[N].ravel()
            allr = np.concatenate([RP, RN])
            u, inv = np.unique(allr, return_inverse=True)
            inv = inv.reshape(-1)
            if len(u) and u[-1] == T:  # the NaN sentinel
                keep = len(u) - 1
            else:
                keep = len(u)
            cntP = np.bincount(inv[: len(RP)], minlength=len(u))[:keep]
            cntN = np.bincount(inv[len(RP):], minlength=len(u))[:keep]
            u = u[:keep]
            col = e.thr_col[u]
            return u, _seg_cumsum(cntP, col), _seg_cumsum(cntN, col), presP[col], presN[col]
        cntP = self._cnt_all(P)
        cntN = self._cnt_all(N)
        leP = _seg_cumsum(cntP, e.thr_col)
        leN = _seg_cumsum(cntN, e.thr_col)
        # only thresholds at values present in the subset (as the local search and FOLD-RM)
        idx = np.flatnonzero((cntP + cntN) > 0)
        col = e.thr_col[idx]
        return idx, leP[idx], leN[idx], presP[col], presN[col]

    def _cnt_all(self, idx: np.ndarray) -> np.ndarray:
        T = self._T
        if len(idx) == 0:
            return np.zeros(T, dtype=np.int64)
        return np.bincount(self.e.num_rank[idx].ravel(), minlength=T + 1)[:T]

    def best_literal(self, P: np.ndarray, N: np.ndarray,
                     used: frozenset = frozenset()) -> tuple[str, int, bool] | None:
        """Best candidate over every column at once (§6.5), or None if none scores finitely.
        ``used``: (block, index) pairs not to offer again (both polarities)."""
        e = self.e
        nP, nN = len(P), len(N)
        best: tuple[float, int, int, tuple[str, int, bool]] | None = None
        if e.ind.shape[1]:
            cP, cN = self._ind_counts(P, N)
            tp = np.stack([cP, nP - cP], axis=1)  # (m, 2): [in, out]
            fp = np.stack([cN, nN - cN], axis=1)
            s = self.score(tp, fp, nN - fp, nP - tp)
            if self.rm:  # FOLD-RM offers every literal over the values present in the subset
                ok = np.broadcast_to((((cP + cN) > 0) | self._is_flag)[:, None], tp.shape).copy()
            else:
                ok = (tp > 0) & (fp < nN)
            if used:
                ban = [k for b, k in used if b == "ind"]
                if ban:
                    ok[ban, :] = False
            s = np.where(ok, s, -np.inf).ravel()
            k = int(np.argmax(s))
            if np.isfinite(s[k]):
                best = (float(s[k]), int(e.ind_feature[k // 2]), 1, ("ind", k // 2, bool(k % 2)))
        if self._T:
            idx, leP, leN, presP, presN = self._num_counts(P, N)
            if len(idx):
                tp = np.stack([leP, presP - leP], axis=1)  # (t, 2): [<=, >]
                fp = np.stack([leN, presN - leN], axis=1)
                s = self.score(tp, fp, nN - fp, nP - tp)
                ok = np.ones(tp.shape, dtype=bool) if self.rm else (tp > 0) & (fp < nN)
                if used:
                    ban = np.array([k for b, k in used if b == "num"], dtype=np.int64)
                    if len(ban):
                        ok &= ~np.isin(idx, ban)[:, None]
                s = np.where(ok, s, -np.inf).ravel()
                k = int(np.argmax(s))
                if np.isfinite(s[k]):
                    t = int(idx[k // 2])
                    col = int(e.num_feature[e.thr_col[t]])
                    cand = (float(s[k]), col, 0, ("num", t, bool(k % 2)))
                    # ties: lowest column; within a column numeric comparisons before values
                    if best is None or (cand[0], -cand[1], -cand[2]) > (best[0], -best[1], -best[2]):
                        best = cand
        return None if best is None else best[3]

    # --- the algorithm --------------------------------------------------------------------
    def learn_rule(self, P: np.ndarray, N: np.ndarray, used: frozenset = frozenset(),
                   keep_empty: bool = False) -> _Node | None:
        """One rule for ``P`` against ``N`` (§6.5). ``keep_empty``: when no literal scores
        finitely at the first step, keep the rule with an empty body (it covers every example
        left, minus its exceptions) instead of returning None — FOLD-RM's behaviour, used for the
        classifying rules of the FOLD-SE-M multi-class driver (``FoldSEM(catch_all=True)``)."""
        body: list[tuple[str, int, bool]] = []
        mine: set = set()
        invalid = False
        while True:
            lit = self.best_literal(P, N, used | mine if mine else used)
            if lit is None:
                invalid = True
                break
            body.append(lit)
            mine.add(lit[:2])
            P = P[self.sat(lit, P)]
            N = N[self.sat(lit, N)]
            if len(N) <= self.ratio * len(P):
                break
        if not body:
            if self.rm and invalid and (len(P) or len(N)):
                # FOLD-RM keeps the rule with an empty body (it covers every example)
                return _Node([])
            if keep_empty and not self.rm and len(P):
                node = _Node([])
                if len(N):
                    node.exceptions = self.fold(N, P, used)
                return node
            return None
        node = _Node(body)
        if len(N) > 0 and not (self.rm and invalid):
            node.exceptions = self.fold(N, P, used | mine)  # positives and negatives swapped
        return node

    def fold(self, P: np.ndarray, N: np.ndarray, used: frozenset = frozenset()) -> list[_Node]:
        """Covering loop: rules for P against N until no rule (or, FOLD-SE, only a rule covering
        fewer than ``tail·n_left`` positives) is left."""
        if self.rm or self.exception_tail == "none":
            mc = 0.0
        elif self.exception_tail == "left":
            mc = self.tail * self._n_left
        else:
            mc = self.min_cover
        rules: list[_Node] = []
        while len(P) > 0:
            r = self.learn_rule(P, N, used)
            if r is None:
                break
            cov = self.covers(r, P)
            k = int(cov.sum())
            if k == 0 or k < mc:
                break
            rules.append(r)
            P = P[~cov]
        return rules

    def multiclass_rm(self, y: np.ndarray, n_classes: int) -> list[tuple[int, _Node]]:
        """FOLD-RM's driver: the most frequent class among the examples left (ties: the class
        whose first example comes last in the list, as the reference implementation), one
        rule, remove the positives it covers (covered negatives stay); stop at the first rule
        that covers no positive."""
        remaining = np.arange(self.e.n)
        out: list[tuple[int, _Node]] = []
        while len(remaining):
            yr = y[remaining]
            counts = np.bincount(yr, minlength=n_classes)
            top = np.flatnonzero(counts == counts.max())
            if len(top) > 1:
                first = {int(c): int(np.argmax(yr == c)) for c in top}
                c = max(first, key=first.get)
            else:
                c = int(top[0])
            is_c = yr == c
            P, N = remaining[is_c], remaining[~is_c]
            r = self.learn_rule(P, N)
            if r is None:
                break
            cov = self.covers(r, P)
            if not cov.any():
                break
            out.append((c, r))
            remaining = np.concatenate([P[~cov], N])
        return out

    def multiclass_sem(self, y: np.ndarray, n_classes: int) -> list[tuple[int, _Node]]:
        """FOLD-SE-M's multi-class driver (module docstring): the most frequent open class among
        the examples left gets one rule; covered examples (positives and negatives) leave; a
        rule covering fewer than ``tail·|examples left|`` positives closes its class until the
        next rule is accepted; exception rule sets are pruned at the same ``tail·|examples left|``."""
        remaining = np.arange(self.e.n)
        out: list[tuple[int, _Node]] = []
        open_ = np.ones(n_classes, dtype=bool)
        try:
            return self._multiclass_sem(y, n_classes, remaining, out, open_)
        finally:
            self._n_left = self.e.n

    def _multiclass_sem(self, y, n_classes, remaining, out, open_):
        if self.class_order == "best":
            return self._multiclass_best(y, n_classes, remaining, out)
        while len(remaining):
            counts = np.bincount(y[remaining], minlength=n_classes)
            counts = np.where(open_ & (counts > 0), counts, -1)
            c = int(np.argmax(counts))
            if counts[c] < 0:
                break
            is_c = y[remaining] == c
            self._n_left = len(remaining)
            r = self.learn_rule(remaining[is_c], remaining[~is_c], keep_empty=self.catch_all)
            if r is None:
                open_[c] = False
                continue
            cov = self.covers(r, remaining)
            k = int((cov & is_c).sum())
            if k == 0 or k < self._class_min_cover(len(remaining)):
                open_[c] = False
                continue
            out.append((c, r))
            if self.remove_covered_negatives:
                remaining = remaining[~cov]
            else:
                remaining = remaining[~(cov & is_c)]
            if self.reopen_classes:
                open_[:] = True
        return out

    def _multiclass_best(self, y, n_classes, remaining, out):
        """``class_order="best"``: every class present among the examples left gets a candidate
        rule (learned as in the frequent-class driver, exceptions included); the rule with the
        largest net coverage tp − fp (covered positives minus covered negatives, on the examples
        left; ties: the first class in ``classes_``) is appended and every example it covers
        leaves. Candidates covering no positive or fewer than ``tail·|examples left|`` are not
        eligible; the driver stops when no class has an eligible rule."""
        while len(remaining):
            self._n_left = len(remaining)
            yr = y[remaining]
            best = None
            for c in np.unique(yr):
                is_c = yr == c
                r = self.learn_rule(remaining[is_c], remaining[~is_c], keep_empty=self.catch_all)
                if r is None:
                    continue
                cov = self.covers(r, remaining)
                k = int((cov & is_c).sum())
                if k == 0 or k < self._class_min_cover(len(remaining)):
                    continue
                net = k - int((cov & ~is_c).sum())
                if best is None or net > best[0]:
                    best = (net, int(c), r, cov)
            if best is None:
                break
            out.append((best[1], best[2]))
            remaining = remaining[~best[3]]
        return out

    def _class_min_cover(self, n_left: int) -> float:
        return self.tail * (n_left if self.tail_base == "left" else self.e.n)


# ------------------------------------------------------------------------------------------
# learned nodes → rule program
# ------------------------------------------------------------------------------------------

def _literal(enc: _Encoded, predicates: Sequence[str], cand: tuple[str, int, bool]) -> Literal:
    block, k, second = cand
    if block == "ind":
        j = int(enc.ind_feature[k])
        name = predicates[j]
        v = enc.ind_value[k]
        if v is None:
            return Literal(name, "holds", None, second)
        return Literal(name, "==", v, second)
    j = int(enc.num_feature[enc.thr_col[k]])
    return Literal(predicates[j], ">" if second else "<=", float(enc.thr[k]))


def to_ruleset(enc: _Encoded, predicates: Sequence[str], learned: list[tuple[int, _Node]],
               class_constants: Mapping[int, Any], default: Any) -> RuleSet:
    """The program of the learned ``(class index, rule)`` list: classifying rules in order, then
    the exception rules, numbered ``ab1``, ``ab2`` … depth-first right after their rule."""
    target_rules: list[Rule] = []
    ab_rules: list[Rule] = []
    counter = [0]

    def body_of(node: _Node) -> tuple[Literal, ...]:
        lits = [_literal(enc, predicates, c) for c in node.body]
        if node.exceptions:
            counter[0] += 1
            name = f"ab{counter[0]}"
            lits.append(Literal(name, "holds", None, True))
            pending.append((name, node.exceptions))
        return tuple(lits)

    pending: list[tuple[str, list[_Node]]] = []
    for c, node in learned:
        target_rules.append(Rule(TARGET, body_of(node), class_constants[c]))
        # exceptions get their numbers depth-first, right after their rule
        while pending:
            name, exs = pending.pop(0)
            for ex in exs:
                ab_rules.append(Rule(name, body_of(ex)))
    ab_rules.sort(key=lambda r: int(r.head[2:]))  # stable: keeps learned order within abN
    return RuleSet(tuple(target_rules + ab_rules), default)
