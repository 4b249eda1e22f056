"""evaluate(): oracle models with known answers (the xplique pattern), RISE's published protocol
on a constructed curve, NaN safety, recorded parameters and bad input (SPEC §3)."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

import cnnlens
from cnnlens import Explanation
from cnnlens.errors import CnnlensError
from cnnlens.metrics import average_drop_increase


class TwoLogit(nn.Module):
    """logits [f(x), 0] for a pixel function f."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        z = self.f(x).view(-1, 1)
        return torch.cat([z, torch.zeros_like(z)], dim=1)


def _clf(f, channels=1):
    clf = cnnlens.Classifier(TwoLogit(f).eval())
    return clf


def test_dauc_zero_when_the_top_pixel_carries_everything():
    # the score collapses as soon as pixel (3, 5) is removed; the map ranks it first
    clf = _clf(lambda x: 100.0 * (x[:, 0, 3, 5] - 0.5))
    x = torch.full((2, 1, 16, 16), 0.9)
    m = torch.rand(2, 16, 16) * 0.5
    m[:, 3, 5] = 1.0
    res = cnnlens.evaluate(clf, x, m, metrics=["dauc", "iauc"], target=0, insertion_substrate="black")
    k = res["dauc"].params["n_steps"]
    assert k == 128  # 256 pixels, ceil(256 / 224) = 2 per step
    # s_0 = 1, then 0: trapezoid = 0.5 / n_steps
    assert res["dauc"].per_image.max() <= 0.5 / k + 1e-6
    # and the same pixel inserted first makes the score jump at once: IAUC = 1 - 0.5 / n_steps
    assert res["iauc"].per_image.min() >= 1 - 0.5 / k - 1e-6
    # the reversed map deletes it last: DAUC ≈ 1
    rev = cnnlens.evaluate(clf, x, -m, metrics=["dauc"], target=0)
    assert rev["dauc"].per_image.min() >= 1 - 0.5 / k - 1e-6


def test_iauc_zero_when_the_model_needs_every_pixel():
    clf = _clf(lambda x: 200.0 * (x.flatten(1).amin(1) - 0.25))
    x = 0.5 + 0.5 * torch.rand(2, 1, 12, 12)
    res = cnnlens.evaluate(clf, x, torch.rand(2, 12, 12), metrics=["iauc", "dauc"], target=0,
                           insertion_substrate="black")
    k = res["iauc"].params["n_steps"]
    assert res["iauc"].per_image.max() <= 0.5 / k + 1e-6
    assert res["dauc"].per_image.max() <= 0.5 / k + 1e-6


@pytest.mark.parametrize("protocol", ["rise", "gomez"])
def test_linear_model_correlations_are_plus_minus_one(protocol):
    torch.manual_seed(3)
    w = torch.randn(1, 1, 14, 14)
    clf = _clf(lambda x: (x * w).flatten(1).sum(1))
    x = torch.full((3, 1, 14, 14), 0.7)
    maps = 2.5 * w[0, 0].expand(3, 14, 14)
    kw = dict(metrics=["ic", "dc", "iauc", "dauc"], target=0, protocol=protocol, score="logit",
              insertion_substrate="black")
    res = cnnlens.evaluate(clf, x, maps, **kw)
    assert res["ic"].params["n_cells"] % res["ic"].params["step"] == 0
    torch.testing.assert_close(res["ic"].per_image, torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(res["dc"].per_image, torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
    neg = cnnlens.evaluate(clf, x, -maps, **kw)
    torch.testing.assert_close(neg["ic"].per_image, -torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(neg["dc"].per_image, -torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
    # the right map beats the negated one on both AUCs
    assert (res["iauc"].per_image > neg["iauc"].per_image).all()
    assert (res["dauc"].per_image < neg["dauc"].per_image).all()


def test_rise_protocol_on_a_constructed_curve():
    # 224 x 224 input, score = mean pixel value (logit): deletion of 224 pixels per step from a
    # white image gives the straight line 1 - k/224, whose trapezoid AUC over [0, 1] is 0.5
    clf = _clf(lambda x: x.mean(dim=(1, 2, 3)))
    x = torch.ones(1, 1, 224, 224)
    m = torch.rand(1, 224, 224)
    res = cnnlens.evaluate(clf, x, m, metrics=["dauc", "iauc"], score="logit", batch_size=128)
    p = res["dauc"].params
    assert (p["step"], p["n_steps"], p["res"], p["protocol"]) == (224, 224, [224, 224], "rise")
    line = 1 - torch.arange(225, dtype=torch.float64) / 224
    torch.testing.assert_close(res["dauc"].curves[0], line, atol=1e-6, rtol=0)
    assert res["dauc"].mean == pytest.approx(0.5, abs=1e-6)
    # insertion starts from RISE's blur: kernel 11, sigma 5 (a Gaussian-filtered unit impulse),
    # zero padding; computed here independently with scipy
    impulse = np.zeros((11, 11))
    impulse[5, 5] = 1
    kernel = ndimage.gaussian_filter(impulse, 5)
    blurred = ndimage.correlate(np.ones((224, 224)), kernel, mode="constant", cval=0.0)
    rank = np.empty(224 * 224, dtype=np.int64)
    order = np.argsort(-m[0].numpy().ravel(), kind="stable")
    rank[order] = np.arange(224 * 224)
    rank = rank.reshape(224, 224)
    curve = np.array([np.where(rank < k * 224, 1.0, blurred).mean() for k in range(225)])
    np.testing.assert_allclose(res["iauc"].curves[0].numpy(), curve, atol=1e-5)
    assert res["iauc"].mean == pytest.approx(np.trapezoid(curve, np.linspace(0, 1, 225)), abs=1e-5)


def test_constant_maps_and_constant_curves_are_nan_free_and_counted():
    clf = _clf(lambda x: torch.zeros(x.shape[0]))  # constant model: flat curves
    x = torch.rand(3, 1, 8, 8)
    res = cnnlens.evaluate(clf, x, torch.rand(3, 8, 8), metrics=["ic", "dc", "ad", "iic"])
    assert res["ic"].per_image.tolist() == [0.0] * 3 and res["ic"].n_constant == 3
    assert res["dc"].n_constant == 3
    lin = _clf(lambda x: x.flatten(1).sum(1))
    res = cnnlens.evaluate(lin, x, torch.ones(3, 8, 8), metrics=["ic", "dc", "ad"], target=0)
    assert res["ic"].n_constant == 3 and not math.isnan(res["ic"].mean)
    # a constant map gives S = 0 for AD: the masked image is black
    torch.testing.assert_close(res["ad"].per_image, average_drop_increase(lin, x, torch.zeros(3, 8, 8), targets=0)[0])


def test_evaluate_matches_average_drop_increase_and_records_params():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(16, 3)).eval()
    clf = cnnlens.Classifier(net)
    x = torch.rand(4, 1, 12, 12)
    expl = Explanation(maps=torch.rand(4, 12, 12), targets=torch.tensor([0, 1, 2, 0]), method="demo")
    for mode in ("soft", "keep"):
        res = cnnlens.evaluate(clf, x, expl, metrics=["ad", "ai"], mode=mode, keep=0.3)
        ad, ai = average_drop_increase(clf, x, expl.maps, targets=expl.targets, mode=mode, keep=0.3)
        torch.testing.assert_close(res["ad"].per_image, ad)
        torch.testing.assert_close(res["ai"].per_image, ai)
        assert res["ai"].name == "iic" and res["ad"].params["mode"] == mode
        assert res["ad"].params["method"] == "demo" and res["ad"].params["targets"] == [0, 1, 2, 0]
    res = cnnlens.evaluate(clf, x, expl, metrics=["iauc", "insertion_game"], protocol="gomez", step=3,
                           deletion_substrate="mean", labels=torch.tensor([0, 1, 2, 0]))
    p = res["iauc"].params
    assert (p["protocol"], p["step"], p["n_steps"], p["insertion_substrate"]) == ("gomez", 3, 48, "blur")
    assert res["insertion_game"].params["check_passed"] is True
    assert res["insertion_game"].mean.shape == (13,)


def test_evaluate_bad_input():
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    clf = cnnlens.Classifier(net)
    x = torch.rand(2, 1, 8, 8)
    m = torch.rand(2, 8, 8)
    with pytest.raises(CnnlensError, match="3 maps for 2 images"):
        cnnlens.evaluate(clf, x, torch.rand(3, 8, 8))
    with pytest.raises(CnnlensError, match="larger than the images"):
        cnnlens.evaluate(clf, x, torch.rand(2, 9, 8))
    with pytest.raises(CnnlensError, match=r"shape \(N, H, W\)"):
        cnnlens.evaluate(clf, x, torch.rand(2, 3, 8, 8))
    with pytest.raises(CnnlensError, match="unknown metric 'auc'"):
        cnnlens.evaluate(clf, x, m, metrics=["auc"])
    with pytest.raises(CnnlensError, match="unknown protocol 'petsiuk'"):
        cnnlens.evaluate(clf, x, m, protocol="petsiuk")
    with pytest.raises(CnnlensError, match="out of range"):
        cnnlens.evaluate(clf, x, m, target=3)
    with pytest.raises(CnnlensError, match="out of range"):
        cnnlens.evaluate(clf, x, m, target=[0, -1])
    with pytest.raises(CnnlensError, match="score"):
        cnnlens.evaluate(clf, x, m, score="probability")
    with pytest.raises(CnnlensError, match="step"):
        cnnlens.evaluate(clf, x, m, step=0)
    with pytest.raises(CnnlensError, match="insertion_substrate"):
        cnnlens.evaluate(clf, x, m, insertion_substrate="noise")
    with pytest.raises(CnnlensError, match="NaN"):
        cnnlens.evaluate(clf, x, torch.full((2, 8, 8), float("nan")))
    with pytest.raises(CnnlensError, match="mar needs"):
        cnnlens.evaluate(clf, x, m, metrics=["mar"])


def test_gomez_accepts_layer_maps_larger_than_the_images():
    # a model that upsamples its input internally (like onet_face on 25x25 lfw crops) has
    # early-layer maps larger than the image: cells are nearest-resized to the image
    net = nn.Sequential(nn.Upsample(size=(30, 30)), nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval()
    clf = cnnlens.Classifier(net)
    x = torch.rand(2, 1, 20, 20)
    expl = Explanation(maps=torch.rand(2, 20, 20), targets=torch.tensor([0, 1]), method="cam",
                       layer_maps=torch.rand(2, 30, 30))
    res = cnnlens.evaluate(clf, x, expl, protocol="gomez")
    assert res["dauc"].params["n_cells"] == 900 and res["ad"].params["res"] == [30, 30]
    assert all(math.isfinite(r.mean) for r in res.values())
