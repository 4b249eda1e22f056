"""Every registered method on float64, float16 and bfloat16 models ("every model" issue, item 5):
finite maps, or a one-line :class:`CnnlensError` naming the dtype. DeepLIFT and LRP propagate
through a float32 copy of a half-precision model (their ε guards underflow in float16) and record
``compute_dtype``; RI computes its boundaries and projections in float64 for a float64 model and
in float32 otherwise; the channels-last fast layout is taken for float32/half batches only."""
from __future__ import annotations

import warnings

import pytest
import torch

import cnnlens
from cnnlens import CnnlensError
from tests.test_contracts import MEAN, REFERENCE, STD, N, images, small, tiny_net

DTYPES = [torch.float64, torch.float16, torch.bfloat16]


def make(dtype: torch.dtype) -> cnnlens.Classifier:
    return cnnlens.Classifier(tiny_net().to(dtype), mean=MEAN, std=STD, feature_layer="3")


def cpu_supports(dtype: torch.dtype) -> bool:
    try:
        torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3, dtype=dtype), torch.ones(1, 1, 2, 2, dtype=dtype))
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("method", cnnlens.methods())
def test_every_method_on_every_dtype(method, dtype):
    if not cpu_supports(dtype):
        pytest.skip(f"this CPU build has no {dtype} convolution")
    clf = make(dtype)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = cnnlens.explain(clf, images(N, 2), method, seed=3, batch_size=8, **small(method))
    except CnnlensError as exc:  # a refusal must say which dtype and why, on one line
        msg = str(exc)
        assert "\n" not in msg and str(dtype).replace("torch.", "") in msg, msg
        return
    assert e.maps.shape == (N, 16, 16)
    assert torch.isfinite(e.maps).all(), f"{method} on {dtype}: non-finite maps"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_deeplift_on_half_models_is_finite_and_complete(dtype):
    clf = make(dtype)
    x = images(N, 2)
    e = cnnlens.explain(clf, x, "deeplift")
    assert e.params["compute_dtype"] == "float32"
    assert torch.isfinite(e.attributions).all()
    sums = e.attributions.flatten(1).sum(1).double()
    # exact (float32 round-off) against f(x) − f(x′) of the float32 copy it propagated through
    delta32 = torch.tensor(e.info["conservation"]["delta_f"], dtype=torch.float64)
    torch.testing.assert_close(sums, delta32, rtol=1e-4, atol=1e-4)
    # against the half model's own logits: within its rounding. The logits here are O(1-10):
    # float16 keeps 11 significant bits (unit round-off 2^-11 ≈ 4.9e-4), bfloat16 8 bits
    # (2^-8 ≈ 3.9e-3); the few layers each round once, so a few units of round-off of |f|.
    xh = clf.check_input(x)
    with torch.no_grad():
        zx = clf.logits(xh).double()
        zr = clf.logits(torch.zeros_like(xh)).double()
    rows = torch.arange(N)
    delta = zx[rows, e.targets] - zr[rows, e.targets]
    u = 2.0 ** -11 if dtype == torch.float16 else 2.0 ** -8
    scale = zx.abs().max() + zr.abs().max()
    assert float((sums - delta).abs().max()) <= 8 * u * float(scale), (sums, delta)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_lrp_records_its_compute_dtype(dtype):
    e = cnnlens.explain(make(dtype), images(N, 2), "lrp")
    assert e.params["compute_dtype"] == ("float64" if dtype == torch.float64 else "float32")
    assert torch.isfinite(e.attributions).all()


def test_propagation_methods_keep_float32_models_in_float32():
    clf = cnnlens.Classifier(tiny_net(), mean=MEAN, std=STD, feature_layer="3")
    for method in ("deeplift", "lrp"):
        e = cnnlens.explain(clf, images(N, 2), method)
        assert e.params["compute_dtype"] == "float32" and e.maps.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, *DTYPES], ids=str)
def test_ri_on_every_dtype(dtype):
    clf = make(dtype)
    e = cnnlens.explain(clf, images(N, 2), "ri", reference=REFERENCE, n_boundaries=4)
    assert torch.isfinite(e.maps).all()
    assert e.params["compute_dtype"] == ("float64" if dtype == torch.float64 else "float32")
    ri = cnnlens.RepresentativeInterpreter(clf, REFERENCE, n_boundaries=4)
    want = torch.float64 if dtype == torch.float64 else torch.float32
    assert ri.W_.dtype == ri.b_.dtype == ri.features_.dtype == want
    it = ri.interpret(images(N, 2))
    assert it.maps is not None and torch.isfinite(it.maps).all()


def test_fast_layout_is_plain_for_float64():
    """float64 convolutions run ~2× slower channels-last on CPU (oneDNN has no float64 kernels for it):
    a float64 batch keeps the plain layout, so the scored logits equal the plain pass bit for bit."""
    clf = make(torch.float64)
    x = clf.check_input(images(N, 2))
    seen = []
    h = clf.model[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].is_contiguous()))
    try:
        with torch.no_grad():
            fast = clf.forward_unchecked(x, fast_layout=True)
            plain = clf.forward_unchecked(x)
    finally:
        h.remove()
    assert seen == [True, True]
    assert torch.equal(fast, plain)
