"""FOLD-SE-M fidelity (issue 13): the categorical-float bug, ``mode="fold-rm"`` against the
``foldrm`` reference package, mixed columns, the binary convention, and the fast threshold search."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from cnnlens.errors import CnnlensError
from cnnlens.nesy import FoldSEM
from cnnlens.nesy import fold_learner as F
from cnnlens.nesy.program import TARGET

pd = pytest.importorskip("pandas")


# ------------------------------------------------------------------------------------------
# item 1: categorical float column
# ------------------------------------------------------------------------------------------

def test_categorical_float_column_reproducer(tmp_path):
    X = pd.DataFrame({"c": [0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 2.5, 2.5]})
    y = np.array(list("pppnnnnn"))
    m = FoldSEM(tail=0).fit(X, y, categorical=["c"])
    assert (m.predict(X) == y).mean() == 1.0
    assert (m.predict(X.to_numpy()) == y).mean() == 1.0
    m.save(tmp_path / "m.json")
    m2 = FoldSEM.load(tmp_path / "m.json")
    assert (m2.predict(X) == y).mean() == 1.0 and (m2.predict(X.to_numpy()) == y).mean() == 1.0
    # the literal is a value, not a comparison
    assert "c(X,'0.5')" in m.rules_.to_asp("scasp")


# ------------------------------------------------------------------------------------------
# item 3: mode="fold-rm" against the foldrm package (same rules, same split)
# ------------------------------------------------------------------------------------------

def _ours_tree(model: FoldSEM) -> list:
    rs = model.rules_
    by_head: dict[str, list] = {}
    for r in rs.rules:
        if not r.is_target:
            by_head.setdefault(r.head, []).append(r)

    def lit(lt):
        j = int(lt.name[1:])
        if lt.op == "==":
            return (j, "!=" if lt.negated else "==", lt.value)
        return (j, lt.op, float(lt.value))

    def node(r):
        items = tuple(lit(lt) for lt in r.body if not lt.name.startswith("ab"))
        abs_ = [lt.name for lt in r.body if lt.name.startswith("ab")]
        exc = tuple(node(e) for a in abs_ for e in by_head.get(a, ()))
        return (items, exc)

    return [(str(r.cls),) + node(r) for r in rs.rules if r.head == TARGET]


def _foldrm_tree(rules: list) -> list:
    def node(r):
        items = tuple((i, op, float(v) if not isinstance(v, str) else v) for i, op, v in r[1])
        return (items, tuple(node(e) for e in r[2]))

    return [(str(r[0][2]),) + node(r) for r in rules]


def _tables():
    from sklearn import datasets

    out = {}
    for name, loader in (("iris", datasets.load_iris), ("wine", datasets.load_wine),
                         ("breast cancer", datasets.load_breast_cancer)):
        d = loader()
        out[name] = (d.data, d.target.astype(str))
    return out


@pytest.mark.parametrize("name", ["iris", "wine", "breast cancer"])
def test_fold_rm_mode_learns_the_foldrm_rules(name):
    foldrm = pytest.importorskip("foldrm")
    from sklearn.model_selection import train_test_split

    X, y = _tables()[name]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    m = FoldSEM(mode="fold-rm", ratio=0.5).fit(Xtr, ytr)
    data = [list(map(float, r)) + [str(c)] for r, c in zip(Xtr, ytr)]
    ref = foldrm.foldrm(data, ratio=0.5)
    assert _ours_tree(m) == _foldrm_tree(ref)
    test = [list(map(float, r)) + [str(c)] for r, c in zip(Xte, yte)]
    theirs = foldrm.predict(ref, test)
    ours = m.predict(Xte)
    # identical wherever foldrm answers (it has no default class: None)
    assert all(a == b for a, b in zip(ours, theirs) if b is not None)


def test_fold_rm_mode_digits_accuracy_within_one_point():
    foldrm = pytest.importorskip("foldrm")
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    d = datasets.load_digits()
    X, y = (d.data > 7).astype(np.uint8), d.target.astype(str)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    acc = (FoldSEM(mode="fold-rm", ratio=0.5).fit(Xtr, ytr).predict(Xte) == yte).mean()
    ref = foldrm.foldrm([list(map(float, r)) + [c] for r, c in zip(Xtr, ytr)], ratio=0.5)
    pred = foldrm.predict(ref, [list(map(float, r)) + [c] for r, c in zip(Xte, yte)])
    acc_ref = np.mean([a == c for a, c in zip(pred, yte)])
    assert abs(acc - acc_ref) <= 0.01, (acc, acc_ref)


def test_fold_rm_mode_mixed_column_matches_foldrm():
    """A numeric column with '?' cells: FOLD-R++/RM compare numbers only, '?' gets == / != ."""
    foldrm = pytest.importorskip("foldrm")
    rng = np.random.default_rng(5)
    n = 120
    a = rng.integers(0, 30, size=n).astype(object)
    a[rng.random(n) < 0.15] = "?"
    b = rng.integers(0, 5, size=n)
    y = np.where([(v == "?") or (v > 14) for v in a], "hi", "lo")
    y = np.where(rng.random(n) < 0.1, "mid", y)
    X = np.empty((n, 2), dtype=object)
    X[:, 0], X[:, 1] = a, b
    m = FoldSEM(mode="fold-rm", ratio=0.5).fit(X, y)
    assert m.feature_kinds_ == ["numeric", "numeric"]
    assert "non-numeric cell(s) ('?'" in m.fit_report_[0]
    data = [[v if v == "?" else float(v), float(w), c] for v, w, c in zip(a, b, y)]
    assert _ours_tree(m) == _foldrm_tree(foldrm.foldrm(data, ratio=0.5))


# ------------------------------------------------------------------------------------------
# item 4: mixed columns
# ------------------------------------------------------------------------------------------

def test_question_mark_empty_and_nan_cells_in_a_numeric_column():
    x = [1, 2, 3, "?", 10, 11, "", 12, np.nan, 13, 2, "?"]
    y = ["a", "a", "a", "b", "b", "b", "a", "b", "a", "b", "a", "b"]
    X = pd.DataFrame({"x": pd.Series(x, dtype=object)})
    m = FoldSEM(tail=0, positive_class=None).fit(X, y)
    assert m.feature_kinds_ == ["numeric"]
    rep = m.column_report_[0]
    assert rep["kind"] == "numeric" and rep["missing"] == 2 and rep["non_numeric"] == {"?": 2}
    assert "2 empty/NaN cell(s) are missing" in m.fit_report_[0]
    assert (m.predict(X) == np.array(y)).all()
    # numeric comparisons are false on '?' and missing cells; '?' is a value
    asp = m.rules_.to_asp("scasp")
    assert "x(X,'?')" in asp or "x(X,N1)" in asp
    pred = m.predict(pd.DataFrame({"x": pd.Series(["?", None, 12.5, "zzz"], dtype=object)}))
    assert list(pred[:1]) == ["b"] and len(pred) == 4


def test_nan_in_a_float_numpy_column_is_missing_not_an_error():
    X = np.array([[0.0], [1.0], [np.nan], [5.0], [6.0], [7.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    m = FoldSEM(tail=0).fit(X, y)
    assert m.column_report_[0]["missing"] == 1
    assert list(m.predict(np.array([[6.5], [0.5], [np.nan]]))) == [1, 0, 0]


def test_unseen_categorical_value_and_binary_two_do_not_raise():
    X = pd.DataFrame({"c": ["r", "r", "g", "g", "b", "b"]})
    m = FoldSEM(tail=0).fit(X, ["x", "x", "y", "y", "z", "z"])
    assert m.feature_kinds_ == ["categorical"]
    pred = m.predict(pd.DataFrame({"c": ["purple", "r", None]}))
    # unseen and missing values match no value: f == v false, f != v true (same answer for both)
    assert pred[1] == "x" and pred[0] == pred[2]
    Xb = pd.DataFrame({"f": [1, 1, 1, 0, 0, 0]})
    mb = FoldSEM(tail=0).fit(Xb, [1, 1, 1, 0, 0, 0])
    assert mb.feature_kinds_ == ["binary"] and mb.rules_.to_asp() == "target(X,1) :- f(X).\n% default: 0\n"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pred = mb.predict(pd.DataFrame({"f": [2, 1, 0]}))
    assert list(pred) == [0, 1, 0]  # 2 is not 1: f(X) is false
    assert any("holds 2" in str(x.message) and "f(X) is false" in str(x.message) for x in w)

def test_inf_and_dash_cells_are_reported_values():
    x = ["1", "2", "inf", "-", "8", "9", "3", "10"]
    y = [0, 0, 1, 0, 1, 1, 0, 1]
    m = FoldSEM(tail=0).fit(np.array(x, dtype=object).reshape(-1, 1), y)
    assert m.feature_kinds_ == ["numeric"]
    assert m.column_report_[0]["non_numeric"] == {"-": 1, "inf": 1}
    assert "compared as values" in m.fit_report_[0]
    assert (m.predict(np.array(x, dtype=object).reshape(-1, 1)) == np.array(y)).all()


def test_mostly_text_column_is_categorical_and_says_so():
    x = ["red", "blue", "3", "red", "blue", "green"]
    m = FoldSEM(tail=0).fit(np.array(x, dtype=object).reshape(-1, 1), [0, 1, 0, 0, 1, 1])
    assert m.feature_kinds_ == ["categorical"]
    assert "only 1 of 6 filled cell(s) are numbers" in m.fit_report_[0]


# ------------------------------------------------------------------------------------------
# item 6: binary convention
# ------------------------------------------------------------------------------------------

def test_binary_convention_rules_for_the_positive_class_only():
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    X, y = d.data[:300], d.target_names[d.target[:300]]
    m = FoldSEM().fit(X, y)
    counts = {c: int((y == c).sum()) for c in set(y)}
    pos = min(counts, key=counts.get)
    assert m.positive_class_ == pos and m.default_class_ != pos
    assert {r.cls for r in m.rules_.target_rules} == {pos}
    both = FoldSEM(positive_class=None).fit(X, y)
    assert both.positive_class_ is None and len({r.cls for r in both.rules_.target_rules}) == 2
    chosen = FoldSEM(positive_class="benign").fit(X, y)
    assert {r.cls for r in chosen.rules_.target_rules} == {"benign"} and chosen.default_class_ == "malignant"
    with pytest.raises(CnnlensError, match="positive_class 'cat' is not one of the classes"):
        FoldSEM(positive_class="cat").fit(X, y)


# ------------------------------------------------------------------------------------------
# item 5: the threshold search
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_local_and_full_threshold_search_learn_the_same_rules(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(300, 4)) * 10, 1)
    X[rng.random(X.shape) < 0.05] = np.nan
    y = np.argmax(X[:, :3] + rng.normal(scale=8, size=(300, 3)), axis=1)
    progs = []
    for local in (0, 10**9):
        init = F._Learner.__init__

        def patched(self, *a, _local=local, **k):
            init(self, *a, **k)
            self._local_rows = _local

        monkeypatch.setattr(F._Learner, "__init__", patched)
        progs.append(FoldSEM(tail=0, ratio=0.5).fit(X, y).rules_.to_asp("scasp"))
        monkeypatch.setattr(F._Learner, "__init__", init)
    assert progs[0] == progs[1]


def test_justify_a_row_without_a_number_in_a_numeric_column():
    X = pd.DataFrame({"x": pd.Series([1, 2, 3, 10, 11, 12, "?", "?"], dtype=object)})
    y = ["a", "a", "a", "b", "b", "b", "a", "a"]
    m = FoldSEM(tail=0, positive_class="b").fit(X, y)
    assert m.rules_.to_asp() == "target(X,b) :- x(X,N1), N1 > 3.\n% default: a\n"
    for cell, shown in (("?", "'?'"), (None, "missing")):
        j = m.justify(pd.DataFrame({"x": pd.Series([cell], dtype=object)}))
        assert j.prediction == "a" and j.default_used
        assert f"there is no evidence that 'x' holds a number (for img; the cell is {shown}), so x > 3 is false" in j.text
