"""Every method on every model (the "every model" issue, items 2–4): frozen models, TorchScript
models and the caller's grad mode. Each method works — with the maps of the ordinary call — or
refuses with one line naming the method and why; never a silent fallback or a raw traceback."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnlens
from cnnlens import CnnlensError, zoo
from cnnlens.cli import main

# small budgets for the perturbation methods; RI gets reference images
SMALL = {
    "lime": {"num_samples": 20},
    "rise": {"n_masks": 20},
    "extremal_perturbation": {"iterations": 3, "step": 4, "sigma": 4.0, "max_blur": 4.0},
    "da_pos": {"iterations": 2},
    "da_neg": {"iterations": 2},
}
GRADIENT = ("saliency", "guided_backprop", "gradcam", "gradcam++", "lrp", "deeplift", "extremal_perturbation", "ri",
            "ace")
# methods that need reference images (RI's R, ACE's discovery and random images)
NEEDS_REFERENCE = ("ri", "ace")


@pytest.fixture(scope="module")
def mnist():
    clf = zoo.load_classifier("mnist_cnn")
    images = zoo.load_dataset("mnist").images
    return clf, images[:2], images[2:40]


def _params(method: str, reference: torch.Tensor | None = None) -> dict:
    p = dict(SMALL.get(method, {}))
    if method == "ri":
        p.update(reference=reference, n_boundaries=8)
    if method == "ace":
        p.update(reference=reference, n_segments=(4, 8), n_clusters=4, n_members=10, n_random=4, max_images=8,
                 max_random_images=8)
    return p


def _explain(clf, x, method, reference=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RI's head warnings
        return cnnlens.explain(clf, x, method, seed=0, **_params(method, reference), **kw)


def _frozen(model: nn.Module) -> nn.Module:
    frozen = copy.deepcopy(model)
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


# ------------------------------------------------------------------ 2. frozen models
@pytest.mark.parametrize("method", GRADIENT)
def test_frozen_mnist_cnn_gives_the_unfrozen_maps(mnist, method):
    clf, x, ref = mnist
    frozen = cnnlens.Classifier(_frozen(clf.model), mean=clf.mean, std=clf.std)
    want = _explain(clf, x, method, ref)
    got = _explain(frozen, x, method, ref)
    torch.testing.assert_close(got.maps, want.maps, rtol=0, atol=1e-6)
    assert not any(p.requires_grad for p in frozen.model.parameters())  # the user's flags untouched
    assert all(p.grad is None for p in frozen.model.parameters())


@pytest.mark.parametrize("method", [m for m in GRADIENT if m not in NEEDS_REFERENCE])
def test_frozen_resnet18_gives_the_unfrozen_maps(method):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = tv.models.resnet18(weights=None, num_classes=10).eval()
    x = torch.rand(1, 3, 64, 64)
    frozen = _frozen(net)
    want = _explain(cnnlens.Classifier(net), x, method)
    got = _explain(cnnlens.Classifier(frozen), x, method)
    torch.testing.assert_close(got.maps, want.maps, rtol=0, atol=1e-6)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in net.parameters())


# ------------------------------------------------------------------ 4. grad modes
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
@pytest.mark.parametrize("method", cnnlens.methods())
def test_every_method_under_the_callers_grad_mode(mnist, method, mode):
    clf, x, ref = mnist
    want = _explain(clf, x, method, ref)
    ctx = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
    with ctx:
        xi, ri = x.clone(), ref.clone()  # inference tensors under inference_mode
        got = _explain(clf, xi, method, ri)
    torch.testing.assert_close(got.maps, want.maps, rtol=0, atol=1e-6)
    assert torch.equal(got.targets, want.targets)
    assert not got.maps.is_inference()
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()  # the caller's mode restored


def test_inference_mode_target_tensor_and_model_untouched(mnist):
    clf, x, _ = mnist
    with torch.inference_mode():
        t = torch.tensor([3, 5])
        e = cnnlens.explain(clf, x, "gradcam", target=t)
    assert e.targets.tolist() == [3, 5]
    assert all(p.grad is None for p in clf.model.parameters())


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_representative_interpreter_under_the_callers_grad_mode(mnist, mode):
    """The lower-level API, not only explain(): RI computes its boundaries' gradients itself."""
    clf, x, ref = mnist
    want = cnnlens.RepresentativeInterpreter(clf, ref, n_boundaries=4).interpret(x[:1], heatmaps=True)
    with mode():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = cnnlens.RepresentativeInterpreter(clf, ref.clone(), n_boundaries=4).interpret(x[:1].clone(), heatmaps=True)
    assert all(torch.equal(a, b) for a, b in zip(got.covered, want.covered))
    assert all(torch.equal(a, b) for a, b in zip(got.boundaries, want.boundaries))
    torch.testing.assert_close(got.maps, want.maps)


def test_a_tensor_in_a_bad_option_is_named_in_one_line(mnist):
    clf, x, ref = mnist
    ri = cnnlens.RepresentativeInterpreter(clf, ref, n_boundaries=4)
    with pytest.raises(CnnlensError) as err:
        ri.evaluate_reuse(x, x)  # seeds given an image batch
    assert "\n" not in str(err.value) and "tensor of shape (2, 1, 28, 28)" in str(err.value)


# ------------------------------------------------------------------ 3. TorchScript
def _small() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3)).eval()


WORKS_ON_TORCHSCRIPT = ("saliency", "lime", "rise", "extremal_perturbation", "da_pos", "da_neg")
REFUSED_ON_TORCHSCRIPT = {
    "guided_backprop": "the result would silently be the plain gradient",
    "gradcam": "forward hook", "gradcam++": "forward hook", "scorecam": "forward hook", "ri": "forward hook",
    "ace": "forward hook",
    "lrp": "hides the operations", "deeplift": "hides the operations",
}


def test_every_method_is_classified_for_torchscript():
    assert set(cnnlens.methods()) == set(WORKS_ON_TORCHSCRIPT) | set(REFUSED_ON_TORCHSCRIPT)


def _compile(kind: str, net: nn.Module, x: torch.Tensor) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.jit.* is deprecated"
        return torch.jit.script(net) if kind == "script" else torch.jit.trace(net, x)


@pytest.mark.parametrize("kind", ["script", "trace"])
@pytest.mark.parametrize("method", WORKS_ON_TORCHSCRIPT)
def test_torchscript_methods_that_work_give_the_python_maps(kind, method):
    x = torch.rand(2, 3, 8, 8)
    want = _explain(cnnlens.Classifier(_small()), x, method)
    got = _explain(cnnlens.Classifier(_compile(kind, _small(), x)), x, method)
    torch.testing.assert_close(got.maps, want.maps, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["script", "trace", "submodule"])
@pytest.mark.parametrize("method", sorted(REFUSED_ON_TORCHSCRIPT))
def test_torchscript_methods_that_cannot_work_refuse_in_one_line(kind, method):
    x = torch.rand(2, 3, 8, 8)
    if kind == "submodule":  # a plain model holding a scripted part: the layer lies inside it
        net = nn.Sequential(_compile("script", _small(), x)).eval()
        layer = "0"
    else:
        net, layer = _compile(kind, _small(), x), None
    ref = torch.rand(12, 3, 8, 8)
    uses_layer = cnnlens.attribution.method_info(method).uses_layer
    with pytest.raises(CnnlensError) as err:
        _explain(cnnlens.Classifier(net), x, method, ref, layer=layer if uses_layer else None)
    msg = str(err.value)
    assert "\n" not in msg and repr(method) in msg and "TorchScript" in msg
    assert REFUSED_ON_TORCHSCRIPT[method] in msg


def test_cli_explain_on_a_torchscript_file_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "m.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_small()), str(path))
    (tmp_path / "imgs").mkdir()
    Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype("uint8")).save(tmp_path / "imgs" / "a.png")
    argv = ["explain", "--model", str(path), "--images", str(tmp_path / "imgs")]
    rc = main([*argv, "--method", "gradcam", "--out", str(tmp_path / "o1")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "'gradcam'" in err and "TorchScript" in err and "internal error" not in err
    assert main([*argv, "--method", "saliency", "--out", str(tmp_path / "o2")]) == 0
