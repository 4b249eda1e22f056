"""Grad-CAM, Grad-CAM++ and Score-CAM: oracles (captum, pytorch-grad-cam), closed forms, real-model
sanity, bad input (SPEC §2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlens
from cnnlens import zoo
from cnnlens.errors import CnnlensError
from cnnlens.explanation import minmax_normalize

from ._helpers import IMAGENET_MEAN, IMAGENET_STD, assert_unchanged, captum_gradcam, grad_cam_lib, rel_err, resnet18, snapshot

pytest.importorskip("captum.attr")  # the oracles (captum_gradcam)
gradcam_lib = pytest.importorskip("pytorch_grad_cam")


@pytest.fixture(scope="module")
def resnet_clf():
    return cnnlens.Classifier(resnet18(), mean=IMAGENET_MEAN, std=IMAGENET_STD)


@pytest.fixture(scope="module")
def mnist():
    return zoo.load_classifier("mnist_cnn"), zoo.load_dataset("mnist").images[:3]


@pytest.mark.parametrize("which", ["resnet", "mnist"])
def test_gradcam_matches_captum(which, resnet_clf, mnist):
    if which == "resnet":
        clf, x, layer = resnet_clf, torch.rand(2, 3, 64, 64), "layer3"
    else:
        (clf, x), layer = mnist, "features.3"  # the last Conv2d (OVERVIEW reads the last conv)
    targets = torch.tensor([3, 7, 1][: x.shape[0]])
    e = cnnlens.explain(clf, x, "gradcam", target=targets, layer=layer)
    ref = captum_gradcam(clf, dict(clf.model.named_modules())[layer], x, targets)
    assert rel_err(e.maps, ref) <= 1e-5
    assert e.params["layer"] == layer and e.layer_maps is not None
    # the Classifier's feature layer is untouched by the per-call layer=
    default = cnnlens.explain(clf, x, "gradcam", target=targets)
    assert default.params["layer"] == clf.feature_layer_name != layer


def test_gradcam_plus_plus_matches_pytorch_grad_cam(resnet_clf):
    x, targets = torch.rand(2, 3, 48, 48), torch.tensor([2, 8])
    for layer in ("layer2", "layer4"):
        e = cnnlens.explain(resnet_clf, x, "gradcam++", target=targets, layer=layer)
        ref = grad_cam_lib(gradcam_lib.GradCAMPlusPlus, resnet_clf, getattr(resnet_clf.model, layer), x, targets)
        # pytorch-grad-cam min-max normalises before and after its (cv2) bilinear resize
        assert float(np.abs(minmax_normalize(e.maps).numpy() - ref).max()) <= 1e-4


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_scorecam_matches_pytorch_grad_cam(resnet_clf):
    x, targets = torch.rand(1, 3, 32, 32), torch.tensor([4])
    e = cnnlens.explain(resnet_clf, x, "scorecam", target=targets, layer="layer2", batch_size=48)
    ref = grad_cam_lib(gradcam_lib.ScoreCAM, resnet_clf, resnet_clf.model.layer2, x, targets)
    assert float(np.abs(minmax_normalize(e.maps).numpy() - ref).max()) <= 1e-4
    assert e.info["forward_passes"] == e.info["channels"] - e.info["constant_channels"] + (e.info["constant_channels"] > 0)


class _HalfDead(nn.Module):
    """A conv net whose feature layer has 4 constant (dead) channels out of 8."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        with torch.no_grad():
            self.conv.weight[4:] = 0
            self.conv.bias[4:] = torch.tensor([0.0, 0.3, -0.2, 1.0])
        self.act = nn.ReLU()
        self.fc = nn.Linear(8 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act(self.conv(x))
        return self.fc(F.max_pool2d(a, 2).flatten(1))


def test_scorecam_constant_channels_share_one_forward_and_match_the_oracle():
    torch.manual_seed(1)
    clf = cnnlens.Classifier(_HalfDead().eval(), feature_layer="act")
    x, targets = torch.rand(3, 1, 16, 16), torch.tensor([0, 1, 2])
    e = cnnlens.explain(clf, x, "scorecam", target=targets, batch_size=5)
    assert e.info == {"forward_passes": 3 * 4 + 1, "constant_channels": 12, "channels": 8}
    assert torch.isfinite(e.maps).all()
    ref = grad_cam_lib(gradcam_lib.ScoreCAM, clf, clf.model.act, x, targets)
    assert float(np.abs(minmax_normalize(e.maps).numpy() - ref).max()) <= 1e-4


def test_scorecam_authors_variant_matches_a_channel_loop(mnist):
    """channel_softmax=False: weight = probability of each masked input, constant channels skipped,
    masks upsampled with F.interpolate(align_corners=False) — the authors' released loop."""
    clf, x = mnist
    x = x[:2]
    e = cnnlens.explain(clf, x, "scorecam", channel_softmax=False, mask_align_corners=False, batch_size=40)
    A = clf.features(x, batch_size=8)
    for n in range(x.shape[0]):
        cam = torch.zeros(A.shape[-2:])
        for k in range(A.shape[1]):
            up = F.interpolate(A[n:n + 1, k:k + 1], size=x.shape[-2:], mode="bilinear", align_corners=False)
            if up.max() == up.min():
                continue
            mask = (up - up.min()) / (up.max() - up.min())
            prob = clf.probs(x[n:n + 1] * mask, batch_size=1)[0, e.targets[n]]
            cam += prob * A[n, k]
        assert torch.allclose(e.layer_maps[n], cam.clamp(min=0), atol=1e-5 * float(cam.abs().max()))


def test_gradcam_equals_cam_on_a_gap_linear_net():
    """Zhou et al.'s CAM: Σ_k W_ck A^k. With GAP then a linear layer, Grad-CAM's weights are
    W_ck / (h·w), so Grad-CAM = CAM / (h·w) exactly (signed, without the ReLU too)."""
    torch.manual_seed(2)
    body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1))
    net = nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4)).eval()
    clf = cnnlens.Classifier(net, feature_layer="0")
    x, targets = torch.rand(3, 3, 12, 12), torch.tensor([0, 3, 1])
    A = clf.features(x, batch_size=3)
    cam = torch.einsum("nk,nkhw->nhw", net[3].weight[targets], A).detach()
    signed = cnnlens.explain(clf, x, "gradcam", target=targets, relu=False)
    assert torch.allclose(signed.layer_maps * 144, cam, atol=1e-5)
    e = cnnlens.explain(clf, x, "gradcam", target=targets)
    assert torch.allclose(e.layer_maps * 144, cam.clamp(min=0), atol=1e-5)
    assert torch.equal(e.maps, e.layer_maps)  # same resolution: no upsampling


def test_mobilenet_deleting_top_gradcam_pixels_hurts_more_than_random():
    """Real-model sanity on the bundled photos. The control deletes 20% of the pixels chosen by a
    random map of the same structure (uniform noise at the layer's 7×7 resolution, upsampled
    like Grad-CAM): deleting scattered single pixels is salt noise, which by itself destroys
    MobileNetV2's predictions (see BENCHMARKS.md), so it is no fair control."""
    clf = zoo.load_classifier("mobilenet_v2_imagenet")
    x = zoo.load_dataset("photos").images
    e = cnnlens.explain(clf, x, "gradcam", batch_size=8)
    n, _, h, w = x.shape
    k = int(0.2 * h * w)

    def delete(maps: torch.Tensor) -> torch.Tensor:
        keep = torch.ones(n, h * w)
        keep.scatter_(1, maps.reshape(n, -1).topk(k, dim=1).indices, 0.0)
        return x * keep.view(n, 1, h, w)

    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(e.layer_maps.shape, generator=gen)
    random_maps = F.interpolate(noise.unsqueeze(1), size=(h, w), mode="bilinear", align_corners=False).squeeze(1)
    probs = clf.probs(torch.cat([x, delete(e.maps), delete(random_maps)]), batch_size=8)
    p = probs.gather(1, e.targets.repeat(3).view(-1, 1)).view(3, n)
    drop_top, drop_random = (p[0] - p[1]).mean(), (p[0] - p[2]).mean()
    assert float(drop_top) > float(drop_random)  # measured: 0.451 vs 0.418 (8 photos)


def test_cam_bad_input_and_model_unchanged(mnist):
    clf, x = mnist
    before = snapshot(clf.model)
    with pytest.raises(CnnlensError, match=r"layer 'nope' not found; layers with 4-D outputs: .*features\.3"):
        cnnlens.explain(clf, x, "gradcam", layer="nope")
    with pytest.raises(CnnlensError, match="4-D"):
        cnnlens.explain(clf, x, "scorecam", layer="classifier.0")
    with pytest.raises(CnnlensError, match="4-D"):  # raises after a forward pass with a hook
        cnnlens.explain(clf, x, "gradcam", layer="classifier.0")
    with pytest.raises(CnnlensError, match="out of range"):
        cnnlens.explain(clf, x, "gradcam++", target=10)
    with pytest.raises(CnnlensError, match="does not read a layer"):
        cnnlens.explain(clf, x, "saliency", layer="features.3")
    for method in ("gradcam", "gradcam++", "scorecam"):
        cnnlens.explain(clf, x, method, layer="features.3", batch_size=50)
    assert_unchanged(clf.model, before)


def test_cam_batch_size_does_not_change_maps(mnist):
    clf, x = mnist
    for method in ("gradcam", "gradcam++", "scorecam"):
        a = cnnlens.explain(clf, x, method, batch_size=1)
        b = cnnlens.explain(clf, x, method, batch_size=64)
        assert torch.allclose(a.maps, b.maps, atol=1e-5 * float(b.maps.abs().max()))


def test_cam_on_a_conv_followed_by_an_inplace_relu():
    """OVERVIEW reads the last Conv2d, which torchvision-style nets follow with ReLU(inplace=True):
    the maps must equal those of the same net with an out-of-place ReLU."""
    torch.manual_seed(4)

    def net(inplace: bool) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(6, 8, 3, padding=1),
                             nn.ReLU(inplace=inplace), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 3)).eval()

    a, b = net(True), net(False)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 12, 12)
    for method in ("gradcam", "gradcam++", "scorecam"):
        ea = cnnlens.explain(cnnlens.Classifier(a), x, method, layer="2", target=1)
        eb = cnnlens.explain(cnnlens.Classifier(b), x, method, layer="2", target=1)
        assert torch.allclose(ea.maps, eb.maps, atol=1e-6), method
