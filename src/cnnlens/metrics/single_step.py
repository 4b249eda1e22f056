"""Average Drop (AD) and Average Increase (AI, a.k.a. Increase In Confidence, IIC) — docs/algorithms.md §3.

One masked copy of each image is scored against the unmodified image (Grad-CAM++ §5; RI Eq. 7–8):
AD = max(0, Y − O) / Y (lower is better), AI = 1[O > Y] (higher is better), with Y the target
score on the image and O on the masked image.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> from cnnlens.metrics import average_drop_increase
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    >>> clf = cnnlens.Classifier(net)
    >>> x = torch.rand(2, 1, 4, 4)
    >>> ad, ai = average_drop_increase(clf, x, torch.rand(2, 4, 4))
    >>> ad.shape, bool(((ad >= 0) & (ad <= 1)).all())
    (torch.Size([2]), True)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .. import validation
from ..errors import CnnlensError
from ..explanation import minmax_normalize
from ._common import (
    DEFAULT_BATCH_SIZE,
    MetricResult,
    check_classifier,
    check_maps,
    check_score,
    model_scores,
    n_keep,
    rank_of,
    tie_break_order,
    to_size,
)
from .registry import register

__all__ = ["average_drop_increase", "soft_masks", "keep_masks"]


def soft_masks(maps: torch.Tensor, size: tuple[int, int], upsample: str = "bilinear") -> torch.Tensor:
    """The soft mask S ``(N, H, W)`` of §3 AD/AI ``mode="soft"``.

    ``upsample="bilinear"`` (the ``rise`` preset): the map is upsampled to ``size`` and then
    min-max normalised per image. ``upsample="bicubic"`` (the ``gomez`` preset, as its reference
    implementation does): min-max normalised per image first, then bicubic-upsampled, which may
    overshoot [0, 1] slightly (kept, like the reference). Signed maps are min-max'd as they are
    (no ReLU); a constant map gives S = 0.
    """
    if upsample == "bilinear":
        return minmax_normalize(to_size(maps, size, "bilinear"))
    if upsample == "bicubic":
        return to_size(minmax_normalize(maps), size, "bicubic")
    raise CnnlensError(f"upsample must be 'bilinear' or 'bicubic', got {upsample!r}")


def keep_masks(maps: torch.Tensor, size: tuple[int, int], keep: float, upsample: str = "bilinear",
               seed: int = 0) -> torch.Tensor:
    """The binary mask ``(N, H, W)`` of ``mode="keep"`` (RI paper): the top ``keep`` fraction of
    pixels by map value (map upsampled to ``size`` first; ties broken by the seeded shared
    permutation), the rest 0."""
    if upsample not in ("bilinear", "bicubic"):
        raise CnnlensError(f"upsample must be 'bilinear' or 'bicubic', got {upsample!r}")
    full = to_size(maps, size, upsample)
    n = full[0].numel()
    k = n_keep(keep, n)
    rank = rank_of(tie_break_order(full, seed))
    return (rank < k).to(full.dtype).reshape(full.shape)


def _check_mode(mode: Any, keep: Any) -> None:
    if mode not in ("soft", "keep"):
        raise CnnlensError(f"mode must be 'soft' or 'keep', got {mode!r}")
    # keep is checked in every mode: a bad value is a mistake even where this call ignores it
    validation.real("keep", keep, 0, 1, open_low=True, hint="the kept fraction of mode='keep'")

if TYPE_CHECKING:
    from .context import MetricContext


def ad_ai(
    clf: Any,
    x: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    *,
    mode: str,
    keep: float,
    clip: bool,
    score: str,
    upsample: str,
    batch_size: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Core of AD/AI on validated input: returns ``(ad, ai, Y, O, n_zero)`` (float64 CPU
    ``(N,)`` each; ``n_zero`` images had Y = 0, their AD is set to 0 and counted)."""
    size = (x.shape[2], x.shape[3])
    ys, os_ = [], []
    for sl in _chunks(x.shape[0], batch_size):
        xb, tb = x[sl], targets[sl]
        if mode == "soft":
            m = soft_masks(maps[sl], size, upsample)
        else:
            m = keep_masks(maps[sl], size, keep, upsample, seed)
        masked = xb * m.unsqueeze(1).to(xb.dtype)  # the rest black (pixel 0)
        both = model_scores(clf, torch.cat([xb, masked]), torch.cat([tb, tb]), score)
        ys.append(both[: xb.shape[0]])
        os_.append(both[xb.shape[0]:])
    y = torch.cat(ys).double().cpu()
    o = torch.cat(os_).double().cpu()
    zero = y == 0
    drop = y - o
    if clip:
        drop = drop.clamp_min(0.0)
    ad = torch.where(zero, torch.zeros_like(y), drop / torch.where(zero, torch.ones_like(y), y))
    ai = (o > y).double()
    return ad, ai, y, o, int(zero.sum())


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def average_drop_increase(
    clf: Any,
    x: torch.Tensor,
    maps: Any,
    targets: Any = None,
    mode: str = "soft",
    keep: float = 0.2,
    clip: bool = True,
    score: str = "prob",
    upsample: str = "bilinear",
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average Drop and Average Increase per image (§3 AD/AI; Grad-CAM++; RI Eq. 7–8).

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        x: images ``(N, C, H, W)`` in [0, 1].
        maps: ``(N, h, w)`` explanation maps (or an :class:`~cnnlens.Explanation`), at image
            resolution or coarser (then upsampled with ``upsample``).
        targets: class per image (int, sequence or tensor); ``None`` → the predicted class.
        mode: ``"soft"`` — E = x ⊙ S with S the min-max normalised map (see :func:`soft_masks`);
            ``"keep"`` (RI paper) — keep the top ``keep`` fraction of pixels, the rest black.
        keep: fraction kept by ``mode="keep"``.
        clip: ``True`` → max(0, Y − O)/Y; ``False`` → the signed drop (Y − O)/Y.
        score: ``"prob"`` (softmax probability of the target, §0) or ``"logit"``.
        upsample: ``"bilinear"`` (``rise`` preset) or ``"bicubic"`` (``gomez`` preset).
        batch_size: images per forward (each chunk scores the originals and the masked copies).
        seed: seed of the tie-breaking permutation (``mode="keep"`` only).

    Returns:
        ``(ad, ai)``: two float64 CPU tensors ``(N,)``; AD values are fractions (in [0, 1] with
        ``clip``), AI values are 0/1. Their means are the reported AD and AI (×100 for %).
        An image whose original score is 0 gets AD 0.
    """
    clf = check_classifier(clf)
    batch_size = validation.batch_size(batch_size)
    score = check_score(score)
    _check_mode(mode, keep)
    if upsample not in ("bilinear", "bicubic"):
        raise CnnlensError(f"upsample must be 'bilinear' or 'bicubic', got {upsample!r}")
    x = clf.check_input(x)
    maps = check_maps(maps, x)
    t = clf.targets(x, targets, batch_size=batch_size)
    clip = validation.flag("clip", clip)
    ad, ai, _, _, _ = ad_ai(clf, x, maps, t, mode=mode, keep=float(keep), clip=clip, score=score,
                            upsample=upsample, batch_size=batch_size, seed=int(seed))
    return ad, ai


@register("ad", direction="↓", percent=True, default=True, order=5,
          description="average drop: relative loss of the target score when only the map's region is kept")
def ad(ctx: MetricContext) -> MetricResult:
    values, _, n_zero, params = ctx.ad_ai()
    return ctx.result(values, params, n_zero)


@register("iic", direction="↑", percent=True, default=True, aliases=("ai",), order=6,
          description="increase in confidence (AI): share of images whose score rises when only the region is kept")
def iic(ctx: MetricContext) -> MetricResult:
    _, values, _, params = ctx.ad_ai()
    return ctx.result(values, params, 0)
