"""saliency and guided_backprop against captum, and Guided Backprop's ReLU handling (SPEC §2)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlens
from cnnlens import zoo
from cnnlens.attribution.gradient import guided_relu
from cnnlens.errors import CnnlensError

from ._helpers import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FreshResNet,
    assert_unchanged,
    captum_input_attribution,
    rel_err,
    resnet18,
    snapshot,
)

captum_attr = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def resnet_clf():
    return cnnlens.Classifier(resnet18(), mean=IMAGENET_MEAN, std=IMAGENET_STD)


@pytest.fixture(scope="module")
def mnist():
    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist").images[:3]
    return clf, x


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("which", ["resnet", "mnist"])
def test_saliency_and_guided_backprop_match_captum(which, resnet_clf, mnist):
    if which == "resnet":
        clf, x = resnet_clf, torch.rand(2, 3, 64, 64)
    else:
        clf, x = mnist
    targets = torch.tensor([3, 7, 1][: x.shape[0]])
    sal = cnnlens.explain(clf, x, "saliency", target=targets)
    ref = captum_input_attribution(captum_attr.Saliency, clf, x, targets)  # |grad|
    assert rel_err(sal.attributions.abs(), ref) <= 1e-5
    assert torch.allclose(sal.maps, ref.amax(dim=1), rtol=0, atol=1e-5 * float(ref.abs().max()))
    gb = cnnlens.explain(clf, x, "guided_backprop", target=targets)
    ref = captum_input_attribution(captum_attr.GuidedBackprop, clf, x, targets)
    assert rel_err(gb.attributions, ref) <= 1e-5
    assert torch.allclose(gb.maps, ref.abs().amax(dim=1), rtol=0, atol=1e-5 * float(ref.abs().max()))
    # guided backprop really differs from the plain gradient (ReLUs were replaced)
    assert rel_err(gb.attributions, sal.attributions) > 1e-2
    assert gb.params["score"] == "logit" and gb.params["target"] == targets.tolist()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_guided_backprop_reused_inplace_and_functional_relu(resnet_clf):
    """torchvision's ResNet-18 reuses one in-place ReLU per block; the same network with one fresh
    ReLU module per call site, and with functional F.relu / torch.relu_ / Tensor.relu, must give
    the same guided gradient; captum on the fresh-module network is the oracle."""
    net = resnet_clf.model
    x = torch.rand(2, 3, 64, 64)
    fresh = cnnlens.Classifier(FreshResNet(net).eval(), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    func = cnnlens.Classifier(FreshResNet(net, functional=True).eval(), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert torch.allclose(fresh.logits(x), resnet_clf.logits(x), atol=1e-5)
    assert torch.allclose(func.logits(x), resnet_clf.logits(x), atol=1e-5)
    targets = torch.tensor([5, 9])
    ref = captum_input_attribution(captum_attr.GuidedBackprop, fresh, x, targets)
    for clf in (resnet_clf, fresh, func):
        gb = cnnlens.explain(clf, x, "guided_backprop", target=targets)
        assert rel_err(gb.attributions, ref) <= 1e-5


def test_guided_relu_mode_covers_every_relu_spelling():
    x = torch.randn(50, requires_grad=True)
    spellings = [
        lambda t: F.relu(t), lambda t: F.relu(t * 1, inplace=True), lambda t: torch.relu(t),
        lambda t: torch.relu_(t * 1), lambda t: t.relu(), lambda t: (t * 1).relu_(), nn.ReLU(), nn.ReLU(inplace=True),
    ]
    upstream = torch.randn(50)
    expected = upstream.clamp(min=0) * (x > 0)
    for f in spellings:
        with guided_relu():
            y = f(x if not isinstance(f, nn.ReLU) or not f.inplace else x * 1)
        assert torch.equal(y.detach(), x.detach().clamp(min=0))
        (g,) = torch.autograd.grad(y, x, upstream)
        assert torch.equal(g, expected)
    # outside the block relu is ordinary again
    (g,) = torch.autograd.grad(F.relu(x), x, upstream)
    assert torch.equal(g, upstream * (x > 0))


def test_batch_size_and_prob_score(mnist):
    clf, x = mnist
    a = cnnlens.explain(clf, x, "saliency", batch_size=1)
    b = cnnlens.explain(clf, x, "saliency", batch_size=64)
    assert torch.allclose(a.maps, b.maps, atol=1e-6)
    p = cnnlens.explain(clf, x, "guided_backprop", score="prob")
    assert p.params["score"] == "prob" and not torch.allclose(p.maps, b.maps)
    with pytest.raises(CnnlensError, match="score"):
        cnnlens.explain(clf, x, "saliency", score="softmax")


@pytest.mark.parametrize("method", ["saliency", "guided_backprop"])
def test_model_unchanged_also_when_the_call_raises(method, mnist):
    clf, x = mnist
    before = snapshot(clf.model)
    cnnlens.explain(clf, x, method)
    assert_unchanged(clf.model, before)
    with pytest.raises(CnnlensError):
        cnnlens.explain(clf, x, method, score="nonsense")  # raises after the forward pass
    assert_unchanged(clf.model, before)
    # the guided mode did not leak: plain gradients are plain again
    sal = cnnlens.explain(clf, x, "saliency")
    x2 = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(clf.logits(x2).gather(1, sal.targets.view(-1, 1)).sum(), x2)
    assert torch.allclose(sal.attributions, g)
