"""AD / AI (IIC) hand-computed on a 3-image example in both masking modes, and the insertion game
(SPEC §3)."""
import pytest
import torch
from torch import nn

import cnnlens
from cnnlens.errors import CnnlensError
from cnnlens.metrics import average_drop_increase, insertion_game


class Linear(nn.Module):
    """logit_0 = sum(w * x), logit_1 = 0: the probability of class 0 is sigmoid(w·x)."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, x):
        z = (x * self.w).flatten(1).sum(1, keepdim=True)
        return torch.cat([z, torch.zeros_like(z)], dim=1)


def _setup():
    # 1-channel 2x2 images, weights [[1, 1], [1, -1]] (the last pixel hurts class 0)
    w = torch.tensor([[[[1.0, 1.0], [1.0, -1.0]]]])
    clf = cnnlens.Classifier(Linear(w).eval(), class_names=["a", "b"])
    x = torch.tensor([
        [[[1.0, 0.5], [0.0, 1.0]]],
        [[[0.2, 0.2], [0.2, 0.2]]],
        [[[1.0, 1.0], [1.0, 1.0]]],
    ])
    maps = torch.tensor([
        [[4.0, 2.0], [0.0, 1.0]],   # S = [1, .5, 0, .25]
        [[0.0, 1.0], [2.0, 3.0]],   # S = [0, 1/3, 2/3, 1]
        [[5.0, 5.0], [5.0, 5.0]],   # constant -> S = 0
    ])
    return clf, x, maps


def _sig(z):
    return 1.0 / (1.0 + torch.exp(-torch.tensor(z, dtype=torch.float64)))


def test_ad_ai_soft_hand_computed():
    clf, x, maps = _setup()
    ad, ai = average_drop_increase(clf, x, maps, targets=0, mode="soft")
    # Y: z = w.x;  O: z = w.(x*S)
    y = [_sig(1 + .5 + 0 - 1), _sig(.2 + .2 + .2 - .2), _sig(1 + 1 + 1 - 1)]
    o = [_sig(1 * 1 + .5 * .5 + 0 - 1 * .25), _sig(0 + .2 / 3 + .4 / 3 - .2), _sig(0.0)]
    exp_ad = torch.stack([torch.clamp(yy - oo, min=0) / yy for yy, oo in zip(y, o)])
    exp_ai = torch.tensor([float(oo > yy) for yy, oo in zip(y, o)], dtype=torch.float64)
    torch.testing.assert_close(ad, exp_ad, atol=1e-6, rtol=0)
    torch.testing.assert_close(ai, exp_ai)
    assert ai.tolist() == [1.0, 0.0, 0.0]
    # clip=False gives the signed drop
    ad_signed, _ = average_drop_increase(clf, x, maps, targets=0, mode="soft", clip=False)
    assert ad_signed[0] < 0
    torch.testing.assert_close(ad_signed[0], (y[0] - o[0]) / y[0], atol=1e-6, rtol=0)


def test_ad_ai_keep_hand_computed():
    clf, x, maps = _setup()
    # keep=0.5 -> the top 2 of 4 pixels
    ad, ai = average_drop_increase(clf, x, maps, targets=0, mode="keep", keep=0.5)
    y = [_sig(0.5), _sig(0.4), _sig(2.0)]
    o0 = _sig(1.0 + 0.5)  # keeps pixels (0,0), (0,1)
    o1 = _sig(0.2 - 0.2)  # keeps pixels (1,1), (1,0)
    # image 2: constant map -> ties broken by the seeded permutation: any 2 pixels
    expected0 = torch.clamp(y[0] - o0, min=0) / y[0]
    expected1 = torch.clamp(y[1] - o1, min=0) / y[1]
    torch.testing.assert_close(ad[:2], torch.stack([expected0, expected1]), atol=1e-6, rtol=0)
    assert ai[:2].tolist() == [1.0, 0.0]
    assert 0.0 <= float(ad[2]) <= 1.0


def test_ad_bad_input():
    clf, x, maps = _setup()
    with pytest.raises(CnnlensError, match="3 maps for|maps for"):
        average_drop_increase(clf, x[:2], maps)
    with pytest.raises(CnnlensError, match="out of range"):
        average_drop_increase(clf, x, maps, targets=5)
    with pytest.raises(CnnlensError, match="mode"):
        average_drop_increase(clf, x, maps, mode="hard")
    with pytest.raises(CnnlensError, match="keep"):
        average_drop_increase(clf, x, maps, mode="keep", keep=1.5)
    with pytest.raises(CnnlensError, match="larger than the images"):
        average_drop_increase(clf, x, torch.rand(3, 4, 4))


def test_insertion_game_p1_equals_unmodified_accuracy():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    clf = cnnlens.Classifier(net)
    x = torch.rand(12, 1, 10, 10)
    labels = torch.randint(0, 3, (12,))
    r = insertion_game(clf, x, torch.rand(12, 10, 10), labels)
    acc0 = float((clf.predict(x).cpu() == labels).double().mean())
    assert r.measure == "accuracy"
    assert r.check_passed is True
    assert float(r.accuracy[-1]) == pytest.approx(acc0)
    assert r.unmodified == pytest.approx(acc0)
    assert r.kept_pixels.tolist()[:3] == [1, 2, 5]
    un = insertion_game(clf, x, torch.rand(12, 10, 10), labels=torch.full((12,), -1), fractions=(0.1, 1.0))
    assert un.measure == "agreement" and float(un.accuracy[-1]) == 1.0


def test_insertion_game_known_model():
    # a model that says class 0 iff the top-left pixel is bright: a map that ranks that pixel
    # first keeps the prediction at every p; a map that ranks it last loses it until p = 1
    class TopLeft(nn.Module):
        def forward(self, x):
            z = x[:, 0, 0, 0:1] - 0.5
            return torch.cat([z, -z], dim=1)

    clf = cnnlens.Classifier(TopLeft().eval())
    x = torch.full((2, 1, 10, 10), 0.9)
    good = torch.zeros(2, 10, 10)
    good[:, 0, 0] = 1.0
    r = insertion_game(clf, x, good, labels=[0, 0], fractions=(0.01, 0.5, 1.0))
    assert r.accuracy.tolist() == [1.0, 1.0, 1.0]
    r = insertion_game(clf, x, -good, labels=[0, 0], fractions=(0.01, 0.5, 1.0))
    assert r.accuracy.tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(CnnlensError, match="fractions"):
        insertion_game(clf, x, good, labels=[0, 0], fractions=(0.0,))
    with pytest.raises(CnnlensError, match="mixes"):
        insertion_game(clf, x, good, labels=[0, -1])
