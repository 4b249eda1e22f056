"""The architecture × method matrix (issue 21, "How it is checked"): torchvision classifiers with
random weights (seeded, ``weights=None``: nothing is downloaded), BatchNorm running statistics
calibrated on the bundled real photos, small inputs and 10 classes; every registered method
with small budgets. A cell either returns a finite Explanation of the right shape or refuses
with a one-line :class:`cnnlens.CnnlensError`; where an oracle applies, the numbers are compared:

- ``saliency``: captum ``Saliency`` (|∂logit/∂x|), every architecture;
- ``guided_backprop``: captum ``GuidedBackprop`` where every ReLU is an ``nn.ReLU`` module
  (captum hooks modules only; GoogLeNet and DenseNet call ``F.relu``, which captum cannot see);
- ``gradcam``: captum ``LayerGradCam`` at the layer the explanation read;
- ``gradcam++``: pytorch-grad-cam ``GradCAMPlusPlus`` at that layer (both min-max normalised),
  except on DenseNet (``Arch.pgc``);
- ``lrp``: zennit 0.5.1 ``EpsilonAlpha2Beta1Flat`` with its ResNet / VGG canonizers (the
  architectures zennit has a canonizer for; its BatchNorm merge made exact, ``zennit_lrp``);
- ``deeplift``: completeness, Σ attribution = f(x) − f(x′) to 1e-4·max|Δf| + 1e-5.

Every cell also checks that the model is bit-identical afterwards (``_helpers.snapshot``).
``run_cell`` records its outcome in ``RESULTS``; ``report`` renders them as markdown
(docs/architectures.md). Which cells the default ``pytest`` run holds: ``SUBSET``; all of them
with ``CNNLENS_FULL_MATRIX=1`` (``make test-architectures``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import cnnlens
from cnnlens import CnnlensError, zoo
from cnnlens.explanation import minmax_normalize
from tests.attribution._helpers import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    assert_unchanged,
    captum_gradcam,
    captum_input_attribution,
    grad_cam_lib,
    rel_err,
    snapshot,
    zennit_lrp,
)

NUM_CLASSES = 10
N_IMAGES = 2  # explained images per cell (Score-CAM: 1, it costs one forward pass per channel)


@dataclasses.dataclass(frozen=True)
class Arch:
    name: str
    size: int = 64  # input side in pixels (the smallest convenient size the network accepts)
    kwargs: tuple = ()  # extra constructor arguments
    zennit: str | None = None  # zennit canonizer for the LRP oracle ("resnet" / "vgg")
    # calls F.relu, which captum's GuidedBackprop cannot see (it hooks nn.ReLU modules): on
    # GoogLeNet / Inception-v3 it returns the plain gradient, on DenseNet it misses the last ReLU
    functional_relu: bool = False
    # the feature layer's output is changed in place afterwards (DenseNet's F.relu(inplace=True)):
    # pytorch-grad-cam's stored activation sees the change (its GradCAM disagrees too, while
    # captum's LayerGradCam and cnnlens agree exactly), so it is no oracle there
    pgc: bool = True


ARCHS = {a.name: a for a in (
    Arch("resnet18", zennit="resnet"),
    Arch("resnet50", zennit="resnet"),
    Arch("vgg11_bn", zennit="vgg"),
    Arch("vgg16_bn", zennit="vgg"),
    Arch("alexnet", zennit="vgg"),  # no BatchNorm: the VGG canonizer is a no-op
    Arch("densenet121", functional_relu=True, pgc=False),
    Arch("googlenet", kwargs=(("aux_logits", False), ("init_weights", True)), functional_relu=True),
    Arch("inception_v3", size=80, kwargs=(("aux_logits", False), ("init_weights", True)), functional_relu=True),
    Arch("squeezenet1_1"),
    Arch("shufflenet_v2_x0_5"),
    Arch("mnasnet0_5"),
    Arch("mobilenet_v2"),
    Arch("mobilenet_v3_small"),
    Arch("efficientnet_b0"),
    Arch("regnet_y_400mf"),
    Arch("convnext_tiny"),
)}

# small budgets (as tests/attribution/test_every_model.py); RI also gets reference images
SMALL: dict[str, dict[str, Any]] = {
    "lime": {"num_samples": 20},
    "rise": {"n_masks": 20},
    "extremal_perturbation": {"iterations": 3, "step": 4, "sigma": 4.0, "max_blur": 4.0},
    "da_pos": {"iterations": 2},
    "da_neg": {"iterations": 2},
    "ri": {"n_boundaries": 8},
    "ace": {"n_segments": (4, 8), "n_clusters": 4, "n_members": 10, "n_random": 4, "max_images": 4,
            "max_random_images": 4},
}

# The default suite's cells: every architecture and every method at least once, the oracles on
# the architectures that stand for a family (plain ReLU / residual / SE gate / LayerNorm), and
# Score-CAM where the feature layer has few channels; measured ≤ 60 s on 2 shared cores.
SUBSET: dict[str, tuple[str, ...]] = {
    "resnet18": ("saliency", "guided_backprop", "gradcam", "gradcam++", "lrp", "deeplift", "lime", "rise",
                 "extremal_perturbation", "da_pos", "da_neg", "ri"),
    "squeezenet1_1": ("scorecam", "gradcam", "deeplift"),
    "mobilenet_v3_small": ("saliency", "gradcam", "lrp", "deeplift", "ri", "ace"),
    "convnext_tiny": ("gradcam", "deeplift"),
    "vgg11_bn": ("lrp",),
    "densenet121": ("gradcam++",),
    "googlenet": ("guided_backprop",),
    "inception_v3": ("saliency",),
    "shufflenet_v2_x0_5": ("rise",),
    "mnasnet0_5": ("lime",),
    "mobilenet_v2": ("deeplift",),
    "efficientnet_b0": ("lrp",),
    "regnet_y_400mf": ("deeplift",),
    "alexnet": ("gradcam",),
    "resnet50": ("saliency",),
    "vgg16_bn": ("da_neg",),
}


def cells(full: bool) -> list[tuple[str, str]]:
    """The (architecture, method) pairs to run, architecture-major (one model built at a time)."""
    methods = cnnlens.methods()
    if full:
        return [(a, m) for a in ARCHS for m in methods]
    return [(a, m) for a in ARCHS for m in methods if m in SUBSET.get(a, ())]


@functools.lru_cache(maxsize=1)
def images(size: int) -> torch.Tensor:
    """The bundled real photos (chelsea, coffee, astronaut, …) resized to ``size``² in [0, 1]."""
    photos = zoo.load_dataset("photos").images
    return F.interpolate(photos, size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)


@dataclasses.dataclass
class Built:
    arch: Arch
    model: nn.Module
    clf: cnnlens.Classifier
    x: torch.Tensor
    reference: torch.Tensor
    before: dict
    build_s: float


@functools.lru_cache(maxsize=1)  # one model in memory at a time (VGG-16-BN is 0.5 GB)
def build(name: str) -> Built:
    """The seeded random-weight network in eval mode, its BatchNorm running statistics the
    cumulative averages over the photos and their mirror images (train-mode forward passes)."""
    import torchvision

    t0 = time.perf_counter()
    arch = ARCHS[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(torchvision.models, name)(weights=None, num_classes=NUM_CLASSES, **dict(arch.kwargs))
    imgs = images(arch.size)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model.train()
    with torch.no_grad():
        for batch in (imgs, imgs.flip(-1)):
            model((batch - mean) / std)
    for m in norms:
        m.momentum = 0.1
    model.eval()
    clf = cnnlens.Classifier(model, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    reference = torch.cat([imgs, imgs.flip(-1)])
    return Built(arch, model, clf, imgs[:N_IMAGES], reference, snapshot(model), time.perf_counter() - t0)


@dataclasses.dataclass
class Cell:
    arch: str
    method: str
    status: str  # "ok" | "refused" | "error"
    reason: str = ""
    oracle: dict[str, float] = dataclasses.field(default_factory=dict)  # name -> error (≤ its bound)
    bounds: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    failure: str = ""  # what failed (shape, NaN, oracle, model changed)


RESULTS: list[Cell] = []


@contextlib.contextmanager
def one_thread():
    """One torch thread inside a cell: 64-pixel inputs gain nothing from a second one, and on a
    shared 2-core machine the busy-waiting second thread made the default subset ~10× slower
    (166 CPU-s against 17)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_cell(arch: str, method: str) -> Cell:
    """Run one cell and record it; the caller asserts on the returned :class:`Cell`."""
    with one_thread():
        return _run_cell(arch, method)


def _run_cell(arch: str, method: str) -> Cell:
    b = build(arch)
    x = b.x[:1] if method == "scorecam" else b.x
    params = dict(SMALL.get(method, {}))
    if method in ("ri", "ace"):
        params["reference"] = b.reference
    cell = Cell(arch, method, "ok")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the documented notices (auto layer, DA no-step, RI head)
            e = cnnlens.explain(b.clf, x, method, seed=0, **params)
    except CnnlensError as err:
        cell.status, cell.reason = "refused", str(err)
    except Exception as err:  # any other exception is a finding: recorded, then the test fails
        cell.status, cell.reason = "error", f"{type(err).__name__}: {err}".splitlines()[0]
    cell.seconds = time.perf_counter() - t0
    try:
        assert_unchanged(b.model, b.before)
    except AssertionError as err:
        cell.failure = f"model changed: {err}"
    if cell.status == "ok" and not cell.failure:
        cell.failure = _check_shape(e, x)
        if not cell.failure:
            _oracles(b, method, x, e, cell)
    RESULTS.append(cell)
    return cell


def _check_shape(e: cnnlens.Explanation, x: torch.Tensor) -> str:
    want = (x.shape[0], *x.shape[-2:])
    if tuple(e.maps.shape) != want:
        return f"maps shape {tuple(e.maps.shape)}, expected {want}"
    if not torch.isfinite(e.maps).all():
        return f"non-finite maps ({int((~torch.isfinite(e.maps)).sum())} values)"
    if e.attributions is not None and not torch.isfinite(e.attributions).all():
        return "non-finite attributions"
    return ""


def _oracles(b: Built, method: str, x: torch.Tensor, e: cnnlens.Explanation, cell: Cell) -> None:
    import captum.attr as ca

    t = e.targets
    try:
        if method == "saliency":
            ref = captum_input_attribution(ca.Saliency, b.clf, x, t)  # |grad|
            cell.oracle["captum Saliency"] = max(rel_err(e.attributions.abs(), ref), rel_err(e.maps, ref.amax(dim=1)))
            cell.bounds["captum Saliency"] = 1e-5
        elif method == "guided_backprop" and not b.arch.functional_relu:
            ref = captum_input_attribution(ca.GuidedBackprop, b.clf, x, t)
            cell.oracle["captum GuidedBackprop"] = max(rel_err(e.attributions, ref), rel_err(e.maps, ref.abs().amax(dim=1)))
            cell.bounds["captum GuidedBackprop"] = 1e-5
        elif method == "gradcam":
            module = dict(b.model.named_modules())[e.params["layer"]]
            cell.oracle["captum LayerGradCam"] = rel_err(e.maps, captum_gradcam(b.clf, module, x, t))
            cell.bounds["captum LayerGradCam"] = 1e-5
        elif method == "gradcam++" and b.arch.pgc:
            from pytorch_grad_cam import GradCAMPlusPlus

            module = dict(b.model.named_modules())[e.params["layer"]]
            ref = grad_cam_lib(GradCAMPlusPlus, b.clf, module, x, t)
            # pytorch-grad-cam min-max normalises before and after its (cv2) bilinear resize; a
            # constant map (a 1×1 layer upsampled, AlexNet at 64 px) is zeros there, while our
            # raw map is constant up to rounding, which min-max normalising would blow up
            ours = e.maps.double()
            spread = (ours.amax((1, 2)) - ours.amin((1, 2))) / ours.abs().amax((1, 2)).clamp(min=1e-12)
            constant = torch.from_numpy(ref.max((1, 2)) - ref.min((1, 2)) == 0)
            err = torch.where(constant, spread, (minmax_normalize(e.maps) - torch.from_numpy(ref)).abs().amax((1, 2)))
            cell.oracle["pytorch-grad-cam GradCAM++"] = float(err.max())
            cell.bounds["pytorch-grad-cam GradCAM++"] = 1e-4
        elif method == "lrp" and b.arch.zennit:
            from zennit.torchvision import ResNetCanonizer, VGGCanonizer

            canon = ResNetCanonizer() if b.arch.zennit == "resnet" else VGGCanonizer()
            # cnnlens passes relevance through the Classifier's mean/std step unchanged, so its
            # pixel relevance is zennit's relevance of the normalised input
            ref = zennit_lrp(b.model, _normalize(x), t.tolist(), canon, NUM_CLASSES)
            cell.oracle["zennit EpsilonAlpha2Beta1Flat"] = rel_err(e.attributions, ref)
            cell.bounds["zennit EpsilonAlpha2Beta1Flat"] = 1e-4
        elif method == "deeplift":
            c = e.info["conservation"]
            scale = max(abs(v) for v in c["delta_f"])
            cell.oracle["completeness"] = float(c["max_abs_error"]) / scale if scale else float(c["max_abs_error"])
            cell.bounds["completeness"] = 1e-4 + 1e-5 / scale if scale else 1e-5
    finally:
        for p in b.model.parameters():  # pytorch-grad-cam calls backward(): not cnnlens's doing
            p.grad = None
    for name, err in cell.oracle.items():
        if not (math.isfinite(err) and err <= cell.bounds[name]):
            cell.failure = f"{name}: error {err:.2e} > {cell.bounds[name]:.0e}"


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


_SHORT = {"captum Saliency": "captum", "captum GuidedBackprop": "captum", "captum LayerGradCam": "captum",
          "pytorch-grad-cam GradCAM++": "pgc", "zennit EpsilonAlpha2Beta1Flat": "zennit", "completeness": "Δ"}


def report(wall_s: float) -> str:
    """The recorded cells as markdown: one row per architecture, one column per method;
    ``wall_s``: the pytest session's wall time."""
    import datetime
    import os
    import platform
    import subprocess

    import captum
    import torchvision
    import zennit

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=os.path.dirname(__file__), check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               cwd=os.path.dirname(__file__), check=False).stdout.strip()
        rev += " (+ uncommitted changes)" if dirty else ""
    except OSError:
        rev = "unknown"
    methods = [m for m in cnnlens.methods() if any(c.method == m for c in RESULTS)]
    archs = [a for a in ARCHS if any(c.arch == a for c in RESULTS)]
    by = {(c.arch, c.method): c for c in RESULTS}
    reasons: list[str] = []
    failures: list[str] = []
    lines = [
        "# Every method on every architecture: the test matrix",
        "",
        "Generated by `make test-architectures MATRIX_REPORT=docs/architectures.md` (the whole matrix of",
        "`tests/architectures/`; the default `pytest` run holds a subset). Random-weight torchvision",
        f"classifiers (seed 0, `weights=None`, {NUM_CLASSES} classes), BatchNorm statistics calibrated on the bundled",
        "photos and their mirror images, ImageNet mean/std in the Classifier, "
        f"{N_IMAGES} photos per cell (Score-CAM: 1) at 64×64",
        "(Inception-v3: 80×80), `seed=0`, small budgets (`matrix.SMALL`). Oracles and bounds: `matrix.py`.",
        "",
        f"- date: {datetime.date.today().isoformat()}; git rev {rev}",
        f"- torch {torch.__version__}, torchvision {torchvision.__version__}, captum {captum.__version__}, "
        f"zennit {getattr(zennit, '__version__', '0.5.1')}, Python {platform.python_version()}",
        f"- 1 torch thread per cell (`one_thread`), {os.cpu_count()} CPU cores (shared with other jobs); "
        f"wall time {_fmt_s(wall_s)} (the method calls alone: {_fmt_s(sum(c.seconds for c in RESULTS))}; "
        "per architecture in the last column)",
        "",
        "Cell: `ok` with the oracle's error (captum: relative max error against captum; pgc: max",
        "difference of min-max normalised maps against pytorch-grad-cam; zennit: relative max error;",
        "Δ: DeepLIFT completeness error / max|Δf|), or `refused` with a footnote naming the reason.",
        "A plain `ok` has no oracle: captum's GuidedBackprop hooks `nn.ReLU` modules only (on GoogLeNet",
        "and Inception-v3, which call `F.relu`, it returns the plain gradient; on DenseNet it misses the",
        "last ReLU); pytorch-grad-cam stores DenseNet's feature-layer output, which DenseNet's",
        "`F.relu(inplace=True)` then changes (its GradCAM disagrees too, while captum's equals ours);",
        "zennit has canonizers for ResNet and VGG only (AlexNet needs none); Score-CAM, LIME, RISE,",
        "Extremal Perturbation, DA and RI are checked for shape, finiteness and the untouched model.",
        "zennit's BatchNorm merge leaves `x / sqrt(1 + eps)` behind, not the identity (1e-4 relative on",
        "ResNet-18/VGG-BN, 5e-3 on ResNet-50); the oracle moves each eps into `running_var` first.",
        "",
        "| architecture | " + " | ".join(f"`{m}`" for m in methods) + " | s |",
        "|---|" + "---|" * len(methods) + "---:|",
    ]
    for a in archs:
        row = []
        for m in methods:
            c = by.get((a, m))
            if c is None:
                row.append("")
                continue
            if c.status == "refused":
                if c.reason not in reasons:
                    reasons.append(c.reason)
                text = f"refused [{reasons.index(c.reason) + 1}]"
            elif c.status == "error":
                text = "**error**"
                failures.append(f"{a} × {m}: {c.reason}")
            else:
                text = "ok" + "".join(f" · {_SHORT[k]} {v:.0e}" for k, v in c.oracle.items())
            if c.failure:
                text += " **FAIL**"
                failures.append(f"{a} × {m}: {c.failure}")
            row.append(text)
        total = sum(c.seconds for c in RESULTS if c.arch == a)
        lines.append(f"| {a} | " + " | ".join(row) + f" | {total:.1f} |")
    n = len(RESULTS)
    ok = sum(c.status == "ok" and not c.failure for c in RESULTS)
    ref = sum(c.status == "refused" for c in RESULTS)
    lines += ["", f"{n} cells: {ok} ran (oracles within bounds), {ref} refused with a CnnlensError, "
              f"{n - ok - ref} failed.", ""]
    if reasons:
        lines += ["Refusals:", ""] + [f"{i + 1}. {r}" for i, r in enumerate(reasons)] + [""]
    if failures:
        lines += ["Failures:", ""] + [f"- {f}" for f in failures] + [""]
    return "\n".join(lines)


def _fmt_s(s: float) -> str:
    return f"{int(s // 60)} min {s % 60:.0f} s"
