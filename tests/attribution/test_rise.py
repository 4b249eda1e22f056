"""RISE: the expected saliency of a known-region model (closed form), reproducibility, options
and bad input (SPEC §2)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlens
from cnnlens.attribution.rise import rise_masks
from cnnlens.errors import CnnlensError


class _RegionMean(nn.Module):
    """p(class 1) = mean of channel 0 over a known region R (logits = log-probabilities)."""

    def __init__(self, region: torch.Tensor) -> None:
        super().__init__()
        self.region = region

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = ((x[:, 0] * self.region).sum(dim=(1, 2)) / self.region.sum()).clamp(1e-9, 1 - 1e-9)
        return torch.stack([torch.log1p(-p), torch.log(p)], dim=1)


def _expected_rise_map(region: torch.Tensor, grid: int, p: float) -> torch.Tensor:
    """E[S(u)] for the region-mean model on an all-ones image, from the mask definition alone.

    A mask is M(u) = Σ_j a_j(u; shift) B_j with B_j ~ Bernoulli(p) and a(·; shift) the bilinear
    interpolation weights (Σ_j a_j = 1), so E[M(u) M(v) | shift] = p² + p(1 − p) a(u)·a(v) and
    E[S(u)] = E[M(u) · mean_R M] / p = p + (1 − p) E_shift[a(u) · mean_{v∈R} a(v)]."""
    H, W = region.shape
    ch, cw = math.ceil(H / grid), math.ceil(W / grid)
    basis = torch.eye(grid * grid).view(-1, 1, grid, grid)
    up = F.interpolate(basis, size=((grid + 1) * ch, (grid + 1) * cw), mode="bilinear", align_corners=False).squeeze(1)
    total = torch.zeros(H, W)
    for dy in range(ch):
        for dx in range(cw):
            a = up[:, dy:dy + H, dx:dx + W].reshape(grid * grid, -1)  # (cells, pixels)
            a_region = a[:, region.flatten() > 0].mean(dim=1)  # (cells,)
            total += (a_region @ a).view(H, W)
    return p + (1 - p) * total / (ch * cw)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def test_rise_map_matches_the_expected_map_of_a_known_region_model():
    region = torch.zeros(48, 48)
    region[8:30, 14:40] = 1
    clf = cnnlens.Classifier(_RegionMean(region).eval())
    x = torch.ones(1, 3, 48, 48)
    e = cnnlens.explain(clf, x, "rise", target=1, n_masks=4000, seed=0, batch_size=500)
    expected = _expected_rise_map(region, 7, 0.5)
    assert _corr(e.maps[0], expected) > 0.95
    assert _corr(e.maps[0], region) > 0.8  # the region itself, blurred by the masks' smoothness
    assert abs(float(e.maps.mean()) - float(expected.mean())) < 0.02  # the 1/(N·p) scale


def test_masks_and_maps_are_reproducible_and_independent_of_batching():
    m1 = rise_masks(5, (20, 30), generator=torch.Generator().manual_seed(0))
    m2 = rise_masks(5, (20, 30), generator=torch.Generator().manual_seed(0))
    assert torch.equal(m1, m2) and m1.shape == (5, 20, 30) and 0 <= float(m1.min()) and float(m1.max()) <= 1
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    clf = cnnlens.Classifier(net)
    x = torch.rand(3, 3, 20, 20)
    a = cnnlens.explain(clf, x, "rise", n_masks=100, seed=7, batch_size=1000)
    b = cnnlens.explain(clf, x, "rise", n_masks=100, seed=7, batch_size=2)  # splits images too
    single = cnnlens.explain(clf, x[1:2], "rise", target=a.targets[1:2], n_masks=100, seed=7, batch_size=5)
    c = cnnlens.explain(clf, x, "rise", n_masks=100, seed=8)
    assert torch.allclose(a.maps, b.maps, atol=1e-6)
    assert torch.allclose(a.maps[1], single.maps[0], atol=1e-6)
    assert not torch.allclose(a.maps, c.maps)
    assert {"n_masks": 100, "grid": 7, "p": 0.5, "fill": "black", "seed": 7}.items() <= a.params.items()


def test_mean_baseline_and_bad_input():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.rand(1, 3, 16, 16)
    # without normalisation the colour the model sees as 0 is black: fill="mean" is fill="black"
    plain = cnnlens.Classifier(net)
    assert torch.equal(cnnlens.explain(plain, x, "rise", baseline="mean", n_masks=10).maps,
                       cnnlens.explain(plain, x, "rise", fill="black", n_masks=10).maps)
    with pytest.raises(CnnlensError, match="not both"):
        cnnlens.explain(plain, x, "rise", fill="mean", baseline="mean", n_masks=10)
    clf = cnnlens.Classifier(net, mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2])
    black = cnnlens.explain(clf, x, "rise", n_masks=100)
    mean = cnnlens.explain(clf, x, "rise", n_masks=100, baseline="mean")
    assert not torch.allclose(black.maps, mean.maps)
    assert torch.equal(mean.maps, cnnlens.explain(clf, x, "rise", n_masks=100, fill="mean").maps)  # old name = new
    for bad in ({"p": 1.5}, {"p": 0}, {"n_masks": 0}, {"grid": 0}, {"baseline": "blur"}):
        with pytest.raises(CnnlensError):
            cnnlens.explain(clf, x, "rise", **bad)
