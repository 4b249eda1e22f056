"""LIME for images (Ribeiro et al. 2016), as the ``lime`` package does it (docs/algorithms.md §2).

1. Superpixels: quickshift with the lime package's parameters (``kernel_size=4, max_dist=200,
   ratio=0.2``, ``rng=seed``) by default; ``segmenter="slic"`` (``n_segments=50``), a callable
   ``f(image HWC float numpy in [0, 1]) -> (H, W) int labels``, or ``segments=`` given directly.
   Grey images are segmented as RGB with three equal channels (what ``gray2rgb`` gives lime).

   **Small images.** lime's parameters are made for images of about 224² (the package does not
   scale them): on a 25×25 crop they make one superpixel, and the map is constant. So
   ``kernel_size`` and ``max_dist`` that are not given (``None``) are lime's values scaled to the
   image, ``s = min(1, max(1/4, min(H, W) / 224))``: ``kernel_size = 4·s``, ``max_dist = 200·s``.
   Images of 224 pixels or more on their short side keep lime's values exactly (s = 1, bit-identical
   to the unscaled code); the floor 1/4 is skimage's smallest ``kernel_size`` (1), reached below
   56 pixels (a 25² face crop or a 28² digit gets about 3–14 superpixels; a 128² image about 30,
   like lime's ~30 on a 224² photo). A value given explicitly is used as given. If quickshift with
   the automatic values still makes one superpixel on an image, that image is segmented by SLIC
   (``n_segments``) instead, with one warning per call naming the image size and the images;
   ``params["slic_fallback"]`` lists them. Explicit parameters are never replaced: a result with one
   superpixel (any segmenter, or ``segments=``) warns that those maps are constant.
   ``params`` records the segmentation parameters actually used.
2. ``num_samples`` binary vectors ``z`` over the superpixels (uniform on {0, 1}), the first one
   all ones (the original image). Hidden superpixels take ``fill`` (default 0 = black,
   OVERVIEW; ``"segment_mean"`` = each superpixel's mean colour, the lime package's default; old name
   ``hide_color``, where ``None`` is ``"segment_mean"``).
   All perturbed images are built by one gather/blend per chunk of ``batch_size`` and scored
   without gradients: the target-class softmax probability (§0).
3. Sample weights ``π = sqrt(exp(-d² / kernel_width²))`` with ``d`` the cosine distance between
   ``z`` and the all-ones vector (``kernel_width=0.25``).
4. A weighted ridge regression (``alpha=1``, with intercept) of the probability on ``z``, per
   image for its target class, solved in closed form (batched ``torch.linalg.solve``, float64).
   The map paints each pixel with its superpixel's coefficient.

``Explanation.info`` holds, per image, the number of superpixels, the intercept and the weighted
R² of the local model (lime's ``score``).

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ...                     nn.Linear(4, 2)).eval()
    >>> e = cnnlens.explain(cnnlens.Classifier(net), torch.rand(1, 3, 32, 32), "lime", num_samples=50)
    >>> e.maps.shape, e.params["num_samples"], e.params["kernel_size"], e.params["max_dist"]  # scaled to 32²
    (torch.Size([1, 32, 32]), 50, 1.0, 50.0)
    >>> e.info["n_superpixels"][0] > 1
    True
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .. import fills, seeding, validation
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation
from . import register
from ._util import chunk_ranges, target_scores
from ._util import progress as _bar

__all__ = ["lime", "segment", "quickshift_params", "lime_fit", "LimeFit"]


def _relabel(seg: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(seg, return_inverse=True)
    return inverse.reshape(seg.shape).astype(np.int64)


LIME_IMAGE_SIZE = 224  # the image size lime's quickshift parameters are made for
LIME_KERNEL_SIZE, LIME_MAX_DIST = 4, 200  # the lime package's quickshift parameters


def quickshift_params(height: int, width: int, kernel_size: float | None = None,
                      max_dist: float | None = None) -> tuple[float, float]:
    """``(kernel_size, max_dist)`` quickshift uses on ``height × width`` images: a value given is
    kept; ``None`` is lime's (4, 200) times ``s = min(1, max(1/4, min(H, W) / 224))`` (module
    docstring, step 1; ``s = 1``, lime's exact values, from 224 pixels on the short side)."""
    s = min(1.0, max(0.25, min(height, width) / LIME_IMAGE_SIZE))
    if s == 1.0:
        auto_ks, auto_md = LIME_KERNEL_SIZE, LIME_MAX_DIST
    else:
        auto_ks, auto_md = LIME_KERNEL_SIZE * s, LIME_MAX_DIST * s
    return (auto_ks if kernel_size is None else kernel_size), (auto_md if max_dist is None else max_dist)


def _segment(
    x: torch.Tensor,
    segmenter: str | Callable[[np.ndarray], np.ndarray],
    seed: int,
    kernel_size: float | None,
    max_dist: float | None,
    ratio: float,
    n_segments: int,
    first_index: int,
) -> tuple[torch.Tensor, list[int]]:
    """:func:`segment`, plus the batch positions of the images that fell back to SLIC."""
    from skimage.segmentation import quickshift, slic

    images = x.detach().float().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[1] != 3:
        raise CnnlensError(f"LIME's segmenters need 1 or 3 channels, got {images.shape[1]}; pass segments=")
    h, w = images.shape[2], images.shape[3]
    if segmenter == "quickshift":
        validation.real("kernel_size", kernel_size, low=1, allow_none=True,
                        hint="skimage's quickshift needs kernel_size >= 1")
        validation.real("max_dist", max_dist, low=0, open_low=True, allow_none=True)
        auto = kernel_size is None and max_dist is None
        kernel_size, max_dist = quickshift_params(h, w, kernel_size, max_dist)
    out, fallback = [], []
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy().astype(np.float64)):
        if callable(segmenter):
            seg = np.asarray(segmenter(img))
        elif segmenter == "quickshift":
            seg = quickshift(img, kernel_size=kernel_size, max_dist=max_dist, ratio=ratio,
                             rng=seeding.image_int(seed, first_index + i, "lime.segments"))
            if auto and seg.min() == seg.max():  # one superpixel with the automatic parameters
                seg = slic(img, n_segments=n_segments, start_label=0, channel_axis=-1)
                fallback.append(i)
        elif segmenter == "slic":
            seg = slic(img, n_segments=n_segments, start_label=0, channel_axis=-1)
        else:
            raise CnnlensError(f"segmenter={segmenter!r} is not valid; choose 'quickshift', 'slic' or a callable")
        if seg.shape != img.shape[:2]:
            raise CnnlensError(f"the segmenter returned shape {seg.shape} for a {img.shape[:2]} image")
        out.append(_relabel(seg))
    if fallback:
        shown = ", ".join(map(str, fallback[:10])) + (", …" if len(fallback) > 10 else "")
        warnings.warn(
            f"LIME: quickshift with lime's parameters scaled to the {h}×{w} images (kernel_size={kernel_size:g}, "
            f"max_dist={max_dist:g}, ratio={ratio:g}) made one superpixel on {len(fallback)} of {len(out)} "
            f"image(s) (batch positions {shown}); they are segmented by SLIC (n_segments={n_segments}) instead. "
            "Pass segmenter='slic', kernel_size= or max_dist= to choose the segmentation yourself",
            UserWarning, stacklevel=3)
    return torch.from_numpy(np.stack(out)).to(x.device), fallback


def segment(
    x: torch.Tensor,
    segmenter: str | Callable[[np.ndarray], np.ndarray] = "quickshift",
    seed: int = 0,
    kernel_size: float | None = None,
    max_dist: float | None = None,
    ratio: float = 0.2,
    n_segments: int = 50,
    first_index: int = 0,
) -> torch.Tensor:
    """Superpixels of the pixel-space batch ``x`` ``(N, C, H, W)`` → ``(N, H, W)`` int64 labels
    ``0 … F_n − 1`` (on ``x``'s device). ``segmenter``: ``"quickshift"`` (lime's parameters;
    ``kernel_size``/``max_dist`` left ``None`` are scaled to images under 224 pixels, and an
    image they leave in one superpixel falls back to SLIC with a warning: module docstring,
    step 1; :func:`quickshift_params`), ``"slic"`` (``n_segments``, ``start_label=0``) or a
    callable on one HWC float image. quickshift's tie-breaking noise of image i comes from its
    seed stream (§11)."""
    return _segment(x, segmenter, seed, kernel_size, max_dist, ratio, n_segments, first_index)[0]


class LimeFit:
    """Per-image local models: ``coef`` ``(N, F_max)`` (zero beyond each image's ``n_features``),
    ``intercept`` ``(N,)``, weighted ``r2`` ``(N,)``, ``n_features`` ``(N,)``, ``segments``
    ``(N, H, W)``, and the design ``data`` ``(N, S, F_max)`` / ``scores`` ``(N, S)``."""

    def __init__(self, coef: torch.Tensor, intercept: torch.Tensor, r2: torch.Tensor, n_features: torch.Tensor,
                 segments: torch.Tensor, data: torch.Tensor, scores: torch.Tensor) -> None:
        self.coef, self.intercept, self.r2 = coef, intercept, r2
        self.n_features, self.segments, self.data, self.scores = n_features, segments, data, scores

    def maps(self) -> torch.Tensor:
        """Each pixel painted with its superpixel's coefficient, ``(N, H, W)``."""
        n = self.segments.shape[0]
        flat = self.segments.reshape(n, -1)
        return self.coef.to(torch.float32).gather(1, flat).reshape(self.segments.shape)


def _given_samples(samples: Any, n: int, n_feat: torch.Tensor, f_max: int) -> torch.Tensor:
    data = torch.as_tensor(np.asarray(samples) if not isinstance(samples, torch.Tensor) else samples).cpu()
    if data.dim() == 2:
        data = data.expand(n, -1, -1)
    if data.dim() != 3 or data.shape[0] != n or data.shape[1] < 2:
        raise CnnlensError(f"samples must have shape (S, F) or ({n}, S, F) with S >= 2, got {tuple(data.shape)}")
    if data.shape[2] < f_max:
        raise CnnlensError(f"samples have {data.shape[2]} columns but the images have up to {f_max} superpixels")
    if not ((data == 0) | (data == 1)).all():
        raise CnnlensError("samples must be 0/1 (1 = superpixel kept)")
    data = data[:, :, :f_max].to(torch.int64).clone()
    beyond = torch.arange(f_max)[None, None, :] >= n_feat.cpu()[:, None, None]
    if (data.bool() & beyond).any():
        raise CnnlensError("samples switch on a superpixel an image does not have")
    return data


def lime_fit(
    clf: Classifier,
    x: torch.Tensor,
    targets: torch.Tensor,
    segments: torch.Tensor,
    num_samples: int = 1000,
    fill: Any = 0.0,
    kernel_width: float = 0.25,
    alpha: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
    samples: torch.Tensor | np.ndarray | None = None,
    first_index: int = 0,
) -> LimeFit:
    """Sample, score and fit LIME's local linear models for the batch ``x`` ``(N, C, H, W)``
    with superpixel labels ``segments`` ``(N, H, W)`` (steps 2–4 of the module docstring).

    ``samples``: the 0/1 vectors to use instead of drawing them, ``(S, F)`` for every image or
    ``(N, S, F_max)``; ``S`` replaces ``num_samples`` (e.g. another LIME run's samples, for a
    paired comparison). Taken as given: the first row is not forced to all ones."""
    n, c, h, w = x.shape
    segments = torch.as_tensor(segments, device=x.device)
    if segments.dim() == 2:
        segments = segments.expand(n, -1, -1)
    if tuple(segments.shape) != (n, h, w):
        raise CnnlensError(f"segments must have shape ({n}, {h}, {w}), got {tuple(segments.shape)}")
    segments = torch.stack([torch.from_numpy(_relabel(s.cpu().numpy())) for s in segments]).to(x.device)
    n_feat = segments.reshape(n, -1).max(dim=1).values + 1
    f_max = int(n_feat.max())
    real = torch.arange(f_max, device=x.device)[None, :] < n_feat[:, None]  # (N, F_max)
    if samples is None:
        # image i's samples come from its own seed stream (§11): they do not depend on the
        # other images of the batch (nor on their number of superpixels)
        data = torch.zeros(n, num_samples, f_max, dtype=torch.int64)
        for i, g in enumerate(seeding.image_generators(seed, n, "lime.samples", first_index)):
            data[i, :, : int(n_feat[i])] = torch.randint(0, 2, (num_samples, int(n_feat[i])), generator=g)
        data = data.to(x.device)
        data[:, 0, :] = real.to(data.dtype)
    else:
        data = _given_samples(samples, n, n_feat, f_max).to(x.device)
        num_samples = data.shape[1]
    fill = fills.fill("segment_mean" if fill is None else fill, x, clf, segments=segments, what="fill")
    seg_flat = segments.reshape(n, -1)
    scores = torch.empty(n * num_samples, device=x.device, dtype=torch.float64)
    bar = _bar(n * num_samples, "lime", progress)
    with torch.no_grad():
        for a, b in chunk_ranges(n * num_samples, batch_size):
            pair = torch.arange(a, b, device=x.device)
            img, smp = pair // num_samples, pair % num_samples
            keep = data[img, smp].gather(1, seg_flat[img]).to(x.dtype).view(-1, 1, h, w)
            masked = torch.lerp(fill[img], x[img], keep)  # x where kept, fill where hidden
            probs = clf.logits(masked, batch_size=masked.shape[0])
            scores[a:b] = target_scores(probs, targets[img], "prob", check=False).double()
            bar.update(b - a)
    bar.close()
    scores = scores.view(n, num_samples)
    # cosine distance of binary z to the all-ones vector: 1 - sqrt(|z| / F); a zero vector → 1
    z = data.double()
    d = 1.0 - torch.sqrt(z.sum(dim=2) / n_feat[:, None].double())
    pi = torch.sqrt(torch.exp(-(d ** 2) / kernel_width ** 2))
    sw = pi / pi.sum(dim=1, keepdim=True)
    xm = (sw[:, :, None] * z).sum(dim=1, keepdim=True)
    ym = (sw * scores).sum(dim=1, keepdim=True)
    zc, yc = z - xm, scores - ym
    gram = zc.transpose(1, 2) @ (pi[:, :, None] * zc)
    reg = alpha * torch.eye(f_max, dtype=torch.float64, device=x.device).expand(n, -1, -1)
    rhs = zc.transpose(1, 2) @ (pi * yc).unsqueeze(2)
    # padded (non-existent) features have zero columns: keep the system regular with alpha or 1
    pad = (~real).double().diag_embed() if f_max else 0
    coef = torch.linalg.solve(gram + reg + pad, rhs).squeeze(2)
    coef = coef * real
    intercept = ym.squeeze(1) - (xm.squeeze(1) * coef).sum(dim=1)
    pred = z @ coef.unsqueeze(2)
    resid = (pi * (scores - intercept[:, None] - pred.squeeze(2)) ** 2).sum(dim=1)
    total = (pi * yc ** 2).sum(dim=1)
    r2 = torch.where(total > 0, 1 - resid / total.clamp(min=1e-300), torch.ones_like(total))
    return LimeFit(coef, intercept, r2, n_feat, segments, data, scores)


@register("lime", stochastic=True)
def lime(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
    num_samples: int = 1000, segmenter: str | Callable[[np.ndarray], np.ndarray] = "quickshift",
    segments: torch.Tensor | None = None, kernel_size: float | None = None, max_dist: float | None = None,
    ratio: float = 0.2,
    n_segments: int = 50, hide_color: float | Sequence[float] | None = 0.0, kernel_width: float = 0.25,
    alpha: float = 1.0, progress: bool = True, samples: torch.Tensor | np.ndarray | None = None,
    fill: Any = None, first_index: int = 0, progress_bar: bool | None = None,
) -> Explanation:
    """LIME (Ribeiro et al. 2016; §2): per-superpixel weights of a weighted ridge model of
    the target probability, painted onto the superpixels. Steps and options: module docstring.

    Args:
        num_samples: perturbed samples per image (1000).
        segmenter: ``"quickshift"`` (``kernel_size=4``, ``max_dist=200``, ``ratio=0.2``, lime's;
            ``kernel_size``/``max_dist`` not given are scaled by ``min(H, W) / 224`` on images
            under 224 pixels, floored at 1/4, with a SLIC fallback where quickshift still makes
            one superpixel: module docstring), ``"slic"`` (``n_segments=50``) or a callable on
            one HWC image.
        segments: ``(N, H, W)`` or ``(H, W)`` superpixel ids, to skip segmentation.
        fill: what hidden superpixels show (:mod:`cnnlens.fills`: ``"black"``, ``"mean"``,
            ``"image_mean"``, ``"segment_mean"``, a colour); old name ``hide_color`` (``0.0``;
            ``None`` = ``"segment_mean"``).
        kernel_width: width of the exponential kernel on the cosine distance (0.25).
        alpha: ridge penalty (1.0).
        progress: progress bar (old name ``progress_bar``).
        samples: ``(S, F)`` or ``(N, S, F_max)`` 0/1 vectors used instead of random ones
            (``num_samples`` becomes ``S``).
        first_index: data-set position of the first image (seed streams, §11).
    """
    validation.integer("num_samples", num_samples, minimum=2)
    if fill is not None and not (isinstance(hide_color, float) and hide_color == 0.0):
        raise CnnlensError("give fill= or hide_color= (its old name), not both")
    fill = fills.resolve(fill, allowed=("black", "mean", "image_mean", "segment_mean"))
    if fill is None:
        fill = "segment_mean" if hide_color is None else hide_color
        if hide_color is not None:
            fills.fill(hide_color, x[:1], clf, what="hide_color")  # a bad colour names the keyword given
    validation.real("kernel_width", kernel_width, low=0, open_low=True)
    validation.real("alpha", alpha, low=0)
    fallback: list[int] = []
    if segments is None:
        segs, fallback = _segment(x, segmenter, seed, kernel_size, max_dist, ratio, n_segments, first_index)
    else:
        segs = segments
    fit = lime_fit(clf, x, targets, segs, num_samples=num_samples, fill=fill,
                   kernel_width=kernel_width, alpha=alpha, seed=seed, batch_size=batch_size,
                   progress=progress if progress_bar is None else progress_bar, samples=samples,
                   first_index=first_index)
    num_samples = int(fit.data.shape[1])
    seg_name = "given" if segments is not None else (
        segmenter if isinstance(segmenter, str) else getattr(segmenter, "__name__", "callable"))
    params: dict[str, Any] = {"num_samples": num_samples, "samples": "random" if samples is None else "given",
                              "segmenter": seg_name, "fill": fills.describe(fill),
                              "kernel_width": kernel_width, "alpha": alpha}
    if seg_name == "quickshift":
        used_ks, used_md = quickshift_params(x.shape[2], x.shape[3], kernel_size, max_dist)
        params.update(kernel_size=used_ks, max_dist=used_md, ratio=ratio)
        if fallback:
            params.update(slic_fallback=fallback, n_segments=n_segments)
    elif seg_name == "slic":
        params.update(n_segments=n_segments)
    single = [i for i, k in enumerate(fit.n_features.tolist()) if k == 1]
    if single:
        shown = ", ".join(map(str, single[:10])) + (", …" if len(single) > 10 else "")
        how = ", ".join(f"{k}={params[k]!r}" for k in ("segmenter", "kernel_size", "max_dist", "ratio", "n_segments")
                        if k in params)
        warnings.warn(
            f"LIME: {len(single)} of {x.shape[0]} {x.shape[2]}×{x.shape[3]} image(s) have one superpixel "
            f"({how}; batch positions {shown}): their maps are constant. Use a finer segmentation "
            "(a smaller kernel_size, segmenter='slic' with n_segments=, or segments=)",
            UserWarning, stacklevel=3)
    return Explanation(
        maps=fit.maps(), targets=targets, params=params,
        info={"n_superpixels": fit.n_features.tolist(), "intercept": fit.intercept.tolist(), "r2": fit.r2.tolist()},
    )
