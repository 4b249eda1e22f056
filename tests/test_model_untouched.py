"""The user's model is bit-identical after every public Classifier call (issue 6; SPEC §1, DESIGN
conventions): parameters, buffers (BatchNorm running statistics, num_batches_tracked), hooks,
``requires_grad`` flags and ``.grad`` — on real torchvision architectures (random init, no
downloads). ``training`` flags change only through the documented switch to eval, with its
warning, and through :meth:`Classifier.training` (train mode inside, eval again on exit)."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from cnnlens import Classifier

tv = pytest.importorskip("torchvision")

ARCHS = {
    "resnet18": lambda: tv.models.resnet18(weights=None),
    "vgg11": lambda: tv.models.vgg11(weights=None),
    "densenet121": lambda: tv.models.densenet121(weights=None),
    "mobilenet_v2": lambda: tv.models.mobilenet_v2(weights=None),
}
# a block-internal layer followed by an in-place op, per architecture (per-call layer=)
INNER = {"resnet18": "layer2.0.bn2", "vgg11": "features.8", "densenet121": "features.denseblock2.denselayer1.norm1",
         "mobilenet_v2": "features.3.conv.1"}
IMAGENET = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def _flags(model: nn.Module) -> dict:
    return {
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
        "grad": {k: p.grad for k, p in model.named_parameters()},
        "training": {k: m.training for k, m in model.named_modules()},
        "hooks": {
            k: tuple(len(getattr(m, a, {})) for a in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                                                       "_backward_pre_hooks", "_state_dict_hooks",
                                                       "_load_state_dict_pre_hooks"))
            for k, m in model.named_modules()
        },
        "ids": {k: id(v) for k, v in model.state_dict(keep_vars=True).items()},
        # any in-place write bumps a tensor's version counter; a storage swap changes data_ptr
        "versions": {k: (v._version, v.data_ptr(), v.dtype, v.device, tuple(v.shape))
                     for k, v in model.state_dict(keep_vars=True).items()},
    }


def _snapshot(model: nn.Module) -> dict:
    return {"state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}, **_flags(model)}


def _assert_same(model: nn.Module, before: dict, call: str, values: bool = True) -> None:
    """Identity, version counters and flags after every call; the full bit-for-bit value
    comparison with ``values=True`` (done at the end: it reads every weight)."""
    after = _flags(model)
    assert after["ids"] == before["ids"], f"{call}: parameters/buffers were replaced"
    changed = [k for k in before["versions"] if after["versions"][k] != before["versions"][k]]
    assert not changed, f"{call}: written in place: {changed[:3]}"
    if values:
        live = model.state_dict(keep_vars=True)
        for k, v in before["state"].items():
            assert torch.equal(live[k].detach(), v), f"{call}: {k} changed"
    for key in ("requires_grad", "training", "hooks"):
        assert after[key] == before[key], f"{call}: {key} changed"
    assert all(g is None for g in after["grad"].values()), f"{call}: parameter .grad was written"


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch(request):
    torch.manual_seed(0)
    model = ARCHS[request.param]()
    # the user's own choices must survive: a frozen first layer and hooks of their own
    first = next(model.parameters())
    first.requires_grad_(False)
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(1))
    model.eval()
    return request.param, model


def test_every_public_call_leaves_the_model_bit_identical(arch):
    name, model = arch
    before = _snapshot(model)
    x = torch.rand(2, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about for an eval-mode model, except
        # the documented notice that "auto" picked VGG's avgpool (docs/core.md, tests of layers.py)
        warnings.filterwarnings("ignore", message="feature_layer='auto' picked", category=UserWarning)
        clf = Classifier(model, **IMAGENET, class_names=[f"c{i}" for i in range(1000)])
        _assert_same(model, before, "Classifier()")
        calls = {
            "logits": lambda: clf.logits(x),
            "logits(batch_size)": lambda: clf.logits(x, batch_size=1),
            "probs": lambda: clf.probs(x),
            "predict": lambda: clf.predict(x),
            "targets": lambda: clf.targets(x, None),
            "features": lambda: clf.features(x),
            "features(batch_size)": lambda: clf.features(x, batch_size=1),
            "features(layer=inner)": lambda: clf.features(x, layer=INNER[name]),
            "candidate_layers": lambda: clf.candidate_layers(x),
            "layer_module": lambda: clf.layer_module(INNER[name], x),
            "forward_with_features+grad": lambda: _grad_of_features(clf, x, None),
            "forward_with_features(inner)+grad": lambda: _grad_of_features(clf, x, INNER[name]),
            "head+grad": lambda: _grad_of_head(clf, x, None),
            "head(inner)+grad": lambda: _grad_of_head(clf, x, INNER[name]),
            "input-gradient": lambda: _grad_of_input(clf, x),
            "float64 input": lambda: clf.logits(x.double(), batch_size=2),
        }
        for call, fn in calls.items():
            fn()
            _assert_same(model, before, call, values=False)
    _assert_same(model, before, "all calls")


def _grad_of_features(clf: Classifier, x: torch.Tensor, layer) -> None:
    psi, logits = clf.forward_with_features(x, layer)
    (g,) = torch.autograd.grad(logits[:, 0].sum(), psi)
    assert g.abs().sum() > 0


def _grad_of_head(clf: Classifier, x: torch.Tensor, layer) -> None:
    t = clf.features(x, batch_size=2, layer=layer).requires_grad_(True)
    before = t.detach().clone()
    out = clf.head(x, t, layer=layer)
    (g,) = torch.autograd.grad(out[:, 1].sum(), t)
    assert torch.equal(t.detach(), before) and g.abs().sum() > 0


def _grad_of_input(clf: Classifier, x: torch.Tensor) -> None:
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(clf.logits(xg)[:, 3].sum(), xg)
    assert g.abs().sum() > 0


def test_train_mode_changes_only_training_flags_with_a_warning(arch):
    name, model = arch
    clf = Classifier(model, **IMAGENET)
    bn = next(m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.Dropout)))
    bn.train()  # a submodule left in train mode by the user
    before = _snapshot(model)
    with pytest.warns(UserWarning, match="train mode"):
        clf.logits(torch.rand(2, 3, 64, 64))
    assert not any(m.training for m in model.modules())
    before["training"] = {k: False for k in before["training"]}  # the documented switch to eval
    _assert_same(model, before, "logits after a train-mode submodule")
    # training(): train mode inside, eval on exit; without a forward pass nothing else changes
    with clf.training():
        assert all(m.training for m in model.modules())
    _assert_same(model, before, "training() context")
