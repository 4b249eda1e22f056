"""FOLD-SE-M rule learner — clean-room implementation of docs/algorithms.md §6.5.

What is implemented (the FOLD-R++ / FOLD-RM / FOLD-SE algorithms as docs/algorithms.md §6.5 describes them)
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

**Score** (§6.5). With tp/fp the positives/negatives the literal keeps (covers) and fn/tn
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
−5 points on binarized digits (EXPERIMENTS.md). ``tail_base="train", exception_tail="train"``
is FOLD-SE's (and the NESY paper's) convention, §6.5: on the general FOLD tables it costs 2.7
points of accuracy (so it is not this estimator's default), on binarized NeSy tables it gives
1.2–4.6× smaller programs at the same accuracy, so NeSyModel uses it (EXPERIMENTS.md, issue 26).

**Binary convention** (FOLD-SE; ``positive_class="auto"`` on two classes): the covering loop
learns rules for the positive class only (the less frequent class, or ``positive_class``); the
other class is the default. ``positive_class=None`` learns rules for both (driver below).

**Multi-class driver** (FOLD-SE-M): among the examples left take the most frequent open class
(ties: the first in ``classes_``), learn *one* rule for it (positives = that class, negatives =
all other classes left), append it and remove every example it covers (positives and
negatives); repeat until no example is left. A rule whose body ends up empty (no literal scores
finitely) is kept: it covers every example left, minus its exceptions (FOLD-RM; §6.5,
``catch_all=True``). A rule that covers no positive or fewer than ``tail·|examples left|``
positives closes its class until the next rule is accepted (then every class is open again); when
no open class can get a rule and rows are left, they get an empty-body *catch-all* rule for their
most frequent class, so a rule fires on every training row (the NeSy model has no default class;
``catch_all=False``: no such rules, the class closes and the default class takes the rows). (The
original driver counted ``tail·|train|`` and closed a class for good: on binarized digits 4% of
the test rows then fell to the default class; see EXPERIMENTS.md.) Rules are
ordered; prediction is the first rule that fires, else the default class: ``default_class`` if
given, the other class under the binary convention, otherwise the most frequent class among the
training examples no rule covers (ties: first in ``classes_``; the overall most frequent class
when every example is covered). :meth:`FoldSEM.predict_rule` reports which rule fired (−1 =
default used).

**class_order="best"** (option; default ``"frequent"`` = the driver above, §6.5): instead of
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

**Fast path.** One 0/1 indicator matrix (tp/fp of every candidate = one column-sum) and dense
ranks with prefix counts for numeric columns; a 10,000 × 512 0/1 table learns in < 1 s (BENCHMARKS.md).

**Modules.** :mod:`~cnnlens.nesy.cells` (what a cell means), :mod:`~cnnlens.nesy.fold_encoding`
(columns, predicate names, the encoded table), :mod:`~cnnlens.nesy.fold_learner` (scores and the
search), :mod:`~cnnlens.nesy.fold_pruning` (post-pruning); this module holds the estimator
:class:`FoldSEM` and its model files.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import type_of_target

from .. import validation
from .._io import atomic_write_text
from ..errors import CnnlensError
from .cells import is_missing, normalize_constant
from .fold_encoding import KINDS, _Encoded, encode, predicate_name, prediction_columns
from .fold_learner import EXCEPTION_TAILS, HEURISTICS, TAIL_BASES, _Learner, _Node, gini_score, information_gain, to_ruleset  # noqa: F401  (re-exported)
from .fold_pruning import _Pruner
from .program import Justification, RuleSet

__all__ = ["FoldSEM", "predicate_name", "information_gain", "read_model_json"]

_FORMAT = "cnnlens.FoldSEM"
_FORMAT_VERSION = 1


# ------------------------------------------------------------------------------------------
# the estimator
# ------------------------------------------------------------------------------------------

_MODES = ("fold-se-m", "fold-rm")
_CLASS_ORDERS = ("frequent", "best")


class FoldNotFittedError(CnnlensError, NotFittedError):
    """A FoldSEM was used before ``fit`` / ``load`` (also scikit-learn's ``NotFittedError``)."""


class FoldSEM(ClassifierMixin, BaseEstimator):
    """FOLD-SE-M rule learner as a scikit-learn classifier (§6.5; module docstring).

    Args:
        ratio (float, default 0.8):
            Exception ratio: literals are added to a rule until fp ≤ ratio·tp; remaining false
            positives become exceptions (``not abN(X)``). (The ``foldrm`` package's default is 0.5.)
        tail (float, default 5e-3):
            FOLD-SE pruning (``mode="fold-se-m"`` only): a classifying or exception rule must cover
            at least ``tail·(examples left)`` positives (multi-class driver; ``tail·n_train`` under
            the binary convention).
        heuristic ({"ig", "gini"}, default "ig"):
            Literal score: information gain of §6.5 or weighted Gini.
        default_class (label or None):
            Class predicted when no rule fires; None: the other class under the binary convention,
            else the most frequent class among the training examples the rules leave uncovered.
        mode ({"fold-se-m", "fold-rm"}, default "fold-se-m"):
            ``"fold-rm"`` follows FOLD-RM's published algorithm (no tail; see :class:`_Learner`).
        positive_class ("auto", None or a label, default "auto"):
            Binary convention (FOLD-SE, ``mode="fold-se-m"``): rules for the positive class only,
            the other class is the default. ``"auto"``: on two-class tables the less frequent class
            (ties: the second in ``classes_``) is positive, on more classes every class gets rules;
            None: every class gets rules (FOLD-RM driver) also on two classes.
        class_order ({"frequent", "best"}, default "frequent"):
            Multi-class driver: the next rule is learned for the most frequent class left (
            §6.5), or ``"best"``: for every class, keeping the rule with the largest net coverage
            tp − fp (module docstring). No effect under the binary convention or in fold-rm mode.
        prune (float or None, default None):
            Post-pruning (module docstring, "Pruning"): drop classifying / exception rules while each
            removal costs at most ``prune`` correctly classified training rows per literal saved.
            None: off. ``class_order="best", prune=1.0`` reaches 0.86 test accuracy at size ≤ 120 on
            binarized digits (the defaults: 0.856 at 237), at some cost on other tables
            (EXPERIMENTS.md).
        reopen_classes (bool, default True):
            Multi-class driver (``mode="fold-se-m"``): a class whose rule fails the tail is closed
            until the next rule is accepted (True), or for good (False, the original driver).
        tail_base ({"left", "train"}, default "left"):
            What ``tail`` multiplies for a classifying rule of the multi-class driver: the examples
            still left, or the training rows (the original driver; FOLD-SE's convention).
        exception_tail ({"left", "train", "none"}, default "left"):
            What ``tail`` multiplies for an exception rule set (``mode="fold-se-m"``): the examples
            the driver had left when it learned the classifying rule, the training rows, or no tail.
            ``"train"``/``"train"``: FOLD-SE's convention, NeSyModel's default (module docstring).
        catch_all (bool, default True):
            Multi-class driver: empty-body and catch-all rules (module docstring); False: the earlier driver.
        remove_covered_negatives (bool, default True):
            Multi-class driver (``mode="fold-se-m"``): an accepted rule removes every example it
            covers (True), or only the covered positives (False, FOLD-RM's driver).

    ``reopen_classes`` … ``remove_covered_negatives`` reproduce the driver variants of the
    many-class study (experiments/fold_manyclass.py, EXPERIMENTS.md).

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
                 prune: float | None = None, reopen_classes: bool = True, tail_base: str = "left",
                 exception_tail: str = "left", remove_covered_negatives: bool = True,
                 catch_all: bool = True) -> None:
        self.ratio = ratio
        self.tail = tail
        self.heuristic = heuristic
        self.default_class = default_class
        self.mode = mode
        self.positive_class = positive_class
        self.class_order = class_order
        self.prune = prune
        self.reopen_classes = reopen_classes
        self.tail_base = tail_base
        self.exception_tail = exception_tail
        self.remove_covered_negatives = remove_covered_negatives
        self.catch_all = catch_all

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN / None / "" cells are missing values
        tags.input_tags.string = True  # string cells are categorical values
        return tags

    def _more_tags(self) -> dict:  # scikit-learn < 1.6
        return {"allow_nan": True, "X_types": ["2darray", "string"]}

    # --- input handling -------------------------------------------------------------------
    def _check_params(self) -> None:
        """Validate the parameters (in ``fit`` and when a model file is read, never in
        ``__init__``: scikit-learn convention)."""
        r = self.ratio
        if (isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Real)
                or not math.isfinite(r) or r < 0):
            raise CnnlensError(f"ratio must be a finite number >= 0 (0.8 in NESY), got {r!r}")
        validation.real("tail", self.tail, low=0, high=1, open_high=True, hint="5e-3 in NESY")
        validation.choice("heuristic", self.heuristic, HEURISTICS)
        validation.choice("mode", self.mode, _MODES)
        validation.choice("class_order", self.class_order, _CLASS_ORDERS)
        validation.real("prune", self.prune, low=0, allow_none=True, hint="None: off")
        validation.flag("reopen_classes", self.reopen_classes)
        validation.choice("tail_base", self.tail_base, TAIL_BASES)
        validation.choice("exception_tail", self.exception_tail, EXCEPTION_TAILS)
        validation.flag("remove_covered_negatives", self.remove_covered_negatives)
        validation.flag("catch_all", self.catch_all)

    def _encode(self, X: Any, feature_names: Sequence[Any] | None,
                categorical: Sequence[Any] | None) -> _Encoded:
        """Encode the training table (:func:`~cnnlens.nesy.fold_encoding.encode`) and set the
        column attributes (``feature_names_in_``, ``feature_kinds_``, ``column_report_`` …)."""
        enc, columns = encode(X, feature_names, categorical)
        self.feature_names_in_ = columns.names
        self.feature_predicates_ = columns.predicates
        self.feature_kinds_ = columns.kinds
        self.n_features_in_ = len(columns.kinds)
        self.column_report_ = columns.report
        self.fit_report_ = columns.notes
        return enc

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
            categorical: Sequence[Any] | None = None) -> FoldSEM:
        """Learn the ordered rule-set (§6.5).

        ``X``: DataFrame or 2-D array (bool/uint8 0/1 tables take the fast path); cells may be
        numbers, strings, or missing (None / NaN / empty string): see the module docstring,
        "Columns". ``feature_names``: names for array columns (default ``f0, f1, …``);
        ``categorical``: names or indices of columns to treat as categorical even if numeric.
        ``fit_report_`` says how each unusual column was treated.
        """
        self._check_params()
        if y is None:
            raise CnnlensError("FoldSEM requires y to be passed, but the target y is None")
        yarr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
        if yarr.ndim != 1:
            raise CnnlensError(f"y must be 1-D (one label per row), got shape {yarr.shape}")
        for i, v in enumerate(yarr):
            if is_missing(v) or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
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
        if classes.dtype.kind == "f" and type_of_target(yarr) == "continuous":
            raise CnnlensError(
                "Unknown label type: continuous (float labels that are not whole numbers, e.g. "
                f"{next(c for c in classes if not float(c).is_integer())!r}); FoldSEM is a "
                "classifier: give class labels")
        if len(classes) < 2:
            only = classes[0].item() if hasattr(classes[0], "item") else classes[0]  # 'x', not np.str_('x')
            raise CnnlensError(
                f"the label has a single class ({only!r}); FOLD-SE-M needs at least two classes, "
                "got one class"
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
        learner = _Learner(enc, self.ratio, self.tail, self.heuristic, self.mode,
                           class_order=self.class_order, reopen_classes=self.reopen_classes,
                           tail_base=self.tail_base, exception_tail=self.exception_tail,
                           remove_covered_negatives=self.remove_covered_negatives,
                           catch_all=self.catch_all)
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
        self.n_uncovered_train_ = int(len(left))
        if (self.catch_all and self.mode == "fold-se-m" and pos is None
                and self.default_class is None and len(left)):
            # catch-all (§6.5): the rows every class left uncovered get an empty-body rule for
            # their most frequent class, so the program covers every training row (same
            # predictions as the default class, but a rule fires on every row)
            learned = learned + [(dflt, _Node([]))]
        self.positive_class_ = None if pos is None else classes[pos]
        self.default_class_ = classes[dflt]
        self.rules_ = to_ruleset(enc, self.feature_predicates_, learned, self._const_of, consts[dflt])
        return self

    # --- predict --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "rules_"):
            raise FoldNotFittedError("this FoldSEM is not fitted yet; call fit(X, y) or FoldSEM.load(path)")

    def _table(self, X: Any, one_row: bool = False) -> dict[str, np.ndarray]:
        """X's columns as the rules read them (:func:`~cnnlens.nesy.fold_encoding.prediction_columns`)."""
        self._check_fitted()
        return prediction_columns(X, self.feature_names_in_, self.feature_predicates_,
                                  self.feature_kinds_, set(self.rules_.predicates), one_row=one_row)

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
        return self.rules_.justify(self._table(row, one_row=True), name=name)

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
        self.from_dict(json.loads(text), source=str(path))  # refuse to write what cannot load
        atomic_write_text(path, text)

    @classmethod
    def from_dict(cls, obj: Any, source: str = "model") -> FoldSEM:
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
        bad_kind = [k for k in kinds if k not in KINDS]
        if bad_kind:
            raise bad(f"unknown feature kind {bad_kind[0]!r} (expected one of {', '.join(KINDS)})")
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
    def load(cls, path: str | os.PathLike) -> FoldSEM:
        """Read a model written by :meth:`save`; any problem raises :class:`CnnlensError` naming
        the file."""
        return cls.from_dict(read_model_json(path), source=os.fspath(path))


_PRED_RE = re.compile(r"[a-z][A-Za-z0-9_]*\Z")


def read_model_json(path: str | os.PathLike, what: str = "FoldSEM model") -> dict:
    """The JSON object of a model file; unreadable, non-UTF-8, malformed or too deeply nested
    files raise :class:`CnnlensError` naming the file (``what``: the kind of file expected)."""
    from ..validation import path as as_path

    p = str(as_path("path", path))
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CnnlensError(f"{p}: cannot read the model file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnlensError(f"{p}: not a UTF-8 text file (byte {exc.start}); expected a {what} JSON") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CnnlensError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise CnnlensError(f"{p}: JSON nested too deeply; not a {what} file") from None
    if not isinstance(obj, dict):
        raise CnnlensError(f"{p}: not a {what} file (the JSON is a {type(obj).__name__}, not an object)")
    return obj
