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


def test_guided_relu6_covers_every_relu6_spelling():
    """relu6=True: every ReLU6 spelling back-propagates max(g, 0)·[0 < x < 6]; a hardtanh with
    other bounds, and every ReLU6 without relu6=True, keep their ordinary gradient."""
    x = (torch.linspace(-2, 8, 101)).requires_grad_(True)  # below 0, inside, above 6
    upstream = torch.randn(101, generator=torch.Generator().manual_seed(0))
    inside = (x > 0) & (x < 6)
    guided = upstream.clamp(min=0) * inside
    spellings = [nn.ReLU6(), nn.ReLU6(inplace=True), lambda t: F.relu6(t), lambda t: F.relu6(t * 1, inplace=True),
                 lambda t: F.hardtanh(t, 0.0, 6.0), lambda t: F.hardtanh(t, min_val=0, max_val=6),
                 lambda t: F.hardtanh_(t * 1, 0.0, 6.0), nn.Hardtanh(0.0, 6.0)]
    for f in spellings:
        for relu6, expected in ((True, guided), (False, upstream * inside)):
            with guided_relu(relu6=relu6):
                y = f(x * 1 if isinstance(f, nn.ReLU6) and f.inplace else x)
            assert torch.equal(y.detach(), x.detach().clamp(0, 6))
            (g,) = torch.autograd.grad(y, x, upstream)
            assert torch.equal(g, expected)
    with guided_relu(relu6=True):  # hardtanh(-1, 1) is not a ReLU6: ordinary gradient
        y = F.hardtanh(x)
    (g,) = torch.autograd.grad(y, x, upstream)
    assert torch.equal(g, upstream * ((x > -1) & (x < 1)))


def test_guided_backprop_relu6_closed_form_and_default():
    """A two-layer ReLU6 net y = w2 · relu6(W1 x): guided with relu6=True the input gradient is
    W1ᵀ (max(w2, 0) · [0 < W1 x < 6]); by default (captum's convention) it is the plain gradient
    W1ᵀ (w2 · [0 < W1 x < 6]), i.e. the saliency map."""
    g = torch.Generator().manual_seed(1)
    lin1, lin2 = nn.Linear(12, 20, bias=False), nn.Linear(20, 2, bias=False)
    with torch.no_grad():
        lin1.weight.copy_(torch.randn(20, 12, generator=g) * 3)
        lin2.weight.copy_(torch.randn(2, 20, generator=g))
    net = nn.Sequential(nn.Flatten(), lin1, nn.ReLU6(), lin2).eval()
    clf = cnnlens.Classifier(net)
    x = torch.rand(3, 1, 3, 4, generator=g)
    h = x.flatten(1) @ lin1.weight.T
    inside = ((h > 0) & (h < 6)).float()
    w2 = lin2.weight[1]
    assert 0 < inside.mean() < 1  # both sides of the ReLU6 kinks are exercised
    expect_guided = (inside * w2.clamp(min=0)) @ lin1.weight
    expect_plain = (inside * w2) @ lin1.weight
    gb6 = cnnlens.explain(clf, x, "guided_backprop", target=1, relu6=True)
    gb = cnnlens.explain(clf, x, "guided_backprop", target=1)
    sal = cnnlens.explain(clf, x, "saliency", target=1)
    assert torch.allclose(gb6.attributions.flatten(1), expect_guided, atol=1e-5)
    assert torch.allclose(gb.attributions.flatten(1), expect_plain, atol=1e-5)
    assert torch.equal(gb.attributions, sal.attributions)
    assert gb6.params["relu6"] is True and "relu6" not in gb.params
    with pytest.raises(CnnlensError, match="relu6 must be True or False"):
        cnnlens.explain(clf, x, "guided_backprop", relu6=1)


def test_guided_backprop_relu6_is_a_no_op_without_relu6(mnist):
    clf, x = mnist
    a = cnnlens.explain(clf, x, "guided_backprop")
    b = cnnlens.explain(clf, x, "guided_backprop", relu6=True)
    assert torch.equal(a.attributions, b.attributions)


def test_guided_backprop_relu6_on_mobilenet_v2():
    """The zoo's MobileNetV2 has no plain ReLU: by default Guided Backprop is its saliency map,
    with relu6=True every nn.ReLU6 is guided, so the gradient changes."""
    from cnnlens.errors import AssetMissingError

    try:
        clf = zoo.load_classifier("mobilenet_v2_imagenet")
        x = zoo.load_dataset("photos").images[:1]
    except AssetMissingError as e:
        pytest.skip(str(e))
    sal = cnnlens.explain(clf, x, "saliency")
    gb = cnnlens.explain(clf, x, "guided_backprop")
    gb6 = cnnlens.explain(clf, x, "guided_backprop", relu6=True)
    assert torch.equal(gb.attributions, sal.attributions)
    assert rel_err(gb6.attributions, sal.attributions) > 0.5
