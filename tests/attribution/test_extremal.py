"""Extremal Perturbation (SPEC §2; Fong, Patrick & Vedaldi 2019): area constraint, toy oracle,
better than a random mask of the same area, model untouched, bad input."""
from __future__ import annotations

import pytest
import torch

import cnnlens
from cnnlens.attribution.extremal import _perturb, area_loss, blur_pyramid, smooth_max_mask
from cnnlens.errors import CnnlensError
from tests.ablation.toys import SquareMeanNet, square
from tests.conftest import no_hooks_left

SMALL = dict(step=2, sigma=3.0, max_blur=4.0, iterations=150)


@pytest.fixture(scope="module")
def toy():
    q = square(32, 6, 18, 8)
    clf = cnnlens.Classifier(SquareMeanNet(q).eval())
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.3
    x[:, 0][:, q] = 1.0  # a bright square on a dark textured background
    e = cnnlens.explain(clf, x, "extremal_perturbation", seed=0, **SMALL)
    return clf, x, q, e


def test_area_constraint_met(toy):
    _, _, _, e = toy
    assert e.maps.shape == (2, 32, 32)
    assert float(e.maps.min()) >= 0.0 and float(e.maps.max()) <= 1.0
    frac = (e.maps > 0.5).flatten(1).float().mean(1)
    assert torch.allclose(frac, torch.full_like(frac, 0.1), atol=0.03), frac
    assert e.params["area"] == 0.1 and e.params["game"] == "preservation"
    assert e.params["iterations"] == 150 and e.params["jitter"] is True


def test_selects_known_square(toy):
    _, _, q, e = toy
    for m in e.maps:
        top = m.flatten().topk(int(q.sum())).indices
        assert q.flatten()[top].float().mean() > 0.7
        assert m[q].mean() > 0.7 and m[~q].mean() < 0.15


def test_beats_random_mask_of_same_area(toy):
    clf, x, _, e = toy
    pyr = blur_pyramid(x, SMALL["max_blur"], 8)
    n_on = int(round(0.1 * 32 * 32))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        # EP's mask binarised to its top-10% pixels vs random 10% masks, same blur perturbation
        ep = torch.zeros(2, 32 * 32)
        ep.scatter_(1, e.maps.flatten(1).topk(n_on, dim=1).indices, 1.0)
        s_ep = clf.logits(_perturb(pyr, ep.view(2, 1, 32, 32)))[:, 1]
        for _ in range(5):
            rnd = torch.zeros(2, 32 * 32)
            rnd.scatter_(1, torch.rand(2, 32 * 32, generator=g).topk(n_on, dim=1).indices, 1.0)
            s_rnd = clf.logits(_perturb(pyr, rnd.view(2, 1, 32, 32)))[:, 1]
            assert bool((s_ep > s_rnd).all())


def test_area_loss_and_smooth_mask_properties():
    m = torch.zeros(1, 1, 10, 10)
    m[..., :1, :] = 1.0  # exactly 10% ones
    assert float(area_loss(m, 0.1)) == 0.0
    assert float(area_loss(torch.ones(1, 1, 10, 10), 0.1)) == pytest.approx(0.9)
    mbar = torch.zeros(1, 1, 8, 8)
    mbar[0, 0, 4, 4] = 1.0
    sm = smooth_max_mask(mbar, 1.0, 0.05, (16, 16))
    assert float(sm.max()) <= 1.0 and float(sm.min()) >= 0.0
    assert sm[0, 0, 8, 8] > sm[0, 0, 0, 0]  # peak at the active cell, decays away from it
    x = torch.rand(1, 1, 16, 16)
    pyr = blur_pyramid(x, 3.0, 4)
    assert torch.allclose(_perturb(pyr, torch.ones(1, 1, 16, 16)), x)
    assert torch.allclose(_perturb(pyr, torch.zeros(1, 1, 16, 16)), pyr[0])


def test_real_model_untouched_and_seeded():
    from cnnlens import zoo

    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist").images[:2]
    state = {k: v.clone() for k, v in clf.model.state_dict().items()}
    kw = dict(step=2, sigma=3.0, max_blur=4.0, iterations=8)
    a = cnnlens.explain(clf, x, "extremal_perturbation", seed=3, **kw)
    b = cnnlens.explain(clf, x, "extremal_perturbation", seed=3, batch_size=1, **kw)
    assert torch.allclose(a.maps, b.maps, atol=1e-5)  # batched over images = one by one
    assert all(p.grad is None for p in clf.model.parameters())
    assert all(torch.equal(v, clf.model.state_dict()[k]) for k, v in state.items())
    assert no_hooks_left(clf.model) and not clf.model.training


@pytest.mark.parametrize(
    "kw, msg",
    [(dict(area=0.0), "area"), (dict(area=1.5), "area"), (dict(iterations=0), "iterations"),
     (dict(step=0), "step"), (dict(sigma=-1.0), "sigma"), (dict(score="rank"), "score")],
)
def test_bad_parameters(toy, kw, msg):
    clf, x, _, _ = toy
    with pytest.raises(CnnlensError, match=msg):
        cnnlens.explain(clf, x, "extremal_perturbation", **kw)
