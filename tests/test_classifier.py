"""Classifier (SPEC §1, §9): feature-layer resolution on real torchvision architectures, the
head G with finite-difference gradient checks, hook hygiene, eval mode, input checks."""

import warnings

import pytest
import torch
from torch import nn

from cnnlens import Classifier, CnnlensError
from cnnlens.errors import ModelError
from tests.conftest import cuda, no_hooks_left

tv = pytest.importorskip("torchvision")

ARCHS = {
    "resnet18": ("layer4", lambda: tv.models.resnet18(weights=None)),
    "vgg11": ("avgpool", lambda: tv.models.vgg11(weights=None)),
    "mobilenet_v2": ("features", lambda: tv.models.mobilenet_v2(weights=None)),
}
IMAGENET = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch(request):
    expected, build = ARCHS[request.param]
    torch.manual_seed(0)
    model = build().double()
    _calibrate_batchnorm(model)
    return request.param, expected, model


def _calibrate_batchnorm(model):
    """Random-weight nets with default BN statistics shrink activations to ~1e-9; estimate the
    real statistics on random images so the logits are O(1) and the checks below can fail."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 64, 64, dtype=torch.float64))
    model.eval()


def test_auto_feature_layer_resolves_per_spec(arch):
    name, expected, model = arch
    clf = Classifier(model, **IMAGENET)
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    feats = clf.features(x)
    assert clf.feature_layer_name == expected
    assert feats.dim() == 4 and feats.shape[0] == 2 and feats.shape[2] * feats.shape[3] > 1
    # the same answer from input_shape alone (no data seen yet)
    assert Classifier(model, **IMAGENET, input_shape=(3, 64, 64)).feature_layer_name == expected


def test_head_of_features_equals_logits_and_gradient_matches_finite_differences(arch):
    name, _, model = arch
    clf = Classifier(model, **IMAGENET)
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        logits = clf.logits(x)
        feats = clf.features(x)
        torch.testing.assert_close(clf.head(x, feats), logits, rtol=1e-10, atol=1e-10)
    # G must really depend on t: a different t gives different logits
    with torch.no_grad():
        assert not torch.allclose(clf.head(x, feats * 0.5), logits)
    # directional derivative: autograd vs central differences, in float64
    t = feats.clone().requires_grad_(True)
    out = clf.head(x, t)
    c = out[0].argmax()
    (grad,) = torch.autograd.grad(out[0, c], t)
    assert grad.abs().sum() > 0
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(t.shape, generator=gen, dtype=torch.float64)
    eps = 1e-6
    with torch.no_grad():
        fd = (clf.head(x, feats + eps * v)[0, c] - clf.head(x, feats - eps * v)[0, c]) / (2 * eps)
    assert float(fd) == pytest.approx(float((grad * v).sum()), rel=1e-5, abs=1e-8)
    assert no_hooks_left(model)


def test_forward_with_features_keeps_graph_for_gradcam_style_use(arch):
    _, _, model = arch
    clf = Classifier(model, **IMAGENET)
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    feats, logits = clf.forward_with_features(x)
    (g,) = torch.autograd.grad(logits[0, 3], feats)
    assert g.shape == feats.shape
    assert no_hooks_left(model)


class _Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def _small_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3),
    ).eval()


def test_no_hook_left_after_a_forward_that_raises():
    net = _small_net()
    net.append(_Boom().eval())
    clf = Classifier(net, feature_layer="2")
    x = torch.rand(1, 3, 8, 8)
    # a model error becomes one CnnlensError line naming the batch and torch's first line
    for call in (clf.features, clf.logits, lambda x: clf.head(x, torch.zeros(1, 5, 4, 4))):
        with pytest.raises(CnnlensError, match="model failed on a batch of shape .*RuntimeError: boom"):
            call(x)
        assert no_hooks_left(net)
    with pytest.raises(CnnlensError, match="boom"):
        Classifier(net).features(x)  # auto resolution raises inside its tracing hooks
    assert no_hooks_left(net)


def test_head_with_wrong_shape_is_a_clear_error_and_leaves_no_hook():
    net = _small_net()
    clf = Classifier(net, feature_layer="2")
    with pytest.raises(CnnlensError, match=r"t has shape \(1, 5, 2, 2\) but feature layer '2' outputs \(1, 5, 4, 4\)"):
        clf.head(torch.rand(1, 3, 8, 8), torch.zeros(1, 5, 2, 2))
    assert no_hooks_left(net)


def test_train_mode_model_warns_and_gives_eval_outputs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.Dropout(0.5), nn.BatchNorm1d(32), nn.Linear(32, 3))
    net.train()
    x = torch.rand(4, 3, 4, 4)
    with pytest.warns(UserWarning, match="train mode"):
        clf = Classifier(net, feature_layer=None)
    assert not net.training
    ref = net(x)  # eval mode now
    torch.testing.assert_close(clf.logits(x), ref)
    torch.testing.assert_close(clf.logits(x), clf.logits(x))
    net.train()  # switched back behind our back: warned again and still eval outputs
    with pytest.warns(UserWarning, match="train mode"):
        out = clf.logits(x)
    torch.testing.assert_close(out, ref)


def test_normalisation_is_inside():
    net = _small_net()
    clf = Classifier(net, mean=[0.1, 0.2, 0.3], std=[0.5, 0.25, 2.0])
    x = torch.rand(2, 3, 8, 8)
    m = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)
    s = torch.tensor([0.5, 0.25, 2.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(clf.logits(x), net((x - m) / s))
    torch.testing.assert_close(clf.probs(x), torch.softmax(net((x - m) / s), 1))
    assert clf.predict(x).tolist() == net((x - m) / s).argmax(1).tolist()


def test_tuple_and_dict_outputs():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = _small_net()

        def forward(self, x):
            y = self.body(x)
            return y, {"logits": y * 2}

    net = TwoHeads().eval()
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(CnnlensError, match="returned a tuple of 2.*output=lambda"):
        Classifier(net).logits(x)
    torch.testing.assert_close(Classifier(net, output=lambda o: o[0]).logits(x), net(x)[0])
    torch.testing.assert_close(Classifier(net, output=lambda o: o[1]["logits"]).logits(x), net(x)[0] * 2)


def test_missing_layer_name_lists_candidates():
    model = tv.models.resnet18(weights=None).eval()
    with pytest.raises(CnnlensError) as info:
        Classifier(model, feature_layer="layer5", input_shape=(3, 64, 64))
    msg = str(info.value)
    assert "feature_layer 'layer5' not found; layers with 4-D outputs:" in msg
    for name in ("layer1", "layer2", "layer3", "layer4"):
        assert name in msg
    assert "\n" not in msg
    # without an input shape the message still lists the convolutional blocks
    with pytest.raises(CnnlensError, match="layer4"):
        Classifier(model, feature_layer="layer5")


def test_no_spatial_layer_and_no_feature_layer_errors():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
    with pytest.raises(CnnlensError, match="found no module with a 4-D output"):
        Classifier(mlp).features(torch.rand(1, 3, 2, 2))
    with pytest.raises(CnnlensError, match="feature_layer=None"):
        Classifier(mlp, feature_layer=None).features(torch.rand(1, 3, 2, 2))


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.rand(1, 2, 8, 8), "images have 2 channels but the model expects 3"),
        (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
        ((torch.rand(1, 3, 8, 8) * 255).to(torch.uint8), "float tensor.*x.float\\(\\) / 255"),
        (torch.rand(8, 8), r"shape \(N, C, H, W\)"),
        (torch.rand(1, 3, 8, 8) * 255, "pixel space"),
        ([[0.0]], "torch.Tensor"),
        (torch.rand(0, 3, 8, 8), "empty"),
    ],
)
def test_bad_input_gives_clear_errors(x, message):
    clf = Classifier(_small_net())
    with pytest.raises(CnnlensError, match=message):
        clf.logits(x)


def test_single_image_gets_batch_dim_and_targets():
    clf = Classifier(_small_net(), class_names=["a", "b", "c"])
    x = torch.rand(3, 8, 8)
    assert clf.logits(x).shape == (1, 3)
    xb = torch.rand(4, 3, 8, 8)
    assert clf.targets(xb, None).tolist() == clf.predict(xb).tolist()
    assert clf.targets(xb, 2).tolist() == [2, 2, 2, 2]
    with pytest.raises(CnnlensError, match="out of range"):
        clf.targets(xb, 7)
    with pytest.raises(CnnlensError, match="3 entries for 4 images"):
        clf.targets(xb, [0, 1, 2])


def test_feature_layer_as_module_and_reused_module_error():
    net = _small_net()
    clf = Classifier(net, feature_layer=net[2])
    assert clf.feature_layer_name == "2"
    relu = nn.ReLU()
    reused = nn.Sequential(nn.Conv2d(3, 3, 1), relu, nn.Conv2d(3, 3, 1), relu, nn.Flatten(), nn.LazyLinear(2))
    reused(torch.rand(1, 3, 4, 4))
    reused.eval()
    with pytest.raises(CnnlensError, match="ran 2 times"):
        Classifier(reused, feature_layer="1").features(torch.rand(1, 3, 4, 4))
    with pytest.raises(CnnlensError, match="not a submodule"):
        Classifier(net, feature_layer=nn.ReLU())


def test_chunked_scoring_matches_full_batch():
    clf = Classifier(_small_net())
    x = torch.rand(7, 3, 8, 8)
    torch.testing.assert_close(clf.logits(x, batch_size=3), clf.logits(x).detach())
    torch.testing.assert_close(clf.features(x, batch_size=2), clf.features(x).detach())


@cuda
def test_cuda_device_follows_model():
    net = _small_net().cuda()
    clf = Classifier(net, mean=0.5, std=0.25)
    x = torch.rand(2, 3, 8, 8)  # CPU input is moved to the model's device
    assert clf.device.type == "cuda"
    assert clf.logits(x).device.type == "cuda"
    feats = clf.features(x)
    assert feats.device.type == "cuda"
    torch.testing.assert_close(clf.head(x, feats), clf.logits(x))
    torch.testing.assert_close(clf.logits(x).cpu(), Classifier(net.cpu(), mean=0.5, std=0.25).logits(x), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- core hardening (issue 6)
def _reference_output(model, module, x):
    """The module's own output in a plain forward pass, copied before anything downstream runs."""
    got = []
    h = module.register_forward_hook(lambda m, i, o: got.append(o.detach().clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        h.remove()
    return got[0]


@pytest.mark.parametrize(
    "build, layer",
    [
        (lambda: tv.models.densenet121(weights=None), None),  # auto → 'features', then F.relu(inplace)
        (lambda: tv.models.vgg11(weights=None), "features.18"),  # last conv, then ReLU(inplace=True)
        (lambda: tv.models.resnet18(weights=None), "layer1.0.bn2"),  # then `out += identity`
    ],
    ids=["densenet121-auto", "vgg11-last-conv", "resnet18-block-bn2"],
)
def test_features_and_head_survive_in_place_ops_after_the_layer(build, layer):
    torch.manual_seed(0)
    model = build().eval()
    clf = Classifier(model)
    x = torch.rand(1, 3, 32, 32)
    module, _ = clf.layer_module(layer, x)
    ref = _reference_output(model, module, x)
    assert float(ref.min()) < 0  # the layer output really has negatives a ReLU would remove
    psi = clf.features(x, layer=layer)
    torch.testing.assert_close(psi.detach(), ref, rtol=0, atol=0)
    torch.testing.assert_close(clf.features(x, batch_size=1, layer=layer), ref, rtol=0, atol=0)
    psi2, logits = clf.forward_with_features(x, layer)
    (g,) = torch.autograd.grad(logits[0].sum(), psi2)
    assert g.abs().sum() > 0
    with torch.no_grad():
        torch.testing.assert_close(clf.head(x, ref, layer=layer), model(x))
    # a requires_grad leaf t: no error, t unchanged, gradient flows (RI needs it)
    t = ref.clone().requires_grad_(True)
    before = t.detach().clone()
    out = clf.head(x, t, layer=layer)
    out[0, 0].backward()
    assert torch.equal(t.detach(), before)
    assert t.grad is not None and t.grad.abs().sum() > 0
    assert no_hooks_left(model)


def test_submodule_left_in_train_mode_is_switched_with_a_warning_naming_it():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    clf = Classifier(net)
    net[1].train()
    net[3].train()
    stats = (net[1].running_mean.clone(), net[1].running_var.clone())
    x = torch.rand(4, 3, 8, 8)
    with pytest.warns(UserWarning, match=r"2 module\(s\): 1, 3"):
        out = clf.logits(x)
    assert not any(m.training for m in net.modules())
    torch.testing.assert_close(net[1].running_mean, stats[0], rtol=0, atol=0)
    torch.testing.assert_close(net[1].running_var, stats[1], rtol=0, atol=0)
    # batch-independent, deterministic
    torch.testing.assert_close(clf.logits(x[:1]), out[:1])
    # but never inside training(): the submodules stay in train mode there
    with clf.training():
        net[1].eval()
        clf.logits(x)
        assert not net[1].training and net[3].training
    assert not any(m.training for m in net.modules())


@pytest.mark.parametrize("in_dtype", [torch.float64, torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("model_dtype", [torch.float32, torch.float64])
def test_input_is_cast_to_the_model_dtype(in_dtype, model_dtype):
    net = _small_net().to(model_dtype)
    clf = Classifier(net, mean=[0.5] * 3, std=[0.25] * 3)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    ref = net(((x - 0.5) / 0.25).to(model_dtype))
    out = clf.logits(x.to(in_dtype))
    assert out.dtype == model_dtype
    tol = 1e-2 if in_dtype in (torch.float16, torch.bfloat16) else 1e-5
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    assert clf.features(x.to(in_dtype)).dtype == model_dtype


def test_requires_grad_batch_does_not_warn_and_keeps_the_graph(recwarn):
    clf = Classifier(_small_net())
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    clf.logits(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not [w for w in recwarn.list if "requires_grad" in str(w.message)]


class _Repeat(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3)).repeat(2).unsqueeze(1)  # (2N, 1)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Classifier(_Repeat()).logits(torch.rand(3, 3, 4, 4)), r"logits of shape \(6, 1\) for 3 images"),
        (lambda: Classifier(_small_net(), class_names="abc"), "not a single string"),
        (lambda: Classifier(_small_net(), class_names=[]), "class_names is empty"),
        (lambda: Classifier(_small_net(), class_names=["a", "b"]).logits(torch.rand(1, 3, 8, 8)), "3 outputs but 2 class names"),
        (lambda: Classifier(_small_net()).targets(torch.rand(2, 3, 8, 8), 7), r"\[7, 7\] out of range for a 3-class model"),
        (lambda: Classifier(_small_net()).targets(torch.rand(2, 3, 8, 8), 1.7), "whole class indices"),
        (lambda: Classifier(_small_net()).targets(torch.rand(2, 3, 8, 8), "cat"), "class indices"),
        (lambda: Classifier(_small_net()).targets(torch.rand(2, 3, 8, 8), True), "dtype torch.bool"),
        (lambda: Classifier(_small_net()).features(torch.rand(2, 3, 8, 8), batch_size=0), "batch_size must be a positive integer"),
        (lambda: Classifier(_small_net()).logits(torch.rand(2, 3, 8, 8), batch_size=2.5), "positive integer"),
        (lambda: Classifier(_small_net(), mean=[0.5, 0.5], input_shape=(3, 8, 8)), "2 values but input_shape has 3"),
        (lambda: Classifier(_small_net(), mean=[0.1, 0.2, 0.3, 0.4]), "first convolution '0' takes 3"),
        (lambda: Classifier(_small_net(), mean=[123.7, 116.3, 103.5], std=[58.4, 57.1, 57.4]), "divide them by 255"),
        (lambda: Classifier(_small_net(), std=[58.4, 57.1, 57.4]), "divide them by 255"),
        (lambda: Classifier(_small_net(), input_shape=(3.9, 8, 8)), "whole numbers"),
        (lambda: Classifier(_small_net()).logits(torch.rand(1, 3, 2, 2)), "model failed on a batch of shape"),
        (lambda: Classifier(_small_net()).logits(torch.rand(1, 3, 0, 8)), "empty dimension"),
    ],
)
def test_hardened_argument_checks(make, message):
    with pytest.raises(CnnlensError, match=message):
        make()


def test_targets_accepts_whole_floats_and_knows_the_class_count_without_names():
    clf = Classifier(_small_net())
    x = torch.rand(2, 3, 8, 8)
    assert clf.targets(x, 2.0).tolist() == [2, 2]
    assert clf.targets(x, torch.tensor([0, 2])).tolist() == [0, 2]
    assert clf.num_classes == 3


def test_one_classifier_shared_by_threads_keeps_their_hooks_apart():
    import threading

    torch.manual_seed(0)
    net = _small_net()
    clf = Classifier(net, feature_layer="2")
    x = torch.rand(4, 3, 8, 8)
    with torch.no_grad():
        ref_logits = net(x)
        feats = clf.features(x)
        ref_head = clf.head(x, feats * 0.5)
    errors: list[str] = []

    def head_worker():
        for _ in range(40):
            with torch.no_grad():
                if not torch.allclose(clf.head(x, feats * 0.5), ref_head):
                    errors.append("head")

    def logits_worker():
        for _ in range(40):
            with torch.no_grad():
                if not torch.allclose(clf.logits(x), ref_logits):
                    errors.append("logits")

    threads = [threading.Thread(target=f) for f in (head_worker, logits_worker, head_worker, logits_worker)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert no_hooks_left(net)


def test_batched_scoring_runs_channels_last_with_the_same_logits_and_falls_back_for_view_models():
    """``logits(batch_size=…)`` feeds a multi-channel CPU batch as channels-last (faster oneDNN
    convolutions); the logits equal the plain-layout ones up to round-off. A model that calls
    ``.view`` on its input cannot take that layout: it is scored in the plain layout, correctly."""
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    x = torch.rand(6, 3, 32, 32)
    clf = Classifier(conv, mean=[0.4, 0.5, 0.6], std=[0.2, 0.3, 0.25])
    with torch.no_grad():
        plain = conv((x - torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.3, 0.25]).view(1, 3, 1, 1))
    fast = clf.logits(x, batch_size=4)
    assert torch.allclose(fast, plain, atol=1e-5) and clf._channels_last_ok

    class ViewMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3 * 8 * 8, 3)

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            return self.fc(inp.view(inp.shape[0], -1))

    mlp = ViewMLP().eval()
    xs = torch.rand(5, 3, 8, 8)
    clf2 = Classifier(mlp)
    out = clf2.logits(xs, batch_size=2)
    assert not clf2._channels_last_ok
    with torch.no_grad():
        assert torch.allclose(out, mlp(xs), atol=1e-6)
    # a model that fails for another reason still raises the wrapped error
    with pytest.raises(ModelError):
        Classifier(mlp).logits(torch.rand(2, 3, 9, 9), batch_size=2)


def test_one_channel_batches_are_marked_channels_last_with_the_same_logits():
    """For one channel ``contiguous(memory_format=channels_last)`` keeps the plain strides, so the
    fast path gives such batches explicit ``(H·W, 1, W, 1)`` strides (the layout in which oneDNN's
    convolutions run faster); values, logits and a ``.view``-ing model are unaffected."""
    from cnnlens.classifier import channels_last as _channels_last

    x = torch.rand(5, 1, 9, 7)
    y = _channels_last(x)
    assert y.stride() == (63, 1, 7, 1) and torch.equal(y, x)
    assert y.view(5, -1).shape == (5, 63)  # flattening still works: C = 1
    assert _channels_last(torch.rand(2, 3, 4, 4)).is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
    xs = torch.rand(6, 1, 20, 20)
    clf = Classifier(conv, mean=[0.3], std=[0.2])
    with torch.no_grad():
        plain = conv((xs - 0.3) / 0.2)
    assert torch.allclose(clf.logits(xs, batch_size=4), plain, atol=1e-5) and clf._channels_last_ok

    class ViewMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 2)

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            return self.fc(inp.view(inp.shape[0], -1))

    mlp = ViewMLP().eval()
    xm = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(Classifier(mlp).logits(xm, batch_size=2), mlp(xm), atol=1e-6)


@pytest.mark.parametrize("arch, pick, why", [
    ("vgg11_bn", "avgpool", "a pooling layer"),
    ("squeezenet1_1", "classifier.2", "as many as the model has classes"),
])
def test_auto_feature_layer_warns_on_pooling_or_class_map(arch, pick, why):
    import torchvision

    clf = Classifier(getattr(torchvision.models, arch)().eval())
    x = torch.rand(1, 3, 64, 64)
    with pytest.warns(UserWarning) as rec:
        clf.features(x)
    msgs = [str(w.message) for w in rec if "feature_layer='auto' picked" in str(w.message)]
    assert len(msgs) == 1 and "\n" not in msgs[0]
    assert f"picked {pick!r}" in msgs[0] and why in msgs[0] and "feature_layer='features'" in msgs[0]
    assert clf.feature_layer_name == pick  # the rule is documented, not changed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.features(x)  # once per Classifier


@pytest.mark.parametrize("name", ["mnist_cnn", "mobilenet_v2_imagenet", "onet_face"])
def test_auto_feature_layer_zoo_models_do_not_warn(name):
    from cnnlens import zoo

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = zoo.load_classifier(name)
        assert clf.feature_layer_name


def test_pickled_and_deep_copied_classifier_find_their_layers():
    # the Ray engine ships a Classifier to its workers by pickle (issue 23): an unpickled copy
    # resolves feature_layer="auto" and hooks its own modules (names are keyed by module id)
    import copy
    import pickle

    from cnnlens import explain, zoo

    x = zoo.load_dataset("mnist", split="test").images[:2]
    ref = explain(zoo.load_classifier("mnist_cnn"), x, "gradcam").maps
    for twin in (pickle.loads(pickle.dumps(zoo.load_classifier("mnist_cnn"))), copy.deepcopy(zoo.load_classifier("mnist_cnn"))):
        assert torch.equal(explain(twin, x, "gradcam").maps, ref)
