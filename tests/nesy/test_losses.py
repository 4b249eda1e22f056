"""Sparsity BCE (Eq. 4-7), EBP weights (SPEC §6.4), class weights and size counting by hand."""
from __future__ import annotations

import math

import pytest
import torch

from cnnlens.errors import CnnlensError
from cnnlens.nesy import EBPLoss, RuleSet, SparsityLoss, ebp_matrix
from cnnlens.nesy.losses import class_weights

FIG3 = """
target(X,bedroom) :- f295(X).
target(X,bathroom) :- not f398(X), not ab1(X).
target(X,kitchen) :- f38(X).
target(X,kitchen) :- f209(X).
ab1(X) :- not f145(X), not f134(X).
"""


def _bce(p: float, t: float) -> float:
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def _sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_sparsity_bce_by_hand():
    P = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    theta = torch.tensor([1.0, 1.0, 0.5])
    norms = torch.tensor([[2.0, 0.5, 0.5], [0.0, 3.0, 0.25]])
    y = torch.tensor([0, 1])
    adj = [[1.0, -0.5, 0.0], [-1.0, 2.0, -0.25]]
    tgt = [[1, 0, 0], [0, 1, 1]]
    want = sum(_bce(_sig(a), t) for ra, rt in zip(adj, tgt) for a, t in zip(ra, rt)) / 6
    assert float(SparsityLoss(P, theta)(norms, y)) == pytest.approx(want, rel=1e-6)


def test_sparsity_ts5_no_threshold_and_stability():
    P = torch.tensor([[1.0, 0.0]])
    loss = SparsityLoss(P, None)
    assert float(loss(torch.zeros(1, 2), torch.tensor([0]))) == pytest.approx(math.log(2))
    big = loss(torch.tensor([[1e4, 1e4]]), torch.tensor([0]))  # sigmoid saturates; stays finite
    assert math.isfinite(float(big)) and float(big) == pytest.approx(1e4 / 2, rel=1e-6)
    with pytest.raises(CnnlensError):
        SparsityLoss(P, torch.zeros(3))
    with pytest.raises(CnnlensError):
        loss(torch.zeros(1, 2), torch.tensor([1]))


def test_ebp_weights_and_loss_by_hand():
    D = torch.tensor([[10.0, 8.0, 4.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0]])
    P = ebp_matrix(D, k=2)
    assert torch.allclose(P[0], torch.tensor([1.0, 1.0, 0.5, 0.75, 1.0]))
    assert torch.allclose(P[1], torch.tensor([1.0, 1 - 1 / 3, 1 - 2 / 3, 1.0, 1.0]))
    a = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 3.0, 0.0, 0.0]])
    loss = EBPLoss(P, lam=1e-3)(a, torch.tensor([0, 1]))
    want = 1e-3 * ((0 + 0 + 0.5 + 0.25 + 0) + (0 + 0 + 3 * 2 / 3 + 0 + 0))
    assert float(loss) == pytest.approx(want, rel=1e-6)


def test_class_weights():
    w = class_weights(torch.tensor([0, 0, 0, 1]), 3)
    assert torch.allclose(w, torch.tensor([4 / (3 * 3), 4 / (3 * 1), 0.0]))  # N / (C * N_c); absent class 0


def test_size_counting_fig3():
    rs = RuleSet.from_asp(FIG3)
    assert rs.size == 7 and rs.n_rules == 5
    assert set(rs.predicates) == {"f295", "f398", "f38", "f209", "f145", "f134"}


@pytest.mark.parametrize("module", ["cnnlens.nesy.binarize", "cnnlens.nesy.losses", "cnnlens.nesy.labelling",
                                    "cnnlens.data.texture_scenes"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
