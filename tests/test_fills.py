"""One vocabulary for what replaces removed pixels (cnnlens.fills): every name, every alias."""
import pytest
import torch
from torch import nn

import cnnlens
from cnnlens import CnnlensError, fills


def _clf(mean=None):
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    return cnnlens.Classifier(net, mean=mean, std=None if mean is None else [0.2, 0.2, 0.2])


def test_each_name_builds_what_it_says():
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(fills.fill("black", x), torch.zeros_like(x))
    m = fills.fill("mean", x, _clf([0.1, 0.2, 0.3]))
    assert torch.equal(m[1, :, 4, 4], torch.tensor([0.1, 0.2, 0.3]))
    assert torch.equal(fills.fill("mean", x, _clf()), torch.zeros_like(x))  # no normalisation: 0 is black
    im = fills.fill("image_mean", x)
    assert torch.allclose(im[:, :, 3, 5], x.mean(dim=(2, 3)))
    seg = torch.zeros(2, 8, 8, dtype=torch.long)
    seg[:, :, 4:] = 1
    sm = fills.fill("segment_mean", x, segments=seg)
    assert torch.allclose(sm[0, :, 0, 0], x[0, :, :, :4].mean(dim=(1, 2)))
    assert torch.allclose(sm[1, :, 0, 7], x[1, :, :, 4:].mean(dim=(1, 2)))
    assert fills.fill("blur", x).shape == x.shape and not torch.equal(fills.fill("blur", x), fills.fill("blur", x, blur="box"))
    assert torch.equal(fills.fill(0.5, x), torch.full_like(x, 0.5))
    assert torch.equal(fills.fill([0.1, 0.2, 0.3], x)[0, :, 0, 0], torch.tensor([0.1, 0.2, 0.3]))
    t = torch.rand(1, 3, 8, 8)
    assert torch.equal(fills.fill(t, x)[1], t[0])


def test_aliases_and_bad_fills():
    assert fills.resolve(None, default="black", baseline="zero_normalized") == "mean"
    assert fills.resolve("mean", default="black") == "mean"
    with pytest.raises(CnnlensError, match="not both"):
        fills.resolve("black", baseline="mean")
    with pytest.raises(CnnlensError, match="hide_color must be one of"):
        fills.resolve(None, allowed=("black",), hide_color="mean")
    x = torch.rand(1, 3, 4, 4)
    for bad in ([1, 2], float("nan"), torch.rand(1, 2, 3, 3)):
        with pytest.raises(CnnlensError):
            fills.fill(bad, x)
    with pytest.raises(CnnlensError, match="segment_mean"):
        fills.fill("segment_mean", x)


def test_old_keywords_equal_the_new_one():
    clf = _clf([0.5, 0.4, 0.3])
    x = torch.rand(2, 3, 10, 10)
    a = cnnlens.explain(clf, x, "deeplift", baseline="zero_normalized")
    b = cnnlens.explain(clf, x, "deeplift", fill="mean")
    assert torch.equal(a.maps, b.maps) and b.params["fill"] == "mean"
    c = cnnlens.explain(clf, x, "deeplift", fill="image_mean")
    assert not torch.equal(b.maps, c.maps)
    e = cnnlens.explain(clf, x, "saliency")
    r1 = cnnlens.evaluate(clf, x, e, metrics=["dauc"], deletion_substrate="mean")
    r2 = cnnlens.evaluate(clf, x, e, metrics=["dauc"], deletion_fill="mean")
    assert torch.equal(r1["dauc"].per_image, r2["dauc"].per_image)
    seg = torch.arange(4).repeat_interleave(25).view(10, 10).expand(2, 10, 10).contiguous()
    l1 = cnnlens.explain(clf, x, "lime", segments=seg, num_samples=20, hide_color=None)
    l2 = cnnlens.explain(clf, x, "lime", segments=seg, num_samples=20, fill="segment_mean")
    assert torch.equal(l1.maps, l2.maps)
