"""Shared helpers of the attribution tests (models, snapshots, oracle wrappers)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

import cnnlens

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def resnet18() -> nn.Module:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18().eval()


class Wrapped(nn.Module):
    """The Classifier as a plain module on pixel-space input (what the peer libraries call)."""

    def __init__(self, clf: cnnlens.Classifier) -> None:
        super().__init__()
        self.net = clf.model
        self._clf = clf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._clf.logits(x)


def snapshot(model: nn.Module) -> dict:
    """Everything a call must leave unchanged: values, flags, hooks, grads, mode."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
        "grads": {k: p.grad for k, p in model.named_parameters()},
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                     + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules()),
        "training": {k: m.training for k, m in model.named_modules()},
        "modules": [type(m) for m in model.modules()],
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["requires_grad"] == before["requires_grad"]
    assert all(g is None for g in after["grads"].values())
    assert after["hooks"] == before["hooks"] == 0
    assert after["training"] == before["training"]
    assert after["modules"] == before["modules"]
    for k, v in before["state"].items():
        assert torch.equal(after["state"][k], v), k


def captum_input_attribution(cls, clf: cnnlens.Classifier, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """captum's pixel attribution ``cls`` (``Saliency``, ``GuidedBackprop``, …) of the Classifier."""
    return cls(Wrapped(clf)).attribute(x.clone().requires_grad_(True), target=targets.tolist()).detach()


def captum_gradcam(clf: cnnlens.Classifier, layer_module: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """captum's ``LayerGradCam`` (ReLU on) at ``layer_module``, bilinearly upsampled to the input size."""
    from captum.attr import LayerAttribution, LayerGradCam

    attr = LayerGradCam(Wrapped(clf), layer_module).attribute(x, target=targets.tolist(), relu_attributions=True)
    return LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), "bilinear").squeeze(1).detach()


def grad_cam_lib(cls, clf: cnnlens.Classifier, layer_module: nn.Module, x: torch.Tensor, targets: torch.Tensor):
    """pytorch-grad-cam's ``cls`` (``GradCAMPlusPlus``, ``ScoreCAM``, …) at ``layer_module``: min-max
    normalised numpy maps at the input size."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with cls(model=Wrapped(clf), target_layers=[layer_module]) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])


def zennit_lrp(model: nn.Module, x: torch.Tensor, targets: list[int], canonizer, num_classes: int) -> torch.Tensor:
    """zennit 0.5.1 ``EpsilonAlpha2Beta1Flat`` relevance of a copy of ``model`` at its input ``x``
    with ``canonizer`` (e.g. ``ResNetCanonizer()``, ``VGGCanonizer()``).

    zennit's BatchNorm merge leaves each BatchNorm as ``x / sqrt(1 + eps)`` (running_var set to 1,
    eps kept), not the identity: a factor 1 − 5e-6 per BatchNorm that moves its relevance by
    ~1e-4 relative on ResNet-18 / VGG-BN and 5e-3 on ResNet-50. The copy carries each eps inside
    its running_var (the same function, eps = 0), so the merged BatchNorm is the identity."""
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonAlpha2Beta1Flat

    model = copy.deepcopy(model)  # the canonizers edit the model while they run
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
            m.running_var.add_(m.eps)
            m.eps = 0.0
    comp = EpsilonAlpha2Beta1Flat(canonizers=[canonizer])
    with Gradient(model=model, composite=comp) as attributor:
        _, rel = attributor(x.clone().requires_grad_(), lambda out: torch.eye(num_classes)[targets] * out)
    return rel


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    ref = torch.as_tensor(ref, dtype=torch.float32)
    a = torch.as_tensor(a, dtype=torch.float32)
    return float((a - ref).abs().max() / ref.abs().max().clamp(min=1e-12))


class _FreshBlock(nn.Module):
    """torchvision BasicBlock with one fresh, non-in-place ReLU per call site (or functional)."""

    def __init__(self, block: nn.Module, functional: bool) -> None:
        super().__init__()
        self.conv1, self.bn1 = copy.deepcopy(block.conv1), copy.deepcopy(block.bn1)
        self.conv2, self.bn2 = copy.deepcopy(block.conv2), copy.deepcopy(block.bn2)
        self.downsample = copy.deepcopy(block.downsample)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.functional = functional

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(x))
        out = F.relu(out) if self.functional else self.relu1(out)
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        out = out + identity
        # functional variants: in-place torch.relu_ and the tensor method
        return torch.relu_(out) if self.functional else self.relu2(out)


class FreshResNet(nn.Module):
    """The same network as a torchvision ResNet-18, with one fresh ReLU module per call site
    (``functional=False``) or functional ``F.relu`` / ``torch.relu_`` / ``Tensor.relu`` calls."""

    def __init__(self, net: nn.Module, functional: bool = False) -> None:
        super().__init__()
        self.conv1, self.bn1, self.maxpool = copy.deepcopy(net.conv1), copy.deepcopy(net.bn1), net.maxpool
        self.relu = nn.ReLU()
        self.functional = functional
        for name in ("layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, nn.Sequential(*[_FreshBlock(b, functional) for b in getattr(net, name)]))
        self.avgpool, self.fc = net.avgpool, copy.deepcopy(net.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv1(x))
        x = x.relu() if self.functional else self.relu(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.maxpool(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
