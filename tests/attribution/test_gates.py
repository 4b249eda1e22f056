"""LRP and DeepLIFT through multiplicative gates and normalisation (docs/algorithms.md §2 ``lrp``,
``deeplift``; the "every model" issue, item 1).

- LRP holds a gate (a factor broadcast over the other, a quotient's divisor, the ``1/σ`` of
  LayerNorm/GroupNorm) constant: its result equals LRP of the same network with the gate's value
  frozen into a constant — the definition of Ali et al. 2022 / Achtibat et al. 2024, checked here
  against that construction.
- DeepLIFT's product rule is exact: the closed form of a two-branch product and completeness on
  EfficientNet-B0, MobileNetV3, RegNetY and ConvNeXt-T.
- With every bias zero, LRP-ε conserves relevance through those four networks (float64, ε → 1e-12);
  with biases the deviation is the relevance the biases absorb (reported, not hidden).
"""
from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlens import Classifier, explain
from cnnlens.attribution.graph import KIND_PRODUCT, record
from tests.attribution._helpers import assert_unchanged, snapshot

torchvision = pytest.importorskip("torchvision")

# the default suite runs the two cheapest (SE + hard-swish; LayerNorm + GELU); all four with
# CNNLENS_FULL_MATRIX=1 (make test-architectures)
_FULL = [pytest.mark.architectures,
         pytest.mark.skipif(not os.environ.get("CNNLENS_FULL_MATRIX"), reason="part of the full matrix: make test-architectures")]
GATED = ("mobilenet_v3_small", "convnext_tiny", pytest.param("efficientnet_b0", marks=_FULL),
         pytest.param("regnet_y_400mf", marks=_FULL))


class SE(nn.Module):
    """Squeeze-excitation; ``frozen`` replaces the gate by a stored constant (the LRP reference)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, 2, 1), nn.Conv2d(2, c, 1)
        self.frozen: torch.Tensor | None = None

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.gate(x) if self.frozen is None else self.frozen)


class LN(nn.Module):
    """Channel LayerNorm (ConvNeXt's LayerNorm2d); ``frozen`` holds σ constant (the LRP reference)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c)
        self.frozen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        if self.frozen is None:
            x = self.norm(x)
        else:  # (x − mean(x)) · (1/σ as a constant) · γ + β
            x = (x - x.mean(-1, keepdim=True)) * self.frozen * self.norm.weight + self.norm.bias
        return x.permute(0, 3, 1, 2)


class GatedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.se, self.ln = nn.Conv2d(3, 6, 3), SE(6), LN(6)
        self.conv2, self.fc = nn.Conv2d(6, 4, 3), nn.Linear(4, 3)
        with torch.no_grad():
            self.ln.norm.weight.uniform_(0.5, 1.5)
            self.ln.norm.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(self.se(F.silu(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(F.gelu(self.conv2(h)), 1).flatten(1))


def _freeze(net: GatedNet, x: torch.Tensor) -> None:
    with torch.no_grad():
        a = F.silu(net.conv1(x))
        net.se.frozen = net.se.gate(a)
        h = (a * net.se.frozen).permute(0, 2, 3, 1)
        net.ln.frozen = torch.rsqrt(h.var(-1, unbiased=False, keepdim=True) + net.ln.norm.eps)


@pytest.mark.parametrize("composite", ["epsilon", "epsilon_alpha2_beta1_flat"])
def test_lrp_holds_gates_and_sigma_constant(composite: str) -> None:
    net = GatedNet().eval()
    x = torch.rand(1, 3, 10, 10)
    before = snapshot(net)
    got = explain(Classifier(net), x, "lrp", composite=composite)
    assert_unchanged(net, before)
    _freeze(net, x)
    want = explain(Classifier(net), x, "lrp", composite=composite)
    torch.testing.assert_close(got.attributions, want.attributions, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got.info["conservation"]["explained"], want.info["conservation"]["explained"])


def test_layer_and_group_norm_are_recorded_step_by_step() -> None:
    x = torch.randn(2, 6, 5, 5)
    ln, gn = nn.LayerNorm([5, 5]).eval(), nn.GroupNorm(3, 6).eval()
    with torch.no_grad():
        for m in (ln, gn):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-1, 1)
    for m in (ln, gn):
        tape = record(m, x)
        torch.testing.assert_close(tape.values[tape.output], m(x), rtol=1e-5, atol=1e-5)
        assert sum(op.kind == KIND_PRODUCT for op in tape.ops) == 2  # c·c and c·(1/σ)


def test_deeplift_product_rule_closed_form() -> None:
    class Product(nn.Module):  # logit = Σ_p (u·x_p)(v·x_p): a product of two input-dependent branches
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 1, 1, bias=False), nn.Conv2d(1, 1, 1, bias=False)
            with torch.no_grad():
                self.a.weight.fill_(2.0)
                self.b.weight.fill_(-0.5)

        def forward(self, x):
            return torch.cat([(self.a(x) * self.b(x)).sum((1, 2, 3))[:, None], x.sum((1, 2, 3))[:, None]], 1)

    x = torch.rand(2, 1, 4, 4)
    ref = torch.full_like(x, 0.25)
    e = explain(Classifier(Product()), x, "deeplift", target=0, fill=ref)
    a, a_ref, b, b_ref = 2 * x, 2 * ref, -0.5 * x, -0.5 * ref
    want = (x - ref) * (2.0 * (b + b_ref) / 2 + (-0.5) * (a + a_ref) / 2)  # Δx·(u·b̄ + v·ā)
    torch.testing.assert_close(e.attributions, want, rtol=1e-5, atol=1e-6)
    assert e.info["conservation"]["max_abs_error"] < 1e-5


def test_deeplift_quotient_rule_is_complete() -> None:
    class Normalised(nn.Module):  # a hand-written normalisation: x / (mean|x| + 1)
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.conv, self.fc = nn.Conv2d(1, 3, 3), nn.Linear(3, 2)

        def forward(self, x):
            h = self.conv(x)
            h = h / (h.abs().mean((1, 2, 3), keepdim=True) + 1.0)
            return self.fc(torch.tanh(h).mean((2, 3)))

    x = torch.rand(3, 1, 8, 8)
    e = explain(Classifier(Normalised().eval()), x, "deeplift", target=1)
    c = e.info["conservation"]
    assert c["max_abs_error"] <= 1e-5 * max(abs(v) for v in c["delta_f"]) + 1e-7


def _calibrated(name: str, images: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)(num_classes=5)
    net.train()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = None  # a cumulative average over the calibration pass
        net(images)
    return net.eval()


def _without_biases(net: nn.Module) -> nn.Module:
    net = copy.deepcopy(net)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):  # keep the scale: var ← E[x²], mean ← 0
                m.running_var.add_(m.running_mean**2)
                m.running_mean.zero_()
            bias = getattr(m, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.zero_()
    return net


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    from skimage import data

    imgs = [torch.tensor(getattr(data, n)()).permute(2, 0, 1).float()[None] / 255 for n in ("astronaut", "coffee", "chelsea")]
    return torch.cat([F.interpolate(i[:, :3], size=(32, 32), mode="bilinear", antialias=True) for i in imgs])


@pytest.fixture(scope="module", params=GATED)
def gated(request, photos: torch.Tensor) -> tuple[str, nn.Module]:
    return request.param, _calibrated(request.param, photos)


def test_deeplift_is_complete_on_gated_and_normalised_networks(gated, photos: torch.Tensor) -> None:
    name, net = gated
    # float64: random-weight EfficientNet logits reach 1e7 and its own float32 forward pass is then
    # off by up to 1 % — completeness is a property of the rules, tested without that round-off
    net = copy.deepcopy(net).double()
    before = snapshot(net)
    e = explain(Classifier(net, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]), photos[:1].double(), "deeplift")
    assert_unchanged(net, before)
    c = e.info["conservation"]
    delta = torch.tensor(c["delta_f"]).abs()
    err = (torch.tensor(c["attribution_sum"]) - torch.tensor(c["delta_f"])).abs()
    assert bool((err <= 1e-6 * delta + 1e-9).all()), (name, c)


def test_lrp_conserves_through_gated_networks_without_biases(gated, photos: torch.Tensor) -> None:
    name, net = gated
    # float64 and ε → 1e-12: what is left is the rules' own conservation, not round-off
    e = explain(Classifier(_without_biases(net).double()), photos[:1].double(), "lrp", composite="epsilon",
                epsilon=1e-12, stabilizer=1e-12)
    c = e.info["conservation"]
    explained, total = torch.tensor(c["explained"]), torch.tensor(c["relevance_sum"])
    assert bool(((total - explained).abs() <= 1e-6 * explained.abs()).all()), (name, c)
