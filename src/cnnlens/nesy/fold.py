"""FOLD-SE-M rule learner — clean-room implementation of SPEC §6.5.

What is implemented (the FOLD-R++ / FOLD-RM / FOLD-SE algorithms as the SPEC describes them)
=========================================================================================

**Columns** (``fit_report_`` / ``column_report_`` say how each unusual column was treated).
A cell is *missing* when it is None, NaN, pandas.NA or an empty string; strings that parse as
finite numbers are numbers; ``inf`` / ``-inf`` and every other string are *values*. A column whose
filled cells are all 0/1 numbers is *binary*; one whose filled cells are mostly numbers is
*numeric* — its string cells (``?``, ``-``, ``inf`` …) are values, as in FOLD-R++/RM's mixed
columns; otherwise (or when named in ``categorical=``) it is *categorical*. Missing cells make
every literal on them false except the negated ones (``not f(X)``, ``f != v``), exactly as an ASP
fact that is absent. At predict time unseen categorical values match no ``f == v``, and a 0/1
column holding anything but 1 (e.g. 2) makes ``f(X)`` false (with a warning).

**Literals.** For a categorical column ``f`` with values ``v``: ``f == v`` and ``f != v``. For a
0/1 column only ``f == 1`` (printed ``f(X)``) and ``f == 0`` (printed ``not f(X)``). For a numeric
column: ``f =< t`` and ``f > t`` with ``t`` ranging over the numbers present among the current
examples (false on cells without a number), plus ``f == v`` / ``f != v`` for its string values.

**Score** (SPEC §6.5). With tp/fp the positives/negatives the literal keeps (covers) and fn/tn
the positives/negatives it drops, out of the N examples currently covered by the rule::

    IG = [tp·ln(tp/(tp+fp)) + fp·ln(fp/(tp+fp)) + tn·ln(tn/(tn+fn)) + fn·ln(fn/(tn+fn))] / N

with zero-count terms dropped and IG = −∞ when tp + tn < fp + fn. ``heuristic="ig"`` (default)
uses it; ``heuristic="gini"`` scores −[2·tp·fp/(tp+fp) + 2·tn·fn/(tn+fn)] / N (the weighted
Gini impurity of the split, same −∞ rule). A candidate that keeps no positive or drops no
negative cannot improve the rule and is skipped (this also stops a literal from being added
twice). Highest score wins; **ties** go to the candidate that comes first in this order: lowest
column index; within a categorical column values in sorted order (integers before strings),
``== v`` before ``!= v``; within a 0/1 column ``f(X)`` before ``not f(X)``; within a numeric
column thresholds ascending, ``=< t`` before ``> t``.

**learn_rule(P, N)** — P/N: the positive/negative examples. Repeat: add the best literal and keep
only the examples it covers; stop as soon as fp ≤ ratio·tp (``ratio``; the first literal is
always tried, as in FOLD-R++), or when no candidate scores finitely (then the literals found so
far are kept; with none found, there is no rule). If covered negatives remain (fp > 0) they are
the rule's *exceptions*: a rule set for them is learned by the covering loop below with
positives and negatives swapped (positives = the covered negatives, negatives = the covered
positives), given a fresh predicate ``abN`` and the rule gets the literal ``not abN(X)``. The
same procedure runs inside, so exceptions can have exceptions (``abN :- …, not abM(X).``).
Recursion ends because every literal drops at least one negative, so the examples left shrink.

**Covering loop fold(P, N)** (exception rule sets, and the binary convention): learn a rule, stop
when there is none, when it covers no positive, or (``tail``, FOLD-SE) when it covers fewer than
``tail·n_left`` positives; otherwise keep it, remove the positives it covers (negatives stay) and
repeat. ``n_left`` = the examples the multi-class driver still had when it learned the
classifying rule the exceptions belong to (= |train| under the binary convention). Counting
|train| instead pruned the exceptions of late rules so hard that they covered many negatives:
−5 points on binarized digits (EXPERIMENTS.md).

**Binary convention** (FOLD-SE; ``positive_class="auto"`` on two classes): the covering loop
learns rules for the positive class only (the less frequent class, or ``positive_class``); the
other class is the default. ``positive_class=None`` learns rules for both (driver below).

**Multi-class driver** (FOLD-SE-M): among the examples left take the most frequent open class
(ties: the first in ``classes_``), learn *one* rule for it (positives = that class, negatives =
all other classes left), append it and remove every example it covers (positives and
negatives); repeat until no example is left. A rule that does not exist, covers no positive or
fewer than ``tail·|examples left|`` positives closes its class until the next rule is accepted
(then every class is open again); the driver stops when no open class can get a rule. (The
original driver counted ``tail·|train|`` and closed a class for good: on binarized digits 4% of
the test rows then fell to the default class; see EXPERIMENTS.md.) Rules are
ordered; prediction is the first rule that fires, else the default class: ``default_class`` if
given, the other class under the binary convention, otherwise the most frequent class among the
training examples no rule covers (ties: first in ``classes_``; the overall most frequent class
when every example is covered). :meth:`FoldSEM.predict_rule` reports which rule fired (−1 =
default used).

**class_order="best"** (option; default ``"frequent"`` = the driver above, SPEC §6.5): instead of
the most frequent class, every class present among the examples left gets a candidate rule
(learned exactly as above, exceptions included) and the one with the largest net coverage
tp − fp on the examples left is appended (ties: first in ``classes_``); candidates failing the
tail are skipped; the driver stops when no class has an eligible rule. About one rule search per
class per step, so fits take up to (number of classes)× longer.

**Pruning** (``prune=alpha``, option; default None = off): after learning, greedy backward
elimination on the training rows (:class:`_Pruner`). Each step deletes the one classifying rule
(with its exceptions) or exception rule (with its own exceptions, and the ``not abN`` literal
when it was the last rule of its set) that costs the fewest correctly classified training rows
per literal saved — the ordered program with the default class as ``fit`` chooses it — while
that cost is ≤ ``alpha``. ``prune=0`` only drops parts that change no training prediction for
the worse. On binarized digits ``class_order="best", prune=1.0`` gives 0.863 test accuracy at
size 117 (issue 13's goal, ≥ 0.86 at ≤ 120); the defaults give 0.856 at 237. Neither is the
default because pruning at ``alpha ≈ 1`` costs 2 points on the generated 10-class 0/1 table and
1–3 points on iris (EXPERIMENTS.md, "Post-pruning and class order").

**mode="fold-rm"** follows FOLD-RM as published and as the ``foldrm`` package implements it
(tested to learn the same rule trees): no tail; every literal over the values present among the
current examples is offered (also ones that keep no positive), except literals the rule or its
ancestors already use; a rule stopped because no literal scores finitely gets no exceptions;
the driver removes only the covered *positives* (ties between classes: the one whose first
example comes last) and stops at the first rule that covers no positive.

**Fast path.** 0/1 and categorical columns become one 0/1 indicator matrix; the counts tp/fp
for *every* candidate at once are one column-sum reduction (a float32 matrix product with the
P/N masks when the covered set is large, a gathered ``sum`` when it is small). Numeric columns
are dense-ranked once; the threshold counts are one sorted pass with prefix counts: for a large
example set one ``bincount`` over rank offsets plus a segmented cumulative sum over all
thresholds, for a small one a sort of the set's own ranks (cost ∝ the set, not the table). The
0/1 (NeSy) case is just the indicator matrix, so a 10,000 × 512 table learns in well under a
second; a 20,000 × 16 continuous table in FOLD-RM mode in seconds (BENCHMARKS.md).
"""
from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .._io import atomic_write_text
from ..errors import CnnlensError
from .program import EXAMPLE, TARGET, Justification, Literal, Rule, RuleSet, normalize_constant

__all__ = ["FoldSEM", "predicate_name", "information_gain", "read_model_json"]

_FORMAT = "cnnlens.FoldSEM"
_FORMAT_VERSION = 1


# ------------------------------------------------------------------------------------------
# scores (SPEC §6.5)
# ------------------------------------------------------------------------------------------

def _xlogx(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a·ln(a/(a+b)) with 0 where a == 0 (zero-count terms are dropped, SPEC §6.5)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a * np.log(a / (a + b))
    return np.where(a > 0, out, 0.0)


def information_gain(tp: Any, fp: Any, tn: Any, fn: Any) -> np.ndarray:
    """Weighted-entropy information gain of SPEC §6.5 (element-wise over arrays of counts)::

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


_HEURISTICS = {"ig": information_gain, "gini": gini_score}


# ------------------------------------------------------------------------------------------
# names
# ------------------------------------------------------------------------------------------

_RESERVED = re.compile(rf"^(?:{TARGET}|{EXAMPLE}|not|ab\d+)$")


def predicate_name(name: Any) -> str:
    """ASP predicate for a column name: ``3`` → ``f3``, ``"Cell size"`` → ``cell_size``;
    reserved names (``target``, ``example``, ``not``, ``abN``) get a trailing ``_``."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(name).strip())
    if not s or not s[0].isalpha():
        s = "f" + s if s[:1].isdigit() else "f_" + s
    s = s[0].lower() + s[1:]
    if _RESERVED.match(s):
        s += "_"
    return s


def _unique_predicates(names: Sequence[Any]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        p = predicate_name(n)
        base, k = p, 2
        while p in seen:
            p = f"{base}_{k}"
            k += 1
        seen.add(p)
        out.append(p)
    return out


def _sort_key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, int) else (1, 0, str(v))


# ------------------------------------------------------------------------------------------
# encoded training table
# ------------------------------------------------------------------------------------------

@dataclass
class _Encoded:
    """The training table in the form the learner searches."""

    n: int
    # indicator block (0/1 columns, one-hot categorical values, string values of mixed columns)
    ind: np.ndarray  # (n, m) uint8
    ind_f32: np.ndarray | None  # (n, m) float32 (for the matrix-product counts), or None
    ind_feature: np.ndarray  # (m,) column index of the feature
    ind_value: list  # None for 0/1 columns, the categorical value otherwise
    # numeric block (NaN = no number in that cell: missing or a string of a mixed column)
    num_vals: np.ndarray  # (n, q) float64
    num_rank: np.ndarray  # (n, q) int64, dense rank + global offset; T (= len(thr)) for NaN cells
    num_present: np.ndarray | None  # (n, q) uint8: cell holds a number; None when all do
    num_feature: np.ndarray  # (q,) column index
    thr: np.ndarray  # (T,) thresholds, per numeric column ascending, concatenated
    thr_col: np.ndarray  # (T,) which numeric block column (0..q-1) a threshold belongs to
    seg_start: np.ndarray  # (q,) offset of each column's thresholds in thr
    seg_len: np.ndarray  # (q,)


@dataclass
class _Node:
    """A learned rule before naming: body candidates + exception rule set."""

    body: list[tuple[str, int, bool]]  # (block 'ind'|'num', index, second-kind flag)
    exceptions: list["_Node"] = field(default_factory=list)


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
    """The search of SPEC §6.5 over an :class:`_Encoded` table.

    ``mode="fold-se-m"``: the FOLD-SE-M search (tail pruning, candidates that keep no positive or
    drop no negative are skipped, exceptions also after a stop on "no finite literal").
    ``mode="fold-rm"``: FOLD-RM as published (Wang & Gupta) and as the ``foldrm`` package: no
    tail, every literal over the values present in the current examples is offered (even one
    that keeps no positive), literals already used by a rule or its ancestors are not offered
    again, a rule stopped because no literal scores finitely gets no exceptions.

    The class attributes ``retry``, ``tail_base``, ``exc_tail`` and ``remove_negatives`` fix the
    FOLD-SE-M driver's choices; they exist for the many-class study
    (experiments/fold_manyclass.py) and are not part of the public API.
    ``class_order`` is set per instance from :class:`FoldSEM`'s option of that name.
    """

    def __init__(self, enc: _Encoded, ratio: float, tail: float, heuristic: str,
                 mode: str = "fold-se-m") -> None:
        self.e = enc
        self.ratio = float(ratio)
        self.tail = float(tail)
        self.min_cover = float(tail) * enc.n
        self._n_left = enc.n  # examples left in the multi-class driver (exception tail base)
        self.score = _HEURISTICS[heuristic]
        self.rm = mode == "fold-rm"
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
        """Best candidate over every column at once (SPEC §6.5), or None if none scores finitely.
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
    def learn_rule(self, P: np.ndarray, N: np.ndarray, used: frozenset = frozenset()) -> _Node | None:
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
            return None
        node = _Node(body)
        if len(N) > 0 and not (self.rm and invalid):
            node.exceptions = self.fold(N, P, used | mine)  # positives and negatives swapped
        return node

    def fold(self, P: np.ndarray, N: np.ndarray, used: frozenset = frozenset()) -> list[_Node]:
        """Covering loop: rules for P against N until no rule (or, FOLD-SE, only a rule covering
        fewer than ``tail·n_left`` positives) is left."""
        if self.rm or self.exc_tail == "none":
            mc = 0.0
        elif self.exc_tail == "left":
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
            r = self.learn_rule(remaining[is_c], remaining[~is_c])
            if r is None:
                open_[c] = False
                continue
            cov = self.covers(r, remaining)
            k = int((cov & is_c).sum())
            if k == 0 or k < self._class_min_cover(len(remaining)):
                open_[c] = False
                continue
            out.append((c, r))
            if self.remove_negatives:
                remaining = remaining[~cov]
            else:
                remaining = remaining[~(cov & is_c)]
            if self.retry:
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
                r = self.learn_rule(remaining[is_c], remaining[~is_c])
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

    class_order = "frequent"
    retry = True
    tail_base = "left"
    exc_tail = "left"
    remove_negatives = True

    def _class_min_cover(self, n_left: int) -> float:
        return self.tail * (n_left if self.tail_base == "left" else self.e.n)


def _node_size(node: _Node) -> int:
    """Body literals of a rule and its exception rules, ``not abN`` included (SPEC §6.7)."""
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


# ------------------------------------------------------------------------------------------
# cells: numbers, missing values, string values (FOLD-R++ mixed columns)
# ------------------------------------------------------------------------------------------

def _is_missing(v: Any) -> bool:
    """None, NaN, pandas.NA / NaT, an empty or blank string."""
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    if isinstance(v, str):
        return not v.strip()
    return type(v).__name__ in ("NAType", "NaTType")


def _inf_const(f: float) -> str:
    return "inf" if f > 0 else "-inf"


def _parse_cells(col: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Split a column into (numbers: float64 with NaN where the cell is not a number, missing:
    bool mask of empty / NaN / None cells, other: object array with the constant of every
    non-numeric, non-missing cell — a string, or ``'inf'`` / ``'-inf'`` — or None if there is
    none). Strings that parse as finite numbers count as numbers."""
    col = np.asarray(col)
    if col.ndim != 1:
        col = col.reshape(-1)
    if col.dtype.kind in "biuf":
        num = col.astype(np.float64)
        miss = np.isnan(num)
        inf = np.isinf(num)
        other = None
        if inf.any():
            other = np.full(len(num), None, dtype=object)
            other[inf] = np.where(num[inf] > 0, "inf", "-inf")
            num = np.where(inf, np.nan, num)
        return num, miss, other
    n = len(col)
    num = np.full(n, np.nan)
    miss = np.zeros(n, dtype=bool)
    other: np.ndarray | None = None
    for i, v in enumerate(col):
        const: Any
        if isinstance(v, str):
            s = v.strip()
            if not s:
                miss[i] = True
                continue
            try:
                f = float(s)
            except ValueError:
                const = s
            else:
                if f != f:
                    miss[i] = True
                    continue
                if math.isinf(f):
                    const = _inf_const(f)
                else:
                    num[i] = f
                    continue
        elif _is_missing(v):
            miss[i] = True
            continue
        elif isinstance(v, (bool, np.bool_)):
            num[i] = float(v)
            continue
        elif isinstance(v, (int, float, np.integer, np.floating)):
            f = float(v)
            if math.isinf(f):
                const = _inf_const(f)
            else:
                num[i] = f
                continue
        else:
            const = normalize_constant(v)
        if other is None:
            other = np.full(n, None, dtype=object)
        other[i] = const
    return num, miss, other


def _categorical_constants(col: Any) -> np.ndarray:
    """Constants of a categorical column (None for missing cells)."""
    col = np.asarray(col, dtype=object).reshape(-1)
    return np.array([None if _is_missing(v) else normalize_constant(v) for v in col], dtype=object)


def _few(values: Sequence[Any], counts: Sequence[int] | None = None, k: int = 5) -> str:
    items = [repr(v) + (f" ×{c}" if counts is not None else "") for v, c in
             zip(values, counts if counts is not None else [None] * len(values))]
    return ", ".join(items[:k]) + (" …" if len(items) > k else "")


# ------------------------------------------------------------------------------------------
# the estimator
# ------------------------------------------------------------------------------------------

_MODES = ("fold-se-m", "fold-rm")
_CLASS_ORDERS = ("frequent", "best")
_KINDS = ("binary", "numeric", "categorical")


class FoldSEM(ClassifierMixin, BaseEstimator):
    """FOLD-SE-M rule learner as a scikit-learn classifier (SPEC §6.5; module docstring).

    Parameters
    ----------
    ratio : float, default 0.8
        Exception ratio: literals are added to a rule until fp ≤ ratio·tp; remaining false
        positives become exceptions (``not abN(X)``). (The ``foldrm`` package's default is 0.5.)
    tail : float, default 5e-3
        FOLD-SE pruning (``mode="fold-se-m"`` only): a classifying or exception rule must cover
        at least ``tail·(examples left)`` positives (multi-class driver; ``tail·n_train`` under
        the binary convention).
    heuristic : {"ig", "gini"}, default "ig"
        Literal score: information gain of SPEC §6.5 or weighted Gini.
    default_class : label or None
        Class predicted when no rule fires; None: the other class under the binary convention,
        else the most frequent class among the training examples the rules leave uncovered.
    mode : {"fold-se-m", "fold-rm"}, default "fold-se-m"
        ``"fold-rm"`` follows FOLD-RM's published algorithm (no tail; see :class:`_Learner`).
    positive_class : "auto", None or a label, default "auto"
        Binary convention (FOLD-SE, ``mode="fold-se-m"``): rules for the positive class only,
        the other class is the default. ``"auto"``: on two-class tables the less frequent class
        (ties: the second in ``classes_``) is positive, on more classes every class gets rules;
        None: every class gets rules (FOLD-RM driver) also on two classes.
    class_order : {"frequent", "best"}, default "frequent"
        Multi-class driver: the next rule is learned for the most frequent class left (SPEC
        §6.5), or ``"best"``: for every class, keeping the rule with the largest net coverage
        tp − fp (module docstring). No effect under the binary convention or in fold-rm mode.
    prune : float or None, default None
        Post-pruning (module docstring, "Pruning"): drop classifying / exception rules while each
        removal costs at most ``prune`` correctly classified training rows per literal saved.
        None: off. ``class_order="best", prune=1.0`` reaches 0.86 test accuracy at size ≤ 120 on
        binarized digits (the defaults: 0.856 at 237), at some cost on other tables
        (EXPERIMENTS.md).

    Attributes (after ``fit``): ``rules_`` (:class:`RuleSet`), ``classes_``, ``n_features_in_``,
    ``feature_names_in_``, ``feature_predicates_``, ``feature_kinds_`` ("binary",
    "categorical" or "numeric" per column), ``default_class_``, ``positive_class_`` (None when
    every class got rules), ``column_report_`` (per column: kind, missing and non-numeric cells,
    a note on how they were treated), ``fit_report_`` (those notes as text lines).

    Example
    -------
    >>> import numpy as np
    >>> X = np.array([[1, 0], [1, 1], [0, 1], [0, 0]]); y = np.array([1, 1, 0, 0])
    >>> print(FoldSEM(tail=0).fit(X, y).rules_.to_asp(), end="")
    target(X,1) :- f0(X).
    % default: 0
    """

    def __init__(self, ratio: float = 0.8, tail: float = 5e-3, heuristic: str = "ig",
                 default_class: Any = None, mode: str = "fold-se-m",
                 positive_class: Any = "auto", class_order: str = "frequent",
                 prune: float | None = None) -> None:
        self.ratio = ratio
        self.tail = tail
        self.heuristic = heuristic
        self.default_class = default_class
        self.mode = mode
        self.positive_class = positive_class
        self.class_order = class_order
        self.prune = prune

    # --- input handling -------------------------------------------------------------------
    def _check_params(self) -> None:
        if (isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float))
                or not np.isfinite(self.ratio) or self.ratio < 0):
            raise CnnlensError(f"ratio must be a finite number >= 0 (0.8 in NESY), got {self.ratio!r}")
        if isinstance(self.tail, bool) or not isinstance(self.tail, (int, float)) or not (0 <= self.tail < 1):
            raise CnnlensError(f"tail must be a number in [0, 1) (5e-3 in NESY), got {self.tail!r}")
        if self.heuristic not in _HEURISTICS:
            raise CnnlensError(f"heuristic must be one of {', '.join(_HEURISTICS)}, got {self.heuristic!r}")
        if self.mode not in _MODES:
            raise CnnlensError(f"mode must be one of {', '.join(_MODES)}, got {self.mode!r}")
        if self.class_order not in _CLASS_ORDERS:
            raise CnnlensError(
                f"class_order must be one of {', '.join(_CLASS_ORDERS)}, got {self.class_order!r}")
        if self.prune is not None and (isinstance(self.prune, bool) or not isinstance(self.prune, (int, float))
                                       or not np.isfinite(self.prune) or self.prune < 0):
            raise CnnlensError(f"prune must be None (off) or a finite number >= 0, got {self.prune!r}")

    @staticmethod
    def _columns(X: Any, feature_names: Sequence[Any] | None) -> tuple[list[Any], list[np.ndarray], bool]:
        """Split X into named 1-D columns. Returns (names, columns, is_dataframe)."""
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):
            names = list(X.columns) if feature_names is None else list(feature_names)
            if len(names) != X.shape[1]:
                raise CnnlensError(f"feature_names has {len(names)} names for {X.shape[1]} columns")
            return names, [X.iloc[:, j].to_numpy() for j in range(X.shape[1])], True
        try:
            arr = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise CnnlensError(f"X is not a table (2-D array or DataFrame): {exc}") from None
        if arr.ndim != 2:
            raise CnnlensError(f"X must be 2-D (examples × features), got shape {arr.shape}")
        names = [f"f{j}" for j in range(arr.shape[1])] if feature_names is None else list(feature_names)
        if len(names) != arr.shape[1]:
            raise CnnlensError(f"feature_names has {len(names)} names for {arr.shape[1]} columns")
        return names, [arr[:, j] for j in range(arr.shape[1])], False

    def _encode(self, X: Any, feature_names: Sequence[Any] | None,
                categorical: Sequence[Any] | None) -> _Encoded:
        names, cols, _ = self._columns(X, feature_names)
        if not names:
            raise CnnlensError("X has no columns")
        n = len(cols[0])
        if n == 0:
            raise CnnlensError("X has no rows")
        str_names = [str(x) for x in names]
        if len(set(str_names)) != len(str_names):
            seen: set[str] = set()
            dup = sorted({s for s in str_names if s in seen or seen.add(s)})  # type: ignore[func-returns-value]
            raise CnnlensError(f"duplicate column name(s): {', '.join(dup[:10])}")
        forced: set[int] = set()
        index_of = {nm: j for j, nm in enumerate(names)}
        for c in (categorical or ()):
            if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c not in index_of:
                if not 0 <= int(c) < len(names):
                    raise CnnlensError(f"categorical column index {c} is out of range (0..{len(names) - 1})")
                forced.add(int(c))
            elif c in index_of:
                forced.add(index_of[c])
            else:
                raise CnnlensError(
                    f"categorical column {c!r} is not a column of X; columns: "
                    f"{', '.join(map(str, names[:30]))}{' …' if len(names) > 30 else ''}"
                )
        kinds: list[str] = []
        report: list[dict] = []
        ind_cols: list[np.ndarray] = []
        ind_feature: list[int] = []
        ind_value: list[Any] = []
        num_cols: list[np.ndarray] = []
        num_feature: list[int] = []

        def add_values(j: int, consts: np.ndarray) -> None:
            present = [v for v in consts if v is not None]
            uniq = sorted(set(present), key=_sort_key)
            pos = {v: i for i, v in enumerate(uniq)}
            codes = np.fromiter((-1 if v is None else pos[v] for v in consts), dtype=np.int64, count=n)
            for i, v in enumerate(uniq):
                ind_cols.append((codes == i).astype(np.uint8))
                ind_feature.append(j)
                ind_value.append(v)

        for j, (name, col) in enumerate(zip(names, cols)):
            entry: dict[str, Any] = {"column": str(name)}
            if j in forced:
                consts = _categorical_constants(col)
                nmiss = int(sum(v is None for v in consts))
                kinds.append("categorical")
                entry.update(kind="categorical", missing=nmiss, declared=True)
                if nmiss:
                    entry["note"] = (f"categorical (declared); {nmiss} empty/NaN cell(s) match no value "
                                     "(f == v false, f != v true)")
                add_values(j, consts)
                report.append(entry)
                continue
            num, miss, other = _parse_cells(col)
            nmiss = int(miss.sum())
            is_num = ~np.isnan(num)
            n_num = int(is_num.sum())
            n_other = 0 if other is None else int(sum(v is not None for v in other))
            entry.update(missing=nmiss)
            if n_other:
                vals, cnts = np.unique(np.array([str(v) for v in other if v is not None]), return_counts=True)
                order = np.argsort(-cnts, kind="stable")
                entry["non_numeric"] = {str(vals[i]): int(cnts[i]) for i in order[:20]}
            if n_num and n_other == 0 and np.all((num[is_num] == 0) | (num[is_num] == 1)):
                kinds.append("binary")
                entry["kind"] = "binary"
                if nmiss:
                    entry["note"] = (f"0/1 column; {nmiss} empty/NaN cell(s) count as not 1 "
                                     "(f(X) false, not f(X) true)")
                ind_cols.append((num == 1).astype(np.uint8))
                ind_feature.append(j)
                ind_value.append(None)
            elif n_num and n_num >= n_other:
                kinds.append("numeric")
                entry["kind"] = "numeric"
                notes = []
                if nmiss:
                    notes.append(f"{nmiss} empty/NaN cell(s) are missing: both f =< t and f > t are false there")
                if n_other:
                    notes.append(
                        f"{n_other} non-numeric cell(s) ({_few(list(entry['non_numeric']), list(entry['non_numeric'].values()))}) "
                        "are compared as values (f == v / f != v) and make f =< t and f > t false "
                        "(FOLD-R++ mixed column)")
                if notes:
                    entry["note"] = "numeric; " + "; ".join(notes)
                num_cols.append(num)
                num_feature.append(j)
                if n_other:
                    add_values(j, other)  # type: ignore[arg-type]
            else:
                kinds.append("categorical")
                entry["kind"] = "categorical"
                consts = _categorical_constants(col)
                notes = []
                if n_num:
                    notes.append(f"only {n_num} of {n - nmiss} filled cell(s) are numbers, so the numbers "
                                 "are values too (declare nothing to change: clean the column)")
                if nmiss:
                    notes.append(f"{nmiss} empty/NaN cell(s) match no value (f == v false, f != v true)")
                if notes:
                    entry["note"] = "categorical; " + "; ".join(notes)
                add_values(j, consts)
            report.append(entry)
        self.feature_names_in_ = np.array(str_names, dtype=object)
        self.feature_predicates_ = _unique_predicates(names)
        self.feature_kinds_ = kinds
        self.n_features_in_ = len(names)
        self.column_report_ = report
        self.fit_report_ = [f"column {e['column']!r}: {e['note']}" for e in report if "note" in e]

        ind = np.stack(ind_cols, axis=1) if ind_cols else np.zeros((n, 0), dtype=np.uint8)
        ind = np.ascontiguousarray(ind)
        ind_f32 = ind.astype(np.float32) if ind.size and ind.size <= 200_000_000 else None
        if num_cols:
            vals = np.stack(num_cols, axis=1)
            thr_list, rank_cols, lens = [], [], []
            off = 0
            present = ~np.isnan(vals)
            for q in range(vals.shape[1]):
                col = vals[:, q]
                ok = present[:, q]
                u, inv = np.unique(col[ok], return_inverse=True)
                r = np.full(n, -1, dtype=np.int64)
                r[ok] = inv.reshape(-1) + off
                thr_list.append(u)
                rank_cols.append(r)
                lens.append(len(u))
                off += len(u)
            thr = np.concatenate(thr_list)
            rank = np.stack(rank_cols, axis=1)
            rank[rank < 0] = len(thr)  # NaN sentinel, outside every threshold
            seg_len = np.array(lens, dtype=np.int64)
            seg_start = np.concatenate([[0], np.cumsum(seg_len)[:-1]]).astype(np.int64)
            thr_col = np.repeat(np.arange(len(lens)), seg_len)
            num_present = None if present.all() else present.astype(np.uint8)
        else:
            vals = np.zeros((n, 0))
            rank = np.zeros((n, 0), dtype=np.int64)
            thr = np.zeros(0)
            thr_col = np.zeros(0, dtype=np.int64)
            seg_start = np.zeros(0, dtype=np.int64)
            seg_len = np.zeros(0, dtype=np.int64)
            num_present = None
        return _Encoded(n, ind, ind_f32, np.array(ind_feature, dtype=np.int64), ind_value,
                        vals, rank, num_present, np.array(num_feature, dtype=np.int64), thr, thr_col,
                        seg_start, seg_len)

    def _positive_index(self, classes: np.ndarray, counts: np.ndarray) -> int | None:
        if self.mode == "fold-rm":
            return None
        pc = self.positive_class
        if pc is None:
            return None
        if isinstance(pc, str) and pc == "auto" and not any(
                isinstance(c, str) and c == "auto" for c in classes):
            if len(classes) != 2:
                return None
            return 0 if counts[0] < counts[1] else 1
        hits = [k for k, c in enumerate(classes) if normalize_constant(c) == normalize_constant(pc)]
        if not hits:
            raise CnnlensError(f"positive_class {pc!r} is not one of the classes {list(classes)}")
        return hits[0]

    # --- fit ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, feature_names: Sequence[Any] | None = None,
            categorical: Sequence[Any] | None = None) -> "FoldSEM":
        """Learn the ordered rule-set (SPEC §6.5).

        ``X``: DataFrame or 2-D array (bool/uint8 0/1 tables take the fast path); cells may be
        numbers, strings, or missing (None / NaN / empty string): see the module docstring,
        "Columns". ``feature_names``: names for array columns (default ``f0, f1, …``);
        ``categorical``: names or indices of columns to treat as categorical even if numeric.
        ``fit_report_`` says how each unusual column was treated.
        """
        self._check_params()
        yarr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
        if yarr.ndim != 1:
            raise CnnlensError(f"y must be 1-D (one label per row), got shape {yarr.shape}")
        for i, v in enumerate(yarr):
            if _is_missing(v) or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
                raise CnnlensError(f"label of row {i} is missing ({v!r}); drop unlabelled rows first")
        enc = self._encode(X, feature_names, categorical)
        if len(yarr) != enc.n:
            raise CnnlensError(f"X has {enc.n} rows but y has {len(yarr)} labels")
        try:
            classes, yidx = np.unique(yarr, return_inverse=True)
        except TypeError:
            raise CnnlensError("the labels mix types that cannot be sorted (e.g. numbers and strings); "
                               "convert them to one type") from None
        yidx = yidx.reshape(-1).astype(np.int64)
        if len(classes) < 2:
            raise CnnlensError(
                f"the label has a single class ({classes[0]!r}); FOLD-SE-M needs at least two classes"
            )
        consts = [normalize_constant(c) for c in classes]
        if len(set(consts)) != len(consts):
            raise CnnlensError("two class labels print as the same constant (e.g. 1 and '1'); rename them")
        self.classes_ = classes
        self._const_of = dict(zip(range(len(classes)), consts))
        hits: list[int] = []
        if self.default_class is not None:
            hits = [k for k, c in enumerate(classes) if c == self.default_class]
            if not hits:
                raise CnnlensError(
                    f"default_class {self.default_class!r} is not one of the classes {list(classes)}"
                )
        counts = np.bincount(yidx, minlength=len(classes))
        pos = self._positive_index(classes, counts)
        learner = _Learner(enc, self.ratio, self.tail, self.heuristic, self.mode)
        if self.class_order != "frequent":
            learner.class_order = self.class_order
        if self.mode == "fold-rm":
            learned = learner.multiclass_rm(yidx, len(classes))
        elif pos is not None:
            P = np.flatnonzero(yidx == pos)
            N = np.flatnonzero(yidx != pos)
            learned = [(pos, node) for node in learner.fold(P, N)]
        else:
            learned = learner.multiclass_sem(yidx, len(classes))
        if self.prune is not None:
            if self.default_class is not None:
                fixed: int | None = hits[0]
            elif pos is not None:
                fixed = int(np.argmax(np.where(np.arange(len(classes)) == pos, -1, counts)))
            else:
                fixed = None
            learned = _Pruner(learner, learned, yidx, len(classes), fixed).run(float(self.prune))
        allrows = np.arange(enc.n)
        covered = np.zeros(enc.n, dtype=bool)
        for _, node in learned:
            covered |= learner.covers(node, allrows)
        left = np.flatnonzero(~covered)
        if self.default_class is not None:
            dflt = hits[0]
        elif pos is not None:
            others = np.where(np.arange(len(classes)) == pos, -1, counts)
            dflt = int(np.argmax(others))
        elif len(left):
            dflt = int(np.argmax(np.bincount(yidx[left], minlength=len(classes))))
        else:
            dflt = int(np.argmax(counts))
        self.positive_class_ = None if pos is None else classes[pos]
        self.default_class_ = classes[dflt]
        self.n_uncovered_train_ = int(len(left))
        self.rules_ = self._to_ruleset(enc, learned, consts[dflt])
        return self

    def _literal(self, enc: _Encoded, cand: tuple[str, int, bool]) -> Literal:
        block, k, second = cand
        if block == "ind":
            j = int(enc.ind_feature[k])
            name = self.feature_predicates_[j]
            v = enc.ind_value[k]
            if v is None:
                return Literal(name, "holds", None, second)
            return Literal(name, "==", v, second)
        j = int(enc.num_feature[enc.thr_col[k]])
        return Literal(self.feature_predicates_[j], ">" if second else "<=", float(enc.thr[k]))

    def _to_ruleset(self, enc: _Encoded, learned: list[tuple[int, _Node]], default: Any) -> RuleSet:
        target_rules: list[Rule] = []
        ab_rules: list[Rule] = []
        counter = [0]

        def body_of(node: _Node) -> tuple[Literal, ...]:
            lits = [self._literal(enc, c) for c in node.body]
            if node.exceptions:
                counter[0] += 1
                name = f"ab{counter[0]}"
                lits.append(Literal(name, "holds", None, True))
                pending.append((name, node.exceptions))
            return tuple(lits)

        pending: list[tuple[str, list[_Node]]] = []
        for c, node in learned:
            target_rules.append(Rule(TARGET, body_of(node), self._const_of[c]))
            # exceptions get their numbers depth-first, right after their rule
            while pending:
                name, exs = pending.pop(0)
                for ex in exs:
                    ab_rules.append(Rule(name, body_of(ex)))
        ab_rules.sort(key=lambda r: int(r.head[2:]))  # stable: keeps learned order within abN
        return RuleSet(tuple(target_rules + ab_rules), default)

    # --- predict --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "rules_"):
            raise CnnlensError("this FoldSEM is not fitted yet; call fit(X, y) or FoldSEM.load(path)")

    def _table(self, X: Any) -> dict[str, np.ndarray]:
        """Map X's columns to the predicates the rules use, parsed as in training: 0/1 columns
        become booleans (a cell other than 1 — 0, 2, missing — makes ``f(X)`` false), numeric
        columns floats (NaN where there is no number; string cells kept for ``f == v``),
        categorical columns their constants (None where missing; unseen values match nothing)."""
        self._check_fitted()
        names = [str(x) for x in self.feature_names_in_]
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):
            have = {str(c): j for j, c in enumerate(X.columns)}
            missing = [n for n in names if n not in have]
            if missing:
                raise CnnlensError(
                    f"X lacks the column(s) {', '.join(missing[:10])} the model was fitted on"
                )
            cols = [X.iloc[:, have[n]].to_numpy() for n in names]
            nrows = int(X.shape[0])
        else:
            try:
                arr = np.asarray(X)
            except (TypeError, ValueError) as exc:
                raise CnnlensError(f"X is not a table (2-D array or DataFrame): {exc}") from None
            if arr.ndim == 1:
                arr = arr.reshape(1, -1)
            if arr.ndim != 2 or arr.shape[1] != len(names):
                raise CnnlensError(
                    f"X must have {len(names)} columns like the training data, got shape {arr.shape}"
                )
            cols = [arr[:, j] for j in range(arr.shape[1])]
            nrows = int(arr.shape[0])
        used = set(self.rules_.predicates)
        out: dict[str, np.ndarray] = {}
        for name, pred, kind, col in zip(names, self.feature_predicates_, self.feature_kinds_, cols):
            if pred not in used:
                continue
            if kind == "categorical":
                out[pred] = _categorical_constants(col)
                continue
            num, miss, other = _parse_cells(col)
            if kind == "binary":
                odd = ~miss & (num != 0) & (num != 1)
                if odd.any():
                    r = int(np.flatnonzero(odd)[0])
                    warnings.warn(
                        f"column {name!r} was 0/1 in training but holds {num[r]:g} (row {r}, "
                        f"{int(odd.sum())} such cell(s)); {pred}(X) is false there (only 1 makes it true)",
                        stacklevel=3)
                out[pred] = num == 1
            elif other is None:
                out[pred] = num
            else:
                mixed = np.array(num, dtype=object)
                has = np.array([v is not None for v in other])
                mixed[has] = other[has]
                mixed[miss] = None
                out[pred] = mixed
        if not out:
            out["__n__"] = np.zeros(nrows)
        return out

    def predict_rule(self, X: Any) -> np.ndarray:
        """Index of the classifying rule that fires first per row (−1: default class used)."""
        table = self._table(X)
        return self.rules_.predict_rule(table)

    def predict(self, X: Any) -> np.ndarray:
        """Ordered first-match prediction; rows no rule covers get ``default_class_``."""
        idx = self.predict_rule(X)
        back = {c: k for k, c in self._const_of.items()}
        dflt = back[normalize_constant(self.default_class_)]
        rule_cls = np.array([back[r.cls] for r in self.rules_.target_rules] + [dflt], dtype=np.int64)
        return self.classes_[rule_cls[idx]]

    def justify(self, row: Any, name: str = "img") -> Justification:
        """s(CASP)-style justification (NESY Fig. 3) for one row (DataFrame row, dict or 1-D array)."""
        self._check_fitted()
        if isinstance(row, dict):
            names = [str(x) for x in self.feature_names_in_]
            pred_of = dict(zip(names, self.feature_predicates_))
            data = {pred_of.get(str(k), str(k)): [v] for k, v in row.items()}
            return self.rules_.justify(data, name=name)
        if hasattr(row, "to_frame") and hasattr(row, "index"):  # pandas Series
            row = row.to_frame().T
        return self.rules_.justify(self._table(row), name=name)

    # --- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        self._check_fitted()

        def plain(v: Any) -> Any:
            return v.item() if isinstance(v, np.generic) else v

        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "params": {k: plain(v) for k, v in self.get_params().items()},
            "classes": [plain(c) for c in self.classes_],
            "default_class": plain(self.default_class_),
            "positive_class": plain(getattr(self, "positive_class_", None)),
            "feature_names": [str(x) for x in self.feature_names_in_],
            "feature_predicates": list(self.feature_predicates_),
            "feature_kinds": list(self.feature_kinds_),
            "n_uncovered_train": self.n_uncovered_train_,
            "fit_report": list(getattr(self, "fit_report_", [])),
            "program": self.rules_.to_asp("scasp"),
            "size": self.rules_.size,
            "n_rules": self.rules_.n_rules,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as JSON (atomically: temp file in the same folder, then rename)."""
        text = json.dumps(self.to_dict(), indent=1)
        self.from_dict(json.loads(text), source=os.fspath(path))  # refuse to write what cannot load
        atomic_write_text(path, text)

    @classmethod
    def from_dict(cls, obj: Any, source: str = "model") -> "FoldSEM":
        """Rebuild a model from :meth:`to_dict` output; every field is validated (types, classes
        against the program, predicates against the columns) and problems raise
        :class:`CnnlensError` naming ``source`` and the field."""
        def bad(msg: str) -> CnnlensError:
            return CnnlensError(f"{source}: {msg}")

        if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
            raise bad(f"not a FoldSEM model file (missing \"format\": \"{_FORMAT}\")")
        if obj.get("version") != _FORMAT_VERSION:
            raise bad(f"unsupported FoldSEM model version {obj.get('version')!r} (expected {_FORMAT_VERSION})")
        for key in ("params", "classes", "default_class", "feature_names", "feature_predicates",
                    "feature_kinds", "program"):
            if key not in obj:
                raise bad(f"the model file lacks the field {key!r}")
        params = obj["params"]
        if not isinstance(params, dict):
            raise bad("'params' must be an object")
        known = set(cls().get_params())
        unknown = [k for k in params if k not in known]
        if unknown:
            raise bad(f"'params' has unknown key(s) {', '.join(map(repr, unknown[:5]))}")

        def scalar(v: Any) -> bool:
            return isinstance(v, (str, int, float)) and not (isinstance(v, float) and not math.isfinite(v))

        for k in ("default_class", "positive_class"):
            if k in params and params[k] is not None and not scalar(params[k]):
                raise bad(f"params.{k} must be a label, got {type(params[k]).__name__}")
        model = cls(**params)
        try:
            model._check_params()
        except CnnlensError as exc:
            raise bad(str(exc)) from None
        classes = obj["classes"]
        if not isinstance(classes, list) or len(classes) < 2 or not all(scalar(c) for c in classes):
            raise bad("'classes' must be a list of at least two labels (strings or numbers)")
        consts = [normalize_constant(c) for c in classes]
        if len(set(consts)) != len(consts):
            raise bad("'classes' has duplicate labels")
        names, preds, kinds = obj["feature_names"], obj["feature_predicates"], obj["feature_kinds"]
        for key, val in (("feature_names", names), ("feature_predicates", preds), ("feature_kinds", kinds)):
            if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
                raise bad(f"{key!r} must be a list of strings")
        if not names or not (len(names) == len(preds) == len(kinds)):
            raise bad("'feature_names', 'feature_predicates' and 'feature_kinds' must be non-empty "
                      "and of the same length")
        bad_kind = [k for k in kinds if k not in _KINDS]
        if bad_kind:
            raise bad(f"unknown feature kind {bad_kind[0]!r} (expected one of {', '.join(_KINDS)})")
        if len(set(preds)) != len(preds) or not all(_PRED_RE.match(p) for p in preds):
            raise bad("'feature_predicates' must be distinct ASP names ([a-z][A-Za-z0-9_]*)")
        if not isinstance(obj["program"], str):
            raise bad("'program' must be a string")
        try:
            rules = RuleSet.from_asp(obj["program"])
        except CnnlensError as exc:
            raise bad(f"the program does not parse: {exc}") from None
        dc = obj["default_class"]
        if not scalar(dc) or normalize_constant(dc) not in consts:
            raise bad(f"default_class {dc!r} is not one of the classes {classes[:10]}")
        unknown_cls = [r.cls for r in rules.target_rules if r.cls not in consts]
        if unknown_cls:
            raise bad(f"the program predicts {unknown_cls[0]!r}, which is not one of the classes {classes[:10]}")
        if rules.default is not None and rules.default != normalize_constant(dc):
            raise bad(f"the program's default {rules.default!r} differs from default_class {dc!r}")
        kind_of = dict(zip(preds, kinds))
        derived = set(rules.derived)
        for r in rules.rules:
            for lit in r.body:
                if lit.name in derived:
                    continue
                if lit.name not in kind_of:
                    raise bad(f"the program uses the feature {lit.name!r}, which is not a column of the model")
                k = kind_of[lit.name]
                ok = {"holds": k == "binary", "==": k in ("categorical", "numeric"),
                      "<=": k == "numeric", ">": k == "numeric"}[lit.op]
                if not ok:
                    raise bad(f"the program uses {lit} but column {lit.name!r} is {k}")
        nu = obj.get("n_uncovered_train", 0)
        if isinstance(nu, bool) or not isinstance(nu, int) or nu < 0:
            raise bad("'n_uncovered_train' must be a non-negative integer")
        pc = obj.get("positive_class")
        if pc is not None and (not scalar(pc) or normalize_constant(pc) not in consts):
            raise bad(f"positive_class {pc!r} is not one of the classes")
        report = obj.get("fit_report", [])
        if not isinstance(report, list) or not all(isinstance(v, str) for v in report):
            raise bad("'fit_report' must be a list of strings")
        same_type = len({type(c) for c in classes}) == 1
        model.classes_ = np.array(classes) if same_type else np.array(classes, dtype=object)
        model._const_of = dict(enumerate(consts))
        model.default_class_ = dc
        model.positive_class_ = pc
        model.feature_names_in_ = np.array(names, dtype=object)
        model.feature_predicates_ = list(preds)
        model.feature_kinds_ = list(kinds)
        model.n_features_in_ = len(names)
        model.n_uncovered_train_ = nu
        model.fit_report_ = list(report)
        model.rules_ = RuleSet(rules.rules, normalize_constant(dc))
        return model

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FoldSEM":
        """Read a model written by :meth:`save`; any problem raises :class:`CnnlensError` naming
        the file."""
        return cls.from_dict(read_model_json(path), source=os.fspath(path))


_PRED_RE = re.compile(r"[a-z][A-Za-z0-9_]*\Z")


def read_model_json(path: str | os.PathLike) -> dict:
    """The JSON object of a model file; unreadable, non-UTF-8, malformed or too deeply nested
    files raise :class:`CnnlensError` naming the file."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CnnlensError(f"{p}: cannot read the model file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnlensError(f"{p}: not a UTF-8 text file (byte {exc.start}); expected a FoldSEM model JSON") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CnnlensError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise CnnlensError(f"{p}: JSON nested too deeply; not a FoldSEM model file") from None
    if not isinstance(obj, dict):
        raise CnnlensError(f"{p}: not a FoldSEM model file (the JSON is a {type(obj).__name__}, not an object)")
    return obj
