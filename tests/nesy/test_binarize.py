"""Filter norms, thresholds (Eq. 2) and the P matrix (Method 1/2) against hand-computed values (SPEC §6.1, §6.2)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cnnlens import Classifier
from cnnlens.errors import CnnlensError
from cnnlens.nesy import filter_norms, p_matrix, thresholds
from cnnlens.nesy.binarize import binarize, default_layer

# 8 filters of 1x1 convs over 3 channels (rows = filters): known mean |f| per image
W8 = torch.tensor([
    [1.0, 0.0, 0.0],   # f0 = c0
    [0.0, 1.0, 0.0],   # f1 = c1
    [0.0, 0.0, 1.0],   # f2 = c2
    [0.5, 0.5, 0.0],   # f3 = (c0 + c1) / 2
    [0.1, 0.0, 0.0],   # f4
    [0.0, 0.0, 0.1],   # f5
    [0.0, 0.0, 0.0],   # f6
    [0.0, 0.05, 0.0],  # f7
])


def _net(weight: torch.Tensor) -> Classifier:
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(weight.view(*weight.shape, 1, 1))
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(weight.shape[0], 2))
    return Classifier(net.eval())


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(4, 3, 4, 4)
    x[:2, 0], x[:2, 1] = 1.0, 0.2   # class 0
    x[2:, 1], x[2:, 2] = 0.3, 1.0   # class 1
    return x, torch.tensor([0, 0, 1, 1])


def test_default_layer_is_last_conv_after_activation():
    clf = _net(W8)
    assert default_layer(clf) == "1"
    bare = Classifier(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 36, 2)).eval())
    assert default_layer(bare) == "0"


def test_filter_norms_fro_and_spectral_by_hand():
    w = torch.tensor([[1.0], [2.0]])
    clf = _net(w)
    x = torch.rand(3, 1, 5, 6)
    n = filter_norms(clf, x, batch_size=2)
    want = torch.stack([x[:, 0].flatten(1).norm(dim=1), 2 * x[:, 0].flatten(1).norm(dim=1)], dim=1)
    assert torch.allclose(n, want, atol=1e-5)
    s = filter_norms(clf, x, norm="spectral")
    want_s = [np.linalg.norm(x[i, 0].numpy(), 2) for i in range(3)]
    assert np.allclose(s[:, 0].numpy(), want_s, atol=1e-5)
    assert np.allclose(s[:, 1].numpy(), 2 * np.array(want_s), atol=1e-5)


def test_thresholds_eq2_by_hand():
    norms = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    th = thresholds(norms)  # mu = [3, 5]; unbiased sigma = [2, sqrt(13)]
    assert torch.allclose(th, torch.tensor([0.6 * 3 + 0.7 * 2, 0.6 * 5 + 0.7 * math.sqrt(13)]))
    assert torch.allclose(thresholds(norms, h1=1.0, h2=0.0), torch.tensor([3.0, 5.0]))
    with pytest.raises(CnnlensError, match="at least 2"):
        thresholds(norms[:1])


def test_p_matrix_method1_by_hand():
    clf = _net(W8)
    x, y = _images()
    # per-image mean |f|: class 0 -> [1, .2, 0, .6, .1, 0, 0, .01]; class 1 -> [0, .3, 1, .15, 0, .1, 0, .015]
    P = p_matrix(clf, x, y, k=2, method=1, n_classes=2)
    want = torch.zeros(2, 8)
    want[0, [0, 3]] = 1
    want[1, [2, 1]] = 1
    assert torch.equal(P, want)


def test_p_matrix_method2_random_seeded():
    clf = _net(W8)
    x, y = _images()
    P = p_matrix(clf, x, y, k=2, method=2, seed=3, n_classes=2)
    assert P.shape == (2, 8) and torch.equal(P.sum(1), torch.tensor([2.0, 2.0]))
    assert set(P.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(P, p_matrix(clf, x, y, k=2, method=2, seed=3, n_classes=2))
    draws = {tuple(p_matrix(clf, x, y, k=2, method=2, seed=s, n_classes=2).flatten().tolist()) for s in range(8)}
    assert len(draws) > 1
    overlaps = [float((p_matrix(clf, x, y, k=2, method=2, seed=s, n_classes=2).prod(0)).sum()) for s in range(40)]
    assert max(overlaps) > 0, "classes are drawn independently: some seed must share a filter"
    for s in range(10):
        Pd = p_matrix(clf, x, y, k=2, method=2, seed=s, disjoint=True, n_classes=2)
        assert float(Pd.prod(0).sum()) == 0 and float(Pd.sum()) == 4


def test_p_matrix_method2_draws_live_filters_only():
    """§6.2 (revised): f6 has norm 0 on every image (dead: no gradient, target 1 unreachable), so
    method 2 never picks it; with every filter live the draw equals the unrestricted one."""
    clf = _net(W8)
    x, y = _images()
    assert float(filter_norms(clf, x)[:, 6].max()) == 0 and float(thresholds(filter_norms(clf, x))[6]) == 0
    picked = torch.zeros(8)
    for s in range(60):
        picked += p_matrix(clf, x, y, k=2, method=2, seed=s, n_classes=2).sum(0)
        picked += p_matrix(clf, x, y, k=2, method=2, seed=s, disjoint=True, n_classes=2).sum(0)
    assert picked[6] == 0 and bool((picked[[0, 1, 2, 3, 4, 5, 7]] > 0).all())
    unrestricted = torch.zeros(8)
    for s in range(60):
        unrestricted += p_matrix(clf, x, y, k=2, method=2, seed=s, n_classes=2, live_only=False).sum(0)
    assert unrestricted[6] > 0  # the old draw did pick the dead filter
    live = W8.clone()
    live[6] = torch.tensor([0.0, 0.2, 0.0])  # now every filter fires on some image
    clf2 = _net(live)
    for s in range(5):
        assert torch.equal(p_matrix(clf2, x, y, k=2, method=2, seed=s, n_classes=2),
                           p_matrix(clf2, x, y, k=2, method=2, seed=s, n_classes=2, live_only=False))
    dead = torch.zeros(8, 3)
    dead[0, 0] = dead[1, 2] = 1.0  # two live filters: k=2 per class fits, disjoint 2×2 does not
    p_matrix(_net(dead), x, y, k=2, method=2, n_classes=2)
    with pytest.raises(CnnlensError, match="live"):
        p_matrix(_net(dead), x, y, k=2, method=2, disjoint=True, n_classes=2)


def test_k_limit_and_bad_layer():
    clf = _net(W8)
    x, y = _images()
    with pytest.raises(CnnlensError, match="F/2"):
        p_matrix(clf, x, y, k=3, method=1, n_classes=2)
    with pytest.raises(CnnlensError, match="not spatial filter maps"):
        filter_norms(clf, x, layer="3")  # Flatten: (N, 8)
    with pytest.raises(CnnlensError, match="method"):
        p_matrix(clf, x, y, k=1, method=3)


def test_rounding_rule_sigmoid_vs_threshold():
    norms = torch.tensor([[0.0, 1.0, 2.0, 1e-3]])
    theta = torch.tensor([0.0, 1.0, 1.5, 0.0])
    sig = binarize(norms, theta, "sigmoid")
    assert sig.tolist() == [[0, 0, 1, 1]]
    assert torch.equal(sig.float(), torch.round(torch.sigmoid(norms - theta)))  # half to even: 0.5 -> 0
    assert binarize(norms, theta, "threshold").tolist() == [[1, 1, 1, 1]]  # Norm >= theta
    # TS5 (theta = 0): bit = 1 iff Norm > 0
    assert binarize(norms, None, "sigmoid").tolist() == [[0, 1, 1, 1]]
