"""FOLD-SE-M learner (SPEC §6.5): hand-computed tables, a brute-force reference, API, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cnnlens.errors import CnnlensError
from cnnlens.nesy import FoldSEM, RuleSet, information_gain
from cnnlens.nesy.fold import gini_score

# ------------------------------------------------------------------------------------------
# the score (SPEC §6.5)
# ------------------------------------------------------------------------------------------

def test_information_gain_hand_values():
    # tp=5, fp=1, tn=4, fn=0 → [5 ln(5/6) + 1 ln(1/6)] / 10 (zero-count terms dropped)
    assert information_gain(5, 1, 4, 0) == pytest.approx((5 * math.log(5 / 6) + math.log(1 / 6)) / 10)
    assert information_gain(5, 1, 4, 0) == pytest.approx(-0.27034, abs=1e-5)
    # a pure split scores 0, the maximum
    assert information_gain(3, 0, 5, 0) == 0.0
    # tp + tn < fp + fn → −∞
    assert information_gain(1, 3, 2, 2) == -math.inf
    # the boundary tp + tn == fp + fn is finite
    assert np.isfinite(information_gain(1, 3, 2, 0))
    v = information_gain(np.array([5, 1]), np.array([1, 3]), np.array([4, 2]), np.array([0, 2]))
    assert v[1] == -math.inf and v[0] == pytest.approx(-0.27034, abs=1e-5)


def test_gini_hand_values():
    # −[2·5·1/6 + 0] / 10
    assert gini_score(5, 1, 4, 0) == pytest.approx(-(2 * 5 * 1 / 6) / 10)
    assert gini_score(1, 3, 2, 2) == -math.inf


# ------------------------------------------------------------------------------------------
# hand-computed tables
# ------------------------------------------------------------------------------------------

AGES = np.arange(1, 11).reshape(-1, 1)
AGE_Y = np.array(list("aaabaabbbb"))


def test_numeric_hand_computed_with_exception():
    """a = ages 1,2,3,5,6; b = 4,7..10. Worked by hand:
    step 1 (P=a, N=b): best age =< 6 (tp5 fp1 tn4 fn0, IG −0.2703 vs −0.4188 for =< 3 / =< 7);
    fp 1 ≤ 0.8·5 → stop; exception for {4} vs {1,2,3,5,6}: age > 3 (IG −0.3183 beats
    =< 4 and > 2 at −0.3749), fp 2 > 0.8 → add age =< 4 (IG 0), fp 0 → stop.
    Remaining {4,7,8,9,10} are all b: no negatives, so no literal scores → with
    ``catch_all=False`` no rule (default b); with the catch-all (default, §6.5) the empty-body
    rule for b is kept and covers them."""
    m = FoldSEM(positive_class=None, ratio=0.8, tail=5e-3, catch_all=False).fit(AGES, AGE_Y, feature_names=["age"])
    assert m.rules_.to_asp() == (
        "target(X,a) :- age(X,N1), N1 <= 6, not ab1(X).\n"
        "ab1(X) :- age(X,N1), N1 > 3, age(X,N2), N2 <= 4.\n"
        "% default: b\n"
    )
    assert m.feature_kinds_ == ["numeric"]
    assert m.default_class_ == "b"
    assert m.rules_.size == 4 and m.rules_.n_rules == 2
    assert list(m.predict(AGES)) == list(AGE_Y)
    assert list(m.predict_rule(AGES)) == [0, 0, 0, -1, 0, 0, -1, -1, -1, -1]
    j = m.justify(np.array([4]))
    assert j.default_used and j.prediction == "b"
    m = FoldSEM(positive_class=None, ratio=0.8, tail=5e-3).fit(AGES, AGE_Y, feature_names=["age"])
    assert [str(r) for r in m.rules_.target_rules][1:] == ["target(X,b)."]
    assert m.rules_.size == 4 and m.rules_.n_rules == 3
    assert (m.predict_rule(AGES) >= 0).all()  # a rule fires on every row
    assert list(m.predict(AGES)) == list(AGE_Y)
    assert j.text.splitlines()[2:5] == [
        "    'ab1' holds (for img), because (rule 2)",
        "      'age' holds (for img, and 4), and 4 > 3, and",
        "      'age' holds (for img, and 4), and 4 =< 4.",
    ]


def test_numeric_ratio_zero_hand_computed():
    """ratio 0: literals are added until fp = 0. After age =< 6 (fp {4}), over {1..6} the best is
    age =< 3 (IG −0.3183; > 4, =< 4, =< 2 score −0.3749, =< 5 −0.4170). Then for b over {4..10}:
    age > 6 (IG −0.2728); then a over {4,5,6}: age > 4 (IG 0); {4} left → default b."""
    m = FoldSEM(positive_class=None, catch_all=False, ratio=0.0, tail=0).fit(AGES, AGE_Y, feature_names=["age"])
    assert m.rules_.to_asp() == (
        "target(X,a) :- age(X,N1), N1 <= 6, age(X,N2), N2 <= 3.\n"
        "target(X,b) :- age(X,N1), N1 > 6.\n"
        "target(X,a) :- age(X,N1), N1 > 4.\n"
        "% default: b\n"
    )
    assert m.score(AGES, AGE_Y) == 1.0


FRUIT = [  # color, size, label
    ("red", "s", "apple"), ("red", "s", "apple"), ("red", "s", "apple"),
    ("green", "s", "pear"), ("green", "l", "pear"),
    ("blue", "l", "plum"), ("blue", "s", "plum"), ("red", "l", "plum"),
]


def test_categorical_hand_computed():
    """apple/plum tie (3 each) → apple first. color == red (tp3 fp1, IG −0.2812) beats
    color != blue / != green (−0.5199) and size == s (−0.4206); exception {red,l plum} vs the
    apples: size == l (IG 0). Then plum vs pear over rows 4–8: color != green (IG 0) beats
    color == blue (−0.3819). Pears left → default pear."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(FRUIT, columns=["color", "size", "fruit"])
    m = FoldSEM(positive_class=None, catch_all=False).fit(df[["color", "size"]], df["fruit"])
    assert m.feature_kinds_ == ["categorical", "categorical"]
    assert m.rules_.to_asp() == (
        "target(X,apple) :- color(X,red), not ab1(X).\n"
        "target(X,plum) :- example(X), not color(X,green).\n"
        "ab1(X) :- size(X,l).\n"
        "% default: pear\n"
    )
    assert list(m.predict(df[["color", "size"]])) == list(df["fruit"])
    # unseen category: != green holds, == red does not
    assert list(m.predict(pd.DataFrame({"color": ["pink"], "size": ["s"]}))) == ["plum"]


# rows (f0, f1, f2) × count → label
NESTED = [((1, 0, 0), 4, "yes"), ((1, 1, 0), 2, "no"), ((1, 1, 1), 1, "yes"), ((0, 0, 0), 2, "no")]


def _nested_table():
    X = np.array([r for r, k, _ in NESTED for _ in range(k)], dtype=np.uint8)
    y = np.array([lab for _, k, lab in NESTED for _ in range(k)])
    return X, y


def test_exceptions_of_exceptions_hand_computed():
    """yes (5) vs no (4): f0 (tp5 fp2, IG −0.4653) beats f2 (−0.6161) and not f1 (−0.6365);
    exception {B=(1,1,0)×2} vs {A×4, C=(1,1,1)}: f1 (IG −0.2728), fp 1 ≤ 1.6 → stop; its
    exception {C} vs {B×2}: f2 (IG 0). Remaining B, D are all 'no' → default no."""
    X, y = _nested_table()
    m = FoldSEM(positive_class=None, catch_all=False).fit(X, y)
    assert m.rules_.to_asp() == (
        "target(X,yes) :- f0(X), not ab1(X).\n"
        "ab1(X) :- f1(X), not ab2(X).\n"
        "ab2(X) :- f2(X).\n"
        "% default: no\n"
    )
    assert m.feature_kinds_ == ["binary"] * 3
    assert m.rules_.size == 5 and m.rules_.n_rules == 3 and m.rules_.predicates == ("f0", "f1", "f2")
    assert m.score(X, y) == 1.0


def test_tail_prunes_small_rules_hand_computed():
    """tail 0.2 → a rule must cover ≥ 1.8 of 9 positives: ab2 (covers only C) is dropped, so
    ab1 = f1 and the yes rule covers only A; then 'no' over {B,C,D}: not f2 (IG 0) beats
    not f0 / not f1 (−0.3819). C is left → default yes."""
    X, y = _nested_table()
    m = FoldSEM(positive_class=None, catch_all=False, tail=0.2).fit(X, y)
    assert m.rules_.to_asp() == (
        "target(X,yes) :- f0(X), not ab1(X).\n"
        "target(X,no) :- example(X), not f2(X).\n"
        "ab1(X) :- f1(X).\n"
        "% default: yes\n"
    )


def test_ties_lowest_column_then_positive_literal():
    # f0 and f1 are identical copies: the lowest column wins; f(X) before not f(X)
    X = np.array([[1, 1], [1, 1], [0, 0], [0, 0]])
    m = FoldSEM(positive_class=None, catch_all=False, tail=0).fit(X, np.array([1, 1, 0, 0]))
    # class 0 first (tie 2–2 → first in classes_); not f0 is the only finite best
    assert m.rules_.to_asp() == "target(X,0) :- example(X), not f0(X).\n% default: 1\n"
    m = FoldSEM(positive_class=None, catch_all=False, tail=0, default_class=0).fit(X, np.array([0, 0, 1, 1]))
    assert m.rules_.to_asp() == "target(X,0) :- f0(X).\n% default: 0\n"
    assert m.default_class_ == 0


def test_gini_heuristic_runs_and_differs_only_in_score():
    X, y = _nested_table()
    m = FoldSEM(positive_class=None, catch_all=False, heuristic="gini").fit(X, y)
    # on this table the Gini choices coincide with IG's
    assert m.rules_.to_asp().splitlines()[0] == "target(X,yes) :- f0(X), not ab1(X)."


# ------------------------------------------------------------------------------------------
# brute-force reference: one candidate at a time, plain Python (SPEC §6.5 literally)
# ------------------------------------------------------------------------------------------

def _ref_candidates(rows, kinds):
    cands = []
    for j, kind in enumerate(kinds):
        vals = sorted({r[j] for r in rows}, key=lambda v: (isinstance(v, str), v))
        if kind == "binary":
            cands += [(j, "is", 1), (j, "isnot", 1)]
        elif kind == "categorical":
            for v in vals:
                cands += [(j, "==", v), (j, "!=", v)]
        else:
            for v in vals:
                cands += [(j, "<=", v), (j, ">", v)]
    return cands


def _ref_sat(c, row):
    j, op, v = c
    x = row[j]
    return {"is": x == 1, "isnot": x != 1, "==": x == v, "!=": x != v, "<=": x <= v, ">": x > v}[op]


def _ref_ig(tp, fp, tn, fn):
    if tp + tn < fp + fn:
        return -math.inf

    def t(a, b):
        return a * math.log(a / (a + b)) if a > 0 else 0.0

    return (t(tp, fp) + t(fp, tp) + t(tn, fn) + t(fn, tn)) / (tp + fp + tn + fn)


class _Ref:
    def __init__(self, rows, kinds, ratio, tail):
        self.rows, self.cands, self.ratio = rows, _ref_candidates(rows, kinds), ratio
        self.min_cover = tail * len(rows)
        self.tail = tail

    def best(self, P, N):
        best, bs = None, -math.inf
        for c in self.cands:
            tp = sum(_ref_sat(c, self.rows[i]) for i in P)
            fp = sum(_ref_sat(c, self.rows[i]) for i in N)
            if tp == 0 or fp == len(N):
                continue
            s = _ref_ig(tp, fp, len(N) - fp, len(P) - tp)
            if s > bs:  # strict: the first candidate in tie order wins
                best, bs = c, s
        return best

    def covers(self, rule, i):
        body, exc = rule
        return all(_ref_sat(c, self.rows[i]) for c in body) and not any(self.covers(e, i) for e in exc)

    def learn_rule(self, P, N, keep_empty=False):
        body = []
        while True:
            c = self.best(P, N)
            if c is None:
                break
            body.append(c)
            P = [i for i in P if _ref_sat(c, self.rows[i])]
            N = [i for i in N if _ref_sat(c, self.rows[i])]
            if len(N) <= self.ratio * len(P):
                break
        if not body and not keep_empty:
            return None
        return (body, self.fold(N, P) if N else [])

    def fold(self, P, N):
        out = []
        while P:
            r = self.learn_rule(P, N)
            if r is None:
                break
            cov = [i for i in P if self.covers(r, i)]
            if not cov or len(cov) < self.min_cover:
                break
            out.append(r)
            P = [i for i in P if i not in set(cov)]
        return out

    def multiclass(self, y, classes, catch_all=True):
        """§6.5's driver; ``catch_all``: an empty-body classifying rule is kept, and rows left
        when every class is closed get an empty-body rule for their most frequent class."""
        left = list(range(len(self.rows)))
        open_ = set(classes)
        out = []
        while left:
            counts = [sum(y[i] == c for i in left) if c in open_ else 0 for c in classes]
            if max(counts) == 0:
                break
            c = classes[counts.index(max(counts))]
            self.min_cover = self.tail * len(left)  # exception tail: examples left
            r = self.learn_rule([i for i in left if y[i] == c], [i for i in left if y[i] != c], catch_all)
            if r is None:
                open_.discard(c)
                continue
            cov = [i for i in left if self.covers(r, i)]
            k = sum(y[i] == c for i in cov)
            if k == 0 or k < self.tail * len(left):  # tail counts the examples left
                open_.discard(c)
                continue
            out.append((c, r))
            left = [i for i in left if i not in set(cov)]
            open_ = set(classes)  # a closed class is retried after every accepted rule
        if catch_all and left:
            counts = [sum(y[i] == c for i in left) for c in classes]
            out.append((classes[counts.index(max(counts))], ([], [])))
        return out


def _ref_predict(ref, learned, rows, default):
    out = []
    for i in range(len(rows)):
        for c, r in learned:
            if ref.covers(r, i):
                out.append(c)
                break
        else:
            out.append(default)
    return out


def _ref_size(learned):
    def size(rule):
        body, exc = rule
        return len(body) + (1 if exc else 0) + sum(size(e) for e in exc)

    return sum(size(r) for _, r in learned)


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_reference_on_random_mixed_tables(seed):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 60))
    b = rng.integers(0, 2, size=(n, 3))
    cat = rng.choice(["u", "v", "w"], size=n)
    num = rng.integers(0, 8, size=n)
    y = (b[:, 0] + (cat == "v") + (num > 4) + rng.integers(0, 2, size=n)) % 3
    df = pd.DataFrame({"b0": b[:, 0], "b1": b[:, 1], "b2": b[:, 2], "c": cat, "x": num})
    ratio = [0.0, 0.5, 0.8, 1.5][seed % 4]
    tail = [0.0, 0.05][seed % 2]
    catch_all = seed % 3 != 0
    m = FoldSEM(ratio=ratio, tail=tail, positive_class=None, catch_all=catch_all).fit(df, y)
    kinds = m.feature_kinds_
    assert kinds == ["binary", "binary", "binary", "categorical", "numeric"]
    rows = [tuple(r) for r in df.itertuples(index=False)]
    ref = _Ref(rows, kinds, ratio, tail)
    learned = ref.multiclass(list(y), sorted(set(y.tolist())), catch_all)
    if catch_all:
        assert (m.predict_rule(df) >= 0).all()  # a rule fires on every training row
    assert len(m.rules_.target_rules) == len(learned)
    assert [r.cls for r in m.rules_.target_rules] == [c for c, _ in learned]
    assert m.rules_.size == _ref_size(learned)
    # same predictions on the training rows and on fresh rows
    preds = m.predict(df)
    assert list(preds) == _ref_predict(ref, learned, rows, m.default_class_)


def test_fast_binary_path_equals_dataframe_path():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    X = (rng.random((2000, 40)) < 0.2).astype(np.uint8)
    y = np.argmax(2 * X[:, :4] + rng.random((2000, 4)), axis=1)
    a = FoldSEM().fit(X, y)
    b = FoldSEM().fit(pd.DataFrame(X.astype(bool), columns=[f"f{j}" for j in range(40)]), y)
    c = FoldSEM().fit(X.astype(np.float64), y)
    assert a.rules_ == b.rules_ == c.rules_
    assert a.rules_.size > 0


# ------------------------------------------------------------------------------------------
# scikit-learn API, persistence
# ------------------------------------------------------------------------------------------

def test_sklearn_api_get_params_clone_score():
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    m = FoldSEM(ratio=0.5, tail=0.01, heuristic="gini", default_class=None)
    assert m.get_params() == {"ratio": 0.5, "tail": 0.01, "heuristic": "gini", "default_class": None, "catch_all": True,
                              "mode": "fold-se-m", "positive_class": "auto",
                              "class_order": "frequent", "prune": None, "reopen_classes": True,
                              "tail_base": "left", "exception_tail": "left",
                              "remove_covered_negatives": True}
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "rules_")
    X, y = _nested_table()
    X = np.vstack([X] * 4)
    y = np.concatenate([y] * 4)
    scores = cross_val_score(FoldSEM(), X, y, cv=2)
    assert scores.shape == (2,) and np.all(scores == 1.0)
    m = FoldSEM().fit(X, y)
    assert list(m.classes_) == ["no", "yes"] and m.n_features_in_ == 3
    assert isinstance(m.rules_, RuleSet)


def test_save_load_roundtrip(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(FRUIT, columns=["color", "size", "fruit"])
    m = FoldSEM().fit(df[["color", "size"]], df["fruit"])
    p = tmp_path / "m.json"
    m.save(p)
    m2 = FoldSEM.load(p)
    assert m2.rules_ == m.rules_ and m2.get_params() == m.get_params()
    assert list(m2.predict(df[["color", "size"]])) == list(m.predict(df[["color", "size"]]))
    # numeric model with fractional thresholds and integer classes
    X = np.array([[0.5], [1.25], [2.5], [3.75]])
    m = FoldSEM(tail=0).fit(X, np.array([0, 0, 1, 1]))
    m.save(p)
    m2 = FoldSEM.load(p)
    assert m2.rules_ == m.rules_ and m2.rules_.target_rules[0].body[0].value == 1.25
    assert list(m2.predict(X)) == [0, 0, 1, 1] and m2.predict(X).dtype.kind == "i"
    assert not list(tmp_path.glob(".tmp-*"))  # atomic write left nothing behind


def test_justify_via_estimator():
    X, y = _nested_table()
    m = FoldSEM(positive_class=None, catch_all=False).fit(X, y)
    j = m.justify(np.array([1, 1, 1]))
    assert j.prediction == "yes" and j.rule == 1 and not j.default_used
    assert "'ab2' holds (for img), because (rule 3)" in j.text
    j = m.justify({"f0": 0, "f1": 0, "f2": 0})
    assert j.prediction == "no" and j.default_used and j.rule is None


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------

def test_single_class_label_is_an_error():
    with pytest.raises(CnnlensError, match="single class"):
        FoldSEM().fit(np.array([[0], [1]]), np.array(["a", "a"]))


def test_missing_labels_are_an_error_missing_cells_are_not():
    """NaN / None feature cells are missing values (issue 13 item 4), missing labels an error."""
    X = np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 3.0]])
    m = FoldSEM(tail=0).fit(X, np.array([0, 1, 0]))
    assert m.feature_kinds_[0] == "binary" and "1 empty/NaN" in m.fit_report_[0]
    with pytest.raises(CnnlensError, match="label of row 1 is missing"):
        FoldSEM().fit(np.array([[0], [1]]), np.array([0.0, np.nan]))
    m = FoldSEM(tail=0).fit(np.array([[0.0], [1.0], [2.0]]), np.array([0, 1, 1]))
    # NaN at predict: both comparisons are false → no rule fires → default class
    assert list(m.predict_rule(np.array([[np.nan]]))) == [-1]

def test_unknown_column_name_is_an_error():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [0, 1], "b": ["x", "y"]})
    with pytest.raises(CnnlensError, match=r"categorical column 'zzz' is not a column of X; columns: a, b"):
        FoldSEM().fit(df, [0, 1], categorical=["zzz"])
    m = FoldSEM(tail=0).fit(df, [0, 1])
    with pytest.raises(CnnlensError, match="lacks the column"):
        m.predict(pd.DataFrame({"a": [0]}))


def test_bad_params_and_shapes():
    X, y = _nested_table()
    for kw, msg in [({"ratio": -1}, "ratio"), ({"tail": 1.5}, "tail"), ({"heuristic": "foo"}, "heuristic")]:
        with pytest.raises(CnnlensError, match=msg):
            FoldSEM(**kw).fit(X, y)
    with pytest.raises(CnnlensError, match="rows but y has"):
        FoldSEM().fit(X, y[:-1])
    with pytest.raises(CnnlensError, match="default_class 'maybe'"):
        FoldSEM(default_class="maybe").fit(X, y)
    with pytest.raises(CnnlensError, match="not fitted"):
        FoldSEM().predict(X)
    m = FoldSEM().fit(X, y)
    with pytest.raises(CnnlensError, match="must have 3 columns"):
        m.predict(X[:, :2])


def test_load_rejects_other_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"a": 1}')
    with pytest.raises(CnnlensError, match="not a FoldSEM model file"):
        FoldSEM.load(p)
    p.write_text("{oops")
    with pytest.raises(CnnlensError, match="not valid JSON"):
        FoldSEM.load(p)
