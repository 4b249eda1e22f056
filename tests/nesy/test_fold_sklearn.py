"""FoldSEM through scikit-learn's estimator checks (``parametrize_with_checks``).

The checks run on the default estimator and on the FOLD-RM mode with post-pruning (the other
code paths of ``fit``). Where FoldSEM deliberately differs from scikit-learn's conventions the
check is declared an expected failure below, with the reason; everything else must pass.
Capabilities are declared through ``FoldSEM.__sklearn_tags__``: missing cells (NaN, None, "")
are accepted (``allow_nan``) and string cells are categorical values (``string``).
"""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn", minversion="1.6")  # expected_failed_checks / __sklearn_tags__

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from cnnlens.nesy import FoldSEM  # noqa: E402

EXPECTED_FAILED_CHECKS = {
    "check_supervised_y_2d": "a column-vector y (n, 1) is refused with 'y must be 1-D' instead of "
                             "being raveled with a warning (cnnlens refuses ambiguous shapes; "
                             "tests/nesy/test_fold_bad_input.py)",
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks([FoldSEM(), FoldSEM(mode="fold-rm", ratio=0.5, prune=0.5)],
                         expected_failed_checks=_expected_failed_checks, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_tags_declare_missing_values_and_strings():
    from sklearn.utils import get_tags

    tags = get_tags(FoldSEM())
    assert tags.input_tags.allow_nan and tags.input_tags.string and not tags.input_tags.sparse
    assert tags.estimator_type == "classifier"


@pytest.mark.parametrize("kw,msg", [
    ({"tail_base": "all"}, "tail_base must be one of 'left', 'train'"),
    ({"exception_tail": None}, "exception_tail must be one of"),
    ({"reopen_classes": 1}, "reopen_classes must be True or False"),
    ({"remove_covered_negatives": "no"}, "remove_covered_negatives must be True or False"),
    ({"tail": 1.0}, r"tail must be a number in \[0, 1\)"),
    ({"heuristic": "entropy"}, "heuristic must be one of 'ig', 'gini'"),
])
def test_driver_options_are_validated_in_fit_not_init(kw, msg):
    import numpy as np

    from cnnlens.errors import CnnlensError

    m = FoldSEM(**kw)
    assert m.get_params()[next(iter(kw))] is next(iter(kw.values()))  # stored unchanged
    with pytest.raises(CnnlensError, match=msg):
        m.fit(np.array([[0], [1]]), [0, 1])
