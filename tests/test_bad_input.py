"""Bad-input suite (issue 6; SPEC §0, §1, §7): every kind of bad input to the Python API, the image
and model file loaders, Explanation files and the ``cnnlens`` command line ends in a
:class:`CnnlensError` naming the problem (exit code 2 and one line on stderr for the CLI) — or
works correctly, checked against an independent computation. None may be silently wrong.

The FOLD-SE-M / rule-program loaders have their own cases in tests/nesy/.
"""
from __future__ import annotations

import io
import struct
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnlens import Classifier, CnnlensError, Explanation, RepresentativeInterpreter, compare, dynamic_ablation, evaluate, fills, seeding
from cnnlens.attribution import explain
from cnnlens.attribution.rise import rise_masks
from cnnlens.cli import main
from cnnlens.data.folder import load_image_folder, load_images, read_image
from cnnlens.data.imageset import resize_center_crop
from cnnlens.errors import ImageReadError
from cnnlens.modelfile import load_model_file
from tests.conftest import no_hooks_left


def _net(k: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, k)).eval()


class _Returns(nn.Module):
    """A model whose forward returns ``fn(x)`` (bad output shapes, types, errors)."""

    def __init__(self, fn):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.fn = fn
        self.eval()

    def forward(self, x):
        return self.fn(self.conv(x))


def _x(n: int = 2, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 3, size, size)


# ------------------------------------------------------------------ Python API
API_CASES = {
    # Classifier construction
    "model-not-a-module": (lambda: Classifier(lambda x: x), "must be a torch.nn.Module"),
    "output-not-callable": (lambda: Classifier(_net(), output="logits"), "output must be a callable"),
    "mean-empty": (lambda: Classifier(_net(), mean=[]), "mean is empty"),
    "mean-a-string": (lambda: Classifier(_net(), mean="0.5"), "mean must be a number"),
    "std-with-a-word": (lambda: Classifier(_net(), std=[0.2, "a", 0.2]), "std must be a number"),
    "mean-nan": (lambda: Classifier(_net(), mean=[0.5, float("nan"), 0.5]), "mean contains NaN"),
    "std-zero": (lambda: Classifier(_net(), std=[0.2, 0.0, 0.2]), "std must be positive"),
    "mean-0-255-scale": (lambda: Classifier(_net(), mean=[123.7, 116.3, 103.5]), "divide them by 255"),
    "std-0-255-scale": (lambda: Classifier(_net(), mean=0.5, std=[58.4, 57.1, 57.4]), "divide them by 255"),
    "mean-std-length-mismatch": (lambda: Classifier(_net(), mean=[0.5] * 3, std=[0.2] * 2), "mean has 3 values but std has 2"),
    "mean-vs-input-shape": (lambda: Classifier(_net(), mean=[0.5] * 2, input_shape=(3, 8, 8)), "2 values but input_shape has 3"),
    "mean-vs-first-conv": (lambda: Classifier(_net(), mean=[0.5] * 4), "first convolution '0' takes 3"),
    "input-shape-two-values": (lambda: Classifier(_net(), input_shape=(8, 8)), r"input_shape must be \(C, H, W\)"),
    "input-shape-float": (lambda: Classifier(_net(), input_shape=(3.9, 8, 8)), "whole numbers"),
    "input-shape-zero": (lambda: Classifier(_net(), input_shape=(3, 0, 8)), "positive sizes"),
    "class-names-a-string": (lambda: Classifier(_net(), class_names="abc"), "not a single string"),
    "class-names-empty": (lambda: Classifier(_net(), class_names=[]), "class_names is empty"),
    "feature-layer-missing": (lambda: Classifier(_net(), feature_layer="9"), "feature_layer '9' not found"),
    "feature-layer-wrong-type": (lambda: Classifier(_net(), feature_layer=3), "feature_layer must be"),
    "feature-layer-foreign-module": (lambda: Classifier(_net(), feature_layer=nn.ReLU()), "not a submodule"),
    # input batches
    "images-a-list": (lambda: Classifier(_net()).logits([[0.0]]), "must be a torch.Tensor"),
    "images-numpy": (lambda: Classifier(_net()).logits(np.zeros((1, 3, 8, 8), np.float32)), "got ndarray"),
    "images-uint8": (lambda: Classifier(_net()).logits((_x() * 255).to(torch.uint8)), r"x.float\(\) / 255"),
    "images-int64": (lambda: Classifier(_net()).logits(torch.zeros(1, 3, 8, 8, dtype=torch.long)), "dtype torch.int64"),
    "images-complex": (lambda: Classifier(_net()).logits(torch.zeros(1, 3, 8, 8, dtype=torch.complex64)), "float tensor"),
    "images-2d": (lambda: Classifier(_net()).logits(torch.rand(8, 8)), r"shape \(N, C, H, W\)"),
    "images-5d": (lambda: Classifier(_net()).logits(torch.rand(1, 1, 3, 8, 8)), r"shape \(N, C, H, W\)"),
    "images-empty-batch": (lambda: Classifier(_net()).logits(torch.rand(0, 3, 8, 8)), "empty batch"),
    "images-zero-height": (lambda: Classifier(_net()).logits(torch.rand(1, 3, 0, 8)), "empty dimension"),
    "images-wrong-channels": (lambda: Classifier(_net()).logits(torch.rand(1, 1, 8, 8)), "1 channels but the model expects 3"),
    "images-nan": (lambda: Classifier(_net()).logits(torch.full((1, 3, 8, 8), float("nan"))), "NaN or inf"),
    "images-inf": (lambda: Classifier(_net()).logits(_x().index_fill(3, torch.tensor([0]), float("inf"))), "NaN or inf"),
    "images-0-255-floats": (lambda: Classifier(_net()).logits(_x() * 255), "divide by 255"),
    "images-already-normalised": (lambda: Classifier(_net()).logits(_x() * 4 - 2), r"pixel space \[0, 1\]"),
    "images-too-small-for-model": (lambda: Classifier(_net()).logits(torch.rand(1, 3, 3, 3)), "model failed on a batch of shape"),
    # model outputs
    "output-tuple-without-selector": (lambda: Classifier(_Returns(lambda z: (z.mean((2, 3)), z))).logits(_x()), r"output=lambda"),
    "output-2N-by-1": (lambda: Classifier(_Returns(lambda z: z.mean((1, 2, 3)).repeat(2)[:, None])).logits(_x()), r"shape \(4, 1\) for 2 images"),
    "output-3d-logits": (lambda: Classifier(_Returns(lambda z: z.mean(3))).logits(_x()), r"expected \(2, classes\)"),
    "output-integer-logits": (lambda: Classifier(_Returns(lambda z: z.mean((2, 3)).long())).logits(_x()), "torch.int64 logits"),
    "class-names-count-mismatch": (lambda: Classifier(_net(), class_names=["a", "b"]).logits(_x()), "3 outputs but 2 class names"),
    "output-selector-raises": (lambda: Classifier(_net(), output=lambda o: o.logits).logits(_x()), "output= selector failed"),
    # targets and knobs
    "target-out-of-range-no-names": (lambda: Classifier(_net()).targets(_x(), 7), r"out of range for a 3-class model"),
    "target-negative": (lambda: Classifier(_net()).targets(_x(), -1), "out of range"),
    "target-fractional": (lambda: Classifier(_net()).targets(_x(), 1.7), "whole class indices"),
    "target-string": (lambda: Classifier(_net()).targets(_x(), "cat"), "class indices"),
    "target-bool": (lambda: Classifier(_net()).targets(_x(), True), "torch.bool"),
    "target-count-mismatch": (lambda: Classifier(_net()).targets(_x(4), [0, 1, 2]), "3 entries for 4 images"),
    "batch-size-zero": (lambda: Classifier(_net()).features(_x(), batch_size=0), "batch_size must be a positive integer, got 0"),
    "batch-size-fractional": (lambda: Classifier(_net()).logits(_x(), batch_size=2.5), "positive integer"),
    "batch-size-string": (lambda: Classifier(_net()).predict(_x(), batch_size="8"), "positive integer"),
    "head-t-wrong-shape": (lambda: Classifier(_net(), feature_layer="2").head(_x(1), torch.zeros(1, 5, 2, 2)), r"t has shape \(1, 5, 2, 2\)"),
    "head-t-not-a-tensor": (lambda: Classifier(_net(), feature_layer="2").head(_x(1), [[0.0]]), "t must be a tensor"),
    "head-t-integer": (lambda: Classifier(_net(), feature_layer="2").head(_x(1), torch.zeros(1, 5, 4, 4, dtype=torch.long)), "floating tensor"),
    "head-t-wrong-batch": (lambda: Classifier(_net(), feature_layer="2").head(_x(2), torch.zeros(3, 5, 4, 4)), "for 2 images"),
    "layer-missing-name": (lambda: Classifier(_net()).features(_x(), layer="conv9"), "layer 'conv9' not found"),
    "layer-wrong-type": (lambda: Classifier(_net()).features(_x(), layer=2), "layer must be None"),
    # Explanation objects
    "explanation-2d-maps": (lambda: Explanation(maps=torch.zeros(4, 4), targets=[0], method="m"), r"\(N, H, W\)"),
    "explanation-targets-count": (lambda: Explanation(maps=torch.zeros(2, 4, 4), targets=[0], method="m"), "1 targets for 2 maps"),
    "overlay-alpha-above-1": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method="m").overlay(alpha=1.5), "alpha must be in"),
    "overlay-images-wrong-size": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method="m").overlay(torch.zeros(1, 3, 5, 5)), "but the maps are"),
    "overlay-images-4-channels": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method="m").overlay(torch.zeros(1, 4, 4, 4)), "1 or 3 channels"),
    # hardening issue, item 8: Explanation values and overlay images
    "explanation-nan-maps": (lambda: Explanation(maps=torch.full((1, 4, 4), float("nan")), targets=[0], method="m"), "maps contains NaN or inf"),
    "explanation-inf-maps": (lambda: Explanation(maps=torch.zeros(1, 4, 4).index_fill(1, torch.tensor([0]), float("inf")), targets=[0], method="m"), "NaN or inf"),
    "explanation-empty": (lambda: Explanation(maps=torch.zeros(0, 4, 4), targets=[], method="m"), "maps is empty"),
    "explanation-float-targets": (lambda: Explanation(maps=torch.zeros(2, 4, 4), targets=[0.5, 1], method="m"), "whole class indices"),
    "explanation-nan-targets": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[float("nan")], method="m"), "whole class indices"),
    "explanation-layer-maps-batch": (lambda: Explanation(maps=torch.zeros(2, 4, 4), targets=[0, 1], method="m", layer_maps=torch.zeros(3, 2, 2)), r"layer_maps must be a \(2, h, w\)"),
    "explanation-layer-maps-2d": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method="m", layer_maps=torch.zeros(2, 2)), "layer_maps must be"),
    "explanation-layer-maps-nan": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method="m", layer_maps=torch.full((1, 2, 2), float("nan"))), "layer_maps contains NaN"),
    "explanation-attributions-shape": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method="m", attributions=torch.zeros(1, 3, 5, 5)), "attributions must be"),
    "overlay-images-0-255": (lambda: Explanation(maps=torch.rand(1, 4, 4), targets=[0], method="m").overlay(torch.rand(1, 3, 4, 4) * 255), "divide by 255"),
    "overlay-images-uint8": (lambda: Explanation(maps=torch.rand(1, 4, 4), targets=[0], method="m").overlay(torch.zeros(1, 3, 4, 4, dtype=torch.uint8)), r"images.float\(\) / 255"),
    "overlay-images-nan": (lambda: Explanation(maps=torch.rand(1, 4, 4), targets=[0], method="m").overlay(torch.full((1, 3, 4, 4), float("nan"))), "NaN or inf"),
    "overlay-alpha-string": (lambda: Explanation(maps=torch.rand(1, 4, 4), targets=[0], method="m").overlay(alpha="0.5"), "alpha must be in"),
    "resize-crop-0-255-floats": (lambda: resize_center_crop(torch.rand(3, 20, 30) * 255, 16), "divide by 255"),
    "resize-crop-int64": (lambda: resize_center_crop(torch.zeros(3, 20, 30, dtype=torch.long), 16), "uint8 .* or float"),
    "resize-crop-size-zero": (lambda: resize_center_crop(torch.rand(3, 20, 30), 0), "size must be a positive integer"),
    # item 9: method options (booleans through validation.flag, floats finite, ranges)
    "gradcam++-eps-nan": (lambda: explain(Classifier(_net()), _x(size=12), "gradcam++", eps=float("nan")), "eps must be a finite number"),
    "gradcam++-eps-negative": (lambda: explain(Classifier(_net()), _x(size=12), "gradcam++", eps=-1), "eps must be a number >= 0"),
    "gradcam-relu-string": (lambda: explain(Classifier(_net()), _x(size=12), "gradcam", relu="no"), "relu must be True or False"),
    "gradcam++-relu-int": (lambda: explain(Classifier(_net()), _x(size=12), "gradcam++", relu=0), "relu must be True or False"),
    "scorecam-channel-softmax-string": (lambda: explain(Classifier(_net()), _x(size=12), "scorecam", channel_softmax="False"), "channel_softmax must be True or False"),
    "scorecam-align-corners-string": (lambda: explain(Classifier(_net()), _x(size=12), "scorecam", mask_align_corners="no"), "mask_align_corners must be"),
    "extremal-jitter-string": (lambda: explain(Classifier(_net()), _x(size=12), "extremal_perturbation", jitter="no"), "jitter must be True or False"),
    "lime-progress-string": (lambda: explain(Classifier(_net()), _x(size=12), "lime", progress="no"), "progress must be True or False"),
    "ri-unit-normals-string": (lambda: explain(Classifier(_net()), _x(size=12), "ri", unit_normals="yes"), "unit_normals must be True or False"),
    "lime-kernel-width-nan": (lambda: explain(Classifier(_net()), _x(size=12), "lime", kernel_width=float("nan")), "kernel_width must be a finite number"),
    "extremal-lr-inf": (lambda: explain(Classifier(_net()), _x(size=12), "extremal_perturbation", lr=float("inf")), "lr must be a finite number"),
    "lrp-stabilizer-zero": (lambda: explain(Classifier(_net()), _x(size=12), "lrp", stabilizer=0), "stabilizer must be a number > 0"),
    "rise-grid-larger-than-image": (lambda: explain(Classifier(_net()), _x(size=16), "rise", grid=1000, n_masks=4), r"grid must be an integer in \[1, 16\]"),
    "rise-masks-grid-larger-than-image": (lambda: rise_masks(2, (16, 16), grid=17), "grid must be an integer in"),
    # second hostile review (issue 22): fields that saved but did not load, fills outside pixel
    # space (silently used), public helpers with raw errors, indices truncated or wrapped
    "explanation-negative-target": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[-1], method="m"), "class indices >= 0"),
    "explanation-method-not-str": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method=3), "method must be a string"),
    "explanation-params-list": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method="m", params=[1]), "params must be a dict"),
    "explanation-save-path-int": (lambda: Explanation(maps=torch.zeros(1, 4, 4), targets=[0], method="m").save(3), "path must be a file path"),
    "class-name-out-of-range": (lambda: Classifier(_net(), class_names=["a", "b", "c"]).class_name(3), r"class index must be an integer in \[0, 2\]"),
    "class-name-fractional": (lambda: Classifier(_net()).class_name(1.5), "class index must be"),
    "deeplift-baseline-0-255": (lambda: explain(Classifier(_net()), _x(size=12), "deeplift", baseline=0.9 * 255), "divide by 255"),
    "fill-colour-0-255": (lambda: fills.fill([124, 116, 104], _x()), "divide by 255"),
    "fill-tensor-nan": (lambda: fills.fill(torch.full((2, 3, 8, 8), float("nan")), _x()), "fill contains NaN"),
    "gaussian-kernel-size-zero": (lambda: fills.gaussian_kernel(0, 1.0), "size must be a positive integer"),
    "gaussian-kernel-size-even": (lambda: fills.gaussian_kernel(4, 1.0), "size must be an odd integer"),
    "gaussian-kernel-sigma-zero": (lambda: fills.gaussian_kernel(5, 0.0), "sigma must be a number > 0"),
    "gaussian-blur-3d": (lambda: fills.gaussian_blur(torch.rand(3, 8, 8), 5, 1.0), r"x must be a non-empty float \(N, C, H, W\)"),
    "box-blur-list": (lambda: fills.box_blur([1.0]), "x must be a non-empty float"),
    "seed-stream-fractional-seed": (lambda: seeding.run_int(1.5, "rise.masks"), "seed must be an integer"),
    "seed-stream-negative-index": (lambda: seeding.image_generator(0, -1, "rise.masks"), "index must be an integer >= 0"),
    "seed-stream-bool": (lambda: seeding.run_int(0, True), "stream must be"),
    "seed-generators-negative-n": (lambda: seeding.image_generators(0, -1, "rise.masks"), "n must be an integer >= 0"),
    "subset-out-of-range": (lambda: _dataset().subset([0, 7]), r"subset index \[7\] out of range for 3 images"),
    "subset-fractional": (lambda: _dataset().subset([0.5]), "whole image indices"),
    "subset-mask-length": (lambda: _dataset().subset([True]), "mask has 1 entries for 3 images"),
    # evaluate / compare / DA / RI (second review): raw TypeErrors after the first method ran,
    # truthy strings, a map scored against another class than it explains
    "compare-method-params-not-a-dict": (lambda: _compare(method_params={"gradcam": 5}), r"method_params\['gradcam'\] must be a dict"),
    "compare-on-result-not-callable": (lambda: _compare(on_result=5), "on_result must be a callable"),
    "compare-unknown-evaluate-option": (lambda: _compare(stepp=3), "has no parameter 'stepp'"),
    "table-value-unknown-row": (lambda: _table().value("nope", "dauc"), "no row 'nope'"),
    "table-value-unknown-metric": (lambda: _table().value("gradcam", "iauc"), "has no metric 'iauc'"),
    "table-from-dict-foreign": (lambda: _table().from_dict({"x": 1}), "not a ComparisonTable dict"),
    "evaluate-target-differs-from-explanation": (
        lambda: _evaluate_other_target(), r"differs from the targets the explanation was computed for"),
    "da-sequential-string": (lambda: dynamic_ablation(Classifier(_net()), _x(1), iterations=2, superpixels=0, sequential="no"), "sequential must be True or False"),
    "da-progress-string": (lambda: dynamic_ablation(Classifier(_net()), _x(1), iterations=2, superpixels=0, progress="no"), "progress must be True or False"),
    "da-proposals-strings": (lambda: dynamic_ablation(Classifier(_net()), _x(1), iterations=1, k=1, superpixels=0, proposals=[["a", "b"]]), r"proposals\[0\] draw 0 must be 3 × k = 3 numbers"),
    "ri-unit-normals-string-ctor": (lambda: RepresentativeInterpreter(Classifier(_net()), _x(4), n_boundaries=2, unit_normals="no"), "unit_normals must be True or False"),
}


def _compare(**kw):
    return compare(Classifier(_net()), _x(2, 12), methods=["gradcam"], metrics=["dauc"], step=50,
                   random_baseline=False, **kw)


def _table():
    return _compare()


def _evaluate_other_target():
    clf = Classifier(_net())
    x = _x(2, 12)
    e = explain(clf, x, "gradcam", target=[0, 0])
    return evaluate(clf, x, e, metrics=["dauc"], step=50, target=[1, 1])


def _dataset():
    from cnnlens.data.imageset import ImageDataset

    return ImageDataset("d", "all", torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 0]), ["a", "b"], ["i0", "i1", "i2"])


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_bad_input_is_a_clear_error(case):
    make, message = API_CASES[case]
    with pytest.raises(CnnlensError, match=message) as info:
        make()
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


def test_subset_takes_an_empty_list_negative_indices_and_masks():
    ds = _dataset()
    assert len(ds.subset([])) == 0  # torch reads [] as float32: still an empty selection
    assert ds.subset([-1]).names == ["i2"] and ds.subset([False, True, True]).names == ["i1", "i2"]


def test_resize_center_crop_takes_uint8_as_read_image_returns_it():
    img = (torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(0)) * 255).round().to(torch.uint8)
    out = resize_center_crop(img, 16)
    assert out.dtype == torch.float32 and 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.equal(out, resize_center_crop(img.float() / 255, 16))  # what every loader does
    assert float(out.mean()) < 0.9  # not every pixel white


def test_numpy_integer_seeds_are_seeds():
    from cnnlens import validation

    for s in (np.int64(3), np.int32(3), np.uint8(3)):
        assert validation.seed(s) == 3 and type(validation.seed(s)) is int
    a = explain(Classifier(_net()), _x(size=12), "rise", n_masks=8, seed=np.int64(3))
    b = explain(Classifier(_net()), _x(size=12), "rise", n_masks=8, seed=3)
    assert torch.equal(a.maps, b.maps)
    with pytest.raises(CnnlensError, match="seed must be an integer"):
        validation.seed(np.float64(3.0))


def test_api_errors_leave_no_hooks():
    net = _net()
    clf = Classifier(net, feature_layer="2")
    for bad in (lambda: clf.head(_x(1), torch.zeros(1, 5, 2, 2)), lambda: clf.features(torch.rand(1, 3, 3, 3)),
                lambda: clf.features(_x(), layer="nope")):
        with pytest.raises(CnnlensError):
            bad()
        assert no_hooks_left(net)


# ------------------------------------------------------------------ accepted inputs that must work correctly
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_are_cast_and_correct(dtype):
    net = _net()
    clf = Classifier(net, mean=0.5, std=0.25)
    img = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8)).astype(np.float64)
    x = torch.from_numpy(img / 255.0)  # the common way to build a batch: float64
    ref = net((x.float() - 0.5) / 0.25).detach()
    tol = 2e-2 if dtype != torch.float64 else 1e-6
    torch.testing.assert_close(clf.logits(x.to(dtype)).detach(), ref, rtol=tol, atol=tol)


def test_half_and_double_models_take_float32_input():
    x = _x()
    for dt in (torch.float64, torch.bfloat16):
        net = _net().to(dt)
        out = Classifier(net).logits(x)
        assert out.dtype == dt
        torch.testing.assert_close(out.float(), net(x.to(dt)).float())


def test_non_contiguous_and_single_images_work():
    net = _net()
    clf = Classifier(net)
    x = _x(2)
    torch.testing.assert_close(clf.logits(x.to(memory_format=torch.channels_last)), net(x))
    torch.testing.assert_close(clf.logits(x.transpose(2, 3)), net(x.transpose(2, 3)))
    torch.testing.assert_close(clf.logits(x[0]), net(x[:1]))


# ------------------------------------------------------------------ image files
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, bit_depth: int, colour: int, raw_rows: bytes) -> bytes:
    """A PNG written from scratch (PIL cannot write 16-bit RGB or bomb headers)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw_rows))
            + _png_chunk(b"IEND", b""))


def _rgb16(values: np.ndarray) -> bytes:
    h, w, _ = values.shape
    rows = b"".join(b"\x00" + values[r].astype(">u2").tobytes() for r in range(h))
    return _png(w, h, 16, 2, rows)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _ok_png(path: Path, size: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


IMAGE_FILE_CASES = {
    "missing-file": (lambda d: d / "nope.png", "image file not found"),
    "a-folder": (lambda d: (d / "sub.png").mkdir() or d / "sub.png", "is a folder"),
    "random-bytes": (lambda d: _write(d / "r.png", np.random.default_rng(0).bytes(300)), "cannot read image"),
    "empty-file": (lambda d: _write(d / "e.jpg", b""), "cannot read image"),
    "text-as-jpeg": (lambda d: _write(d / "t.jpg", b"hello, not an image\n" * 5), "cannot read image"),
    "truncated-png": (lambda d: _write(d / "tr.png", _ok_png(d / "ok.png", 64).read_bytes()[:200]), "cannot read image"),
    "decompression-bomb": (lambda d: _write(d / "bomb.png", _png(100_000, 100_000, 8, 0, b"\x00" * 64)), "decompression bomb"),
    "float-tiff-out-of-range": (lambda d: _float_tiff(d / "f.tif", 255.0), r"float pixels lie in \[0, 255\]"),
    "float-tiff-nan": (lambda d: _float_tiff(d / "n.tif", float("nan")), "NaN or inf"),
    "int32-tiff": (lambda d: _int32_tiff(d / "i.tif"), "32-bit integer pixels"),
}


def _float_tiff(path: Path, scale: float) -> Path:
    a = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8) * scale
    Image.fromarray(a, mode="F").save(path)
    return path


def _int32_tiff(path: Path) -> Path:
    Image.fromarray((np.arange(64).reshape(8, 8) * 100000).astype(np.int32)).save(path)
    return path


@pytest.mark.parametrize("case", sorted(IMAGE_FILE_CASES))
def test_bad_image_files_are_clear_errors_and_skippable(case, tmp_path):
    make, message = IMAGE_FILE_CASES[case]
    bad = make(tmp_path)
    with pytest.raises(ImageReadError, match=message) as info:
        read_image(bad)
    assert str(bad.name) in str(info.value) and "\n" not in str(info.value)
    good = _ok_png(tmp_path / "good.png")
    ds = load_images([good, bad], skip_bad=True)
    assert len(ds) == 1 and ds.skipped == [str(bad)]


def test_more_bad_image_inputs(tmp_path):
    with pytest.raises(CnnlensError, match="mode must be"):
        read_image(_ok_png(tmp_path / "a.png"), mode="CMYK")
    with pytest.raises(CnnlensError, match="different sizes"):
        load_images([_ok_png(tmp_path / "a.png", 12), _ok_png(tmp_path / "b.png", 16)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CnnlensError, match="no class sub-folders"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "only_text" / "cat").mkdir(parents=True)
    (tmp_path / "only_text" / "cat" / "notes.txt").write_text("x")
    with pytest.raises(CnnlensError, match="no readable images"):
        load_image_folder(tmp_path / "only_text")
    with pytest.raises(CnnlensError, match="image folder not found"):
        load_image_folder(tmp_path / "missing")


def test_16_bit_png_grey_and_rgb_are_scaled_by_their_bit_depth(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 65536, (6, 7)).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    t = read_image(tmp_path / "g16.png", mode=None)
    assert t.shape == (1, 6, 7)
    np.testing.assert_allclose(t[0].numpy(), grey / 65535.0, atol=1e-6)
    t3 = read_image(tmp_path / "g16.png", mode="RGB")
    assert t3.shape == (3, 6, 7) and torch.equal(t3[0], t3[2])
    rgb = rng.integers(0, 65536, (5, 4, 3)).astype(np.uint16)
    (tmp_path / "rgb16.png").write_bytes(_rgb16(rgb))
    t = read_image(tmp_path / "rgb16.png")
    # Pillow keeps the high byte of 16-bit RGB: at most 1/255 off, never clipped to white
    np.testing.assert_allclose(t.permute(1, 2, 0).numpy(), rgb / 65535.0, atol=1.0 / 255 + 1e-6)
    Image.fromarray(grey).save(tmp_path / "g16.tif")
    np.testing.assert_allclose(read_image(tmp_path / "g16.tif", mode="L")[0].numpy(), grey / 65535.0, atol=1e-6)


def test_float_tiff_in_range_and_exif_orientation(tmp_path):
    a = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    Image.fromarray(a, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_allclose(read_image(tmp_path / "f.tif", mode="L")[0].numpy(), a, atol=1e-7)
    pic = np.zeros((10, 20, 3), np.uint8)
    pic[:, :10] = 255  # left half white
    im = Image.fromarray(pic)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    im.save(tmp_path / "rot.png", exif=exif.tobytes())
    t = read_image(tmp_path / "rot.png")
    assert t.shape == (3, 20, 10)
    ref = np.asarray(Image.fromarray(pic).transpose(Image.Transpose.ROTATE_270), dtype=np.float32) / 255
    np.testing.assert_allclose(t.permute(1, 2, 0).numpy(), ref)


def test_folder_debris_is_not_a_class_and_not_an_image(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / "tree" / cls).mkdir(parents=True)
        _ok_png(tmp_path / "tree" / cls / "a.png")
    for junk in ("__MACOSX/cat", ".ipynb_checkpoints", "masks"):
        (tmp_path / "tree" / junk).mkdir(parents=True)
        _ok_png(tmp_path / "tree" / junk / "a.png")
    _write(tmp_path / "tree" / "dog" / "._a.png", b"\x00\x05\x16\x07 AppleDouble")
    ds = load_image_folder(tmp_path / "tree")
    assert ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [0, 1]
    # a flat folder with a Jupyter checkpoint folder is still a flat folder on the CLI
    flat = tmp_path / "flat"
    (flat / ".ipynb_checkpoints").mkdir(parents=True)
    _ok_png(flat / "x.png")
    _ok_png(flat / ".ipynb_checkpoints" / "x-checkpoint.png")
    from cnnlens.cli.inputs import prepare_images

    data = prepare_images(Classifier(_net()), folder=flat)
    assert data.names == ["x.png"]


# ------------------------------------------------------------------ Explanation files
def _npz(path: Path, **arrays) -> Path:
    bio = io.BytesIO()
    np.savez(bio, **arrays)
    return _write(path, bio.getvalue())


_GOOD = dict(maps=np.zeros((1, 4, 4), np.float32), targets=np.array([0]), method=np.array("m"),
             params=np.array("{}"))


EXPLANATION_FILE_CASES = {
    "missing": (lambda d: d / "none.npz", "no explanation at"),
    "zero-bytes": (lambda d: _write(d / "z.npz", b""), "cannot load explanation"),
    "text-file": (lambda d: _write(d / "t.npz", b"maps,targets\n1,2\n"), "cannot load explanation"),
    "truncated": (lambda d: _write(d / "tr.npz", _npz(d / "full.npz", **_GOOD).read_bytes()[:150]), "cannot load explanation"),
    "missing-keys": (lambda d: _npz(d / "k.npz", maps=np.zeros((1, 4, 4))), "missing targets, method, params"),
    "pickled-object-array": (lambda d: _npz(d / "p.npz", **{**_GOOD, "params": np.array([{"a": 1}], dtype=object)}), "pickled objects"),
    "params-not-json": (lambda d: _npz(d / "j.npz", **{**_GOOD, "params": np.array("{not json")}), "params is not valid JSON"),
    "params-json-list": (lambda d: _npz(d / "l.npz", **{**_GOOD, "params": np.array("[1, 2]")}), "JSON list, expected an object"),
    "params-deeply-nested": (lambda d: _npz(d / "r.npz", **{**_GOOD, "params": np.array("[" * 200_000 + "]" * 200_000)}), "params is not valid JSON"),
    "maps-wrong-rank": (lambda d: _npz(d / "w.npz", **{**_GOOD, "maps": np.zeros((4, 4))}), "maps has shape"),
    "maps-strings": (lambda d: _npz(d / "s.npz", **{**_GOOD, "maps": np.array([[["a"]]])}), "expected numbers"),
    "targets-floats": (lambda d: _npz(d / "f.npz", **{**_GOOD, "targets": np.array([0.5])}), "expected integers"),
    "targets-count": (lambda d: _npz(d / "c.npz", **{**_GOOD, "targets": np.array([0, 1])}), "2 targets for 1 maps"),
    "npy-not-npz": (lambda d: _write(d / "a.npz", _npy_bytes()), "not an .npz archive"),
}


def _npy_bytes() -> bytes:
    bio = io.BytesIO()
    np.save(bio, np.zeros(3))
    return bio.getvalue()


@pytest.mark.parametrize("case", sorted(EXPLANATION_FILE_CASES))
def test_bad_explanation_files_are_clear_errors(case, tmp_path):
    make, message = EXPLANATION_FILE_CASES[case]
    bad = make(tmp_path)
    with pytest.raises(CnnlensError, match=message) as info:
        Explanation.load(bad)
    assert bad.name in str(info.value) and "\n" not in str(info.value)


def test_explanation_save_errors_and_set_atomicity(tmp_path):
    e = Explanation(maps=torch.rand(2, 4, 4), targets=[0, 1], method="m", params={"a": 1})
    (tmp_path / "file").write_text("x")
    with pytest.raises(CnnlensError, match="not a folder"):
        e.save(tmp_path / "file")
    with pytest.raises(CnnlensError, match="1 names for 2 maps"):
        e.save(tmp_path / "out", names=["a"])
    # a stale staging folder of a killed process is cleaned; no temp files remain
    stale = tmp_path / ".out.cnnlens-partial-999999999-abcd"
    stale.mkdir()
    (stale / "0000_m.png").write_bytes(b"half")
    written = e.save(tmp_path / "out")
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name or "partial" in p.name]
    back = Explanation.load(tmp_path / "out")
    torch.testing.assert_close(back.maps, e.maps)


# ------------------------------------------------------------------ user model files
@pytest.fixture()
def user_models(tmp_path, monkeypatch):
    """An importable user package with factories (a real user's `package.module:factory`)."""
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "cnnlens_bad_input_models.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def tiny(num_classes=3):
            torch.manual_seed(0)
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4, num_classes))

        def broken():
            raise RuntimeError("\\x1b[31mfactory exploded\\x1b[0m\\n\\nlong torch-style details")

        def not_a_model():
            return 42
    """))
    monkeypatch.syspath_prepend(str(pkg))
    sys.modules.pop("cnnlens_bad_input_models", None)
    return pkg


def _tiny_state(num_classes: int = 3):
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, num_classes)).state_dict()


FACTORY = "cnnlens_bad_input_models:tiny"


def _cli_files(d: Path) -> dict[str, Path]:
    files = {"img": _ok_png(d / "img.png", 12)}
    torch.save(_tiny_state(3), d / "w3.pth")
    torch.save(_tiny_state(10), d / "w10.pth")
    torch.save({"conv": "not a tensor"}, d / "wstr.pth")
    files.update(w3=d / "w3.pth", w10=d / "w10.pth", wstr=d / "wstr.pth")
    files["rand"] = _write(d / "rand.pt", np.random.default_rng(0).bytes(500))
    files["empty"] = _write(d / "empty.pt", b"")
    files["badzip"] = _write(d / "badzip.pt", b"PK\x03\x04" + b"\x00" * 100)
    files["text"] = _write(d / "weights.txt", b"conv.weight = 1\n")
    files["latin1"] = _write(d / "names.txt", "caf\xe9\nna\xefve\n".encode("latin-1"))
    files["blank"] = _write(d / "blank.txt", b"\n \n")
    files["names2"] = _write(d / "names2.txt", b"cat\ndog\n")
    (d / "noimg").mkdir()
    (d / "noimg" / "readme.txt").write_text("x")
    files["noimg"] = d / "noimg"
    files["corrupt"] = _write(d / "corrupt.png", b"\x89PNG\r\n\x1a\n broken")
    return files


CLI_CASES = {
    "input-shape-fractional": (["--model", FACTORY, "--weights", "{w3}", "--input-shape", "3.9,12,12", "{img}"], "whole numbers"),
    "input-shape-two-values": (["--model", FACTORY, "--weights", "{w3}", "--input-shape", "3,12", "{img}"], "C,H,W"),
    "mean-not-numbers": (["--model", FACTORY, "--weights", "{w3}", "--mean", "a,b,c", "{img}"], "comma-separated numbers"),
    "mean-0-255": (["--model", FACTORY, "--weights", "{w3}", "--mean", "123.7,116.3,103.5", "{img}"], "divide them by 255"),
    "mean-channel-count": (["--model", FACTORY, "--weights", "{w3}", "--mean", "0.5,0.5", "--input-shape", "3,12,12", "{img}"], "2 values but input_shape has 3"),
    "model-kwargs-not-json": (["--model", FACTORY, "--weights", "{w3}", "--model-kwargs", "num_classes=10", "{img}"], "must be a JSON object"),
    "model-kwargs-list": (["--model", FACTORY, "--weights", "{w3}", "--model-kwargs", "[10]", "{img}"], "got a JSON list"),
    "model-kwargs-for-bundled": (["--model", "mnist_cnn", "--model-kwargs", "{{}}", "{img}"], "--model-kwargs is for user models"),
    "factory-without-weights": (["--model", FACTORY, "{img}"], "needs --weights FILE"),
    "factory-bad-kwarg": (["--model", FACTORY, "--weights", "{w3}", "--model-kwargs", '{{"depth": 3}}', "{img}"], "the factory raised TypeError"),
    "factory-raises": (["--model", "cnnlens_bad_input_models:broken", "--weights", "none", "{img}"], "factory raised RuntimeError: factory exploded"),
    "factory-not-a-model": (["--model", "cnnlens_bad_input_models:not_a_model", "--weights", "none", "{img}"], "returned int, not an nn.Module"),
    "fine-tuned-head": (["--model", FACTORY, "--weights", "{w10}", "{img}"], 'num_classes": 10'),
    "weights-not-tensors": (["--model", FACTORY, "--weights", "{wstr}", "{img}"], "not a state dict of tensors"),
    "weights-text-file": (["--model", FACTORY, "--weights", "{text}", "{img}"], "is not a PyTorch file"),
    "model-random-bytes": (["--model", "{rand}", "{img}"], "is not a PyTorch file"),
    "model-random-bytes-trusted": (["--model", "{rand}", "--trust-pickle", "{img}"], "is not a PyTorch file"),
    "model-empty-file": (["--model", "{empty}", "{img}"], "is empty"),
    "model-damaged-zip": (["--model", "{badzip}", "--trust-pickle", "{img}"], "cannot read model file|damaged zip"),
    "class-names-not-utf8": (["--model", FACTORY, "--weights", "{w3}", "--class-names", "{latin1}", "{img}"], "not UTF-8"),
    "class-names-blank": (["--model", FACTORY, "--weights", "{w3}", "--class-names", "{blank}", "{img}"], "holds no names"),
    "class-names-count": (["--model", FACTORY, "--weights", "{w10}", "--model-kwargs", '{{"num_classes": 10}}', "--class-names", "{names2}", "{img}"], "10 outputs but 2 class names"),
    "device-bogus": (["--model", FACTORY, "--weights", "{w3}", "--device", "tpu9", "{img}"], "not a valid device"),
    "batch-size-zero": (["--model", FACTORY, "--weights", "{w3}", "--batch-size", "0", "{img}"], "--batch-size must be >= 1"),
    "no-image-source": (["--model", FACTORY, "--weights", "{w3}"], "give exactly one of"),
    "images-not-a-folder": (["--model", FACTORY, "--weights", "{w3}", "--images", "{img}"], "not a folder"),
    "images-folder-without-images": (["--model", FACTORY, "--weights", "{w3}", "--images", "{noimg}"], "no image files found"),
    "corrupt-image": (["--model", FACTORY, "--weights", "{w3}", "{corrupt}"], "cannot read image"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_bad_input_exits_2_with_one_line(case, user_models, tmp_path, capsys):
    argv, message = CLI_CASES[case]
    files = _cli_files(tmp_path)
    argv = [a.format(**files) for a in argv]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no train-mode or deprecation warnings on the way
        assert main(["predict", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err, err
    import re

    assert re.search(message, err), err


def test_cli_user_model_forms_work_quietly(user_models, tmp_path, capsys):
    files = _cli_files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fresh factory model is not "in train mode"; no jit FutureWarning
        assert main(["predict", "--model", FACTORY, "--weights", str(files["w10"]), "--model-kwargs",
                     '{"num_classes": 10}', "--top", "1", str(files["img"]), str(files["corrupt"]), "--skip-bad"]) == 0
        out = capsys.readouterr().out
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
        net.load_state_dict(torch.load(files["w10"], weights_only=True))
        net.eval()
        expected = int(net(read_image(files["img"])[None]).argmax())
        assert f"1. {expected} " in out and "skipped unreadable image" in out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.save(torch.jit.script(net), tmp_path / "net.ts")
        assert main(["predict", "--model", str(tmp_path / "net.ts"), "--top", "1", str(files["img"])]) == 0
        assert f"1. {expected} " in capsys.readouterr().out
        # --weights none: the factory's own weights, asked for explicitly
        assert main(["predict", "--model", FACTORY, "--weights", "none", "--top", "1", str(files["img"])]) == 0
        own = load_model_file(FACTORY, allow_no_weights=True)
        assert f"1. {int(own(read_image(files['img'])[None]).argmax())} " in capsys.readouterr().out


def test_load_model_file_api_errors(user_models, tmp_path):
    with pytest.raises(CnnlensError, match="needs --weights"):
        load_model_file(FACTORY)
    m = load_model_file(FACTORY, allow_no_weights=True, model_kwargs={"num_classes": 4})
    assert not m.training and m[-1].out_features == 4
    torch.save(_tiny_state(3), tmp_path / "w.pth")
    with pytest.raises(CnnlensError, match="--model-kwargs go with"):
        load_model_file(str(tmp_path / "w.pth"), model_kwargs={"a": 1})
    # a DataParallel checkpoint ("module." prefix) loads
    torch.save({f"module.{k}": v for k, v in _tiny_state(3).items()}, tmp_path / "dp.pth")
    m = load_model_file(FACTORY, weights=tmp_path / "dp.pth")
    torch.testing.assert_close(m[0].weight, _tiny_state(3)["0.weight"])
