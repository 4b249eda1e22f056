"""Shared pieces of the metrics (docs/algorithms.md §3): validation, scoring, ranking, masks (fills: :mod:`cnnlens.fills`).

Everything here works on batches on the classifier's device; nothing loops per image.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import seeding, validation
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation, upsample

__all__ = [
    "MetricResult",
    "DEFAULT_BATCH_SIZE",
    "check_classifier",
    "check_maps",
    "model_scores",
    "tie_break_order",
    "rank_of",
]

DEFAULT_BATCH_SIZE = 64

@dataclasses.dataclass
class MetricResult:
    """One metric on a batch of images (§3, §9).

    Attributes:
        name: the metric's name (``iauc``, ``dauc``, ``ic``, ``dc``, ``ad``, ``iic``, ``insertion_game``).
        per_image: ``(N,)`` float64 values, one per image (``insertion_game``: ``(N, F)``, 1.0 where
            the modified image is classified correctly / agrees, one column per fraction).
        mean: the aggregate: mean over images (``insertion_game``: ``(F,)`` accuracy per fraction).
        std: population standard deviation over images (``insertion_game``: ``nan``).
        params: every parameter that produced the value (protocol, score, step, substrates, …).
        n_constant: images whose value is undefined and was set to 0 by convention (constant
            curve or constant map for IC/DC, a zero original score for AD), counted, never NaN.
        curves: ``(N, n_steps + 1)`` scores along the game for IAUC/DAUC/IC/DC, else ``None``.
        direction: ``"↑"`` (higher is better) or ``"↓"``.
    """

    name: str
    per_image: torch.Tensor
    mean: Any
    std: float
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    n_constant: int = 0
    curves: torch.Tensor | None = None
    direction: str = "↑"

    def __repr__(self) -> str:
        if isinstance(self.mean, torch.Tensor):
            vals = ", ".join(f"{v:.3f}" for v in self.mean.tolist())
            return f"MetricResult({self.name}: [{vals}] over {self.per_image.shape[0]} images)"
        return (f"MetricResult({self.name} {self.direction}: {self.mean:.4f} ± {self.std:.4f} over "
                f"{self.per_image.shape[0]} images, n_constant={self.n_constant})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (per-image values as lists)."""
        mean = self.mean.tolist() if isinstance(self.mean, torch.Tensor) else float(self.mean)
        out = {
            "name": self.name,
            "mean": mean,
            "std": float(self.std),
            "direction": self.direction,
            "n_constant": int(self.n_constant),
            "per_image": self.per_image.tolist(),
            "params": self.params,
        }
        if self.curves is not None:
            out["mean_curve"] = self.curves.mean(dim=0).tolist()
        return out


def make_result(name: str, values: torch.Tensor, params: dict[str, Any], n_constant: int = 0,
                curves: torch.Tensor | None = None, direction: str = "↑") -> MetricResult:
    """A :class:`MetricResult` with mean and population std of ``values`` over images."""
    v = values.detach().double().cpu()
    mean = float(v.mean()) if v.numel() else float("nan")
    std = float(v.std(unbiased=False)) if v.numel() else float("nan")
    return MetricResult(name, v, mean, std, dict(params), int(n_constant),
                        None if curves is None else curves.detach().double().cpu(), direction)


def check_classifier(clf: Any) -> Classifier:
    if not isinstance(clf, Classifier):
        raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
    return clf


def check_maps(maps: Any, x: torch.Tensor, what: str = "maps", same_size: bool = False,
               allow_larger: bool = False) -> torch.Tensor:
    """Validate ``(N, h, w)`` maps for the images ``x`` ``(N, C, H, W)``; returns float maps on
    ``x``'s device. ``(N, 1, h, w)`` is accepted. ``same_size`` requires ``(h, w) == (H, W)``;
    maps larger than the images are refused unless ``allow_larger`` (layer maps of a model that
    upsamples its input internally)."""
    if isinstance(maps, Explanation):
        maps = maps.maps
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(maps)
    if not isinstance(maps, torch.Tensor):
        raise CnnlensError(f"{what} must be a (N, H, W) tensor or an Explanation, got {type(maps).__name__}")
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise CnnlensError(f"{what} must have shape (N, H, W), got {tuple(maps.shape)}")
    n, _, h, w = x.shape
    if maps.shape[0] != n:
        raise CnnlensError(f"{what} has {maps.shape[0]} maps for {n} images; give one map per image")
    if same_size and tuple(maps.shape[1:]) != (h, w):
        raise CnnlensError(
            f"{what} are {tuple(maps.shape[1:])} but the images are {(h, w)}; "
            "give maps at image resolution (cnnlens.explanation.upsample)")
    if not allow_larger and (maps.shape[1] > h or maps.shape[2] > w):
        raise CnnlensError(f"{what} are {tuple(maps.shape[1:])}, larger than the images {(h, w)}")
    maps = maps.detach().to(device=x.device, dtype=torch.float32 if not maps.is_floating_point() else maps.dtype)
    if not torch.isfinite(maps).all():
        raise CnnlensError(f"{what} contain NaN or inf values")
    return maps.float()


def forward_logits(clf: Classifier, x: torch.Tensor) -> torch.Tensor:
    """Logits of an already validated, possibly perturbed batch without gradients.

    Perturbed inputs (bicubic soft masks) may overshoot [0, 1] slightly, which ``check_input``
    would reject, so this takes the wrapper's unchecked forward (normalise → model → output
    selection → binary expansion, §1)."""
    with torch.no_grad():
        return clf.forward_unchecked(x, fast_layout=True)


def model_scores(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, score: str) -> torch.Tensor:
    """Target score per image of one chunk: softmax probability (``"prob"``) or logit."""
    logits = forward_logits(clf, x).float()
    if score == "prob":
        logits = torch.softmax(logits, dim=1)
    return logits.gather(1, targets.view(-1, 1)).squeeze(1)


def check_score(score: Any) -> str:
    validation.choice("score", score, ("prob", "logit"))
    return score


def tie_break_order(maps: torch.Tensor, seed: int) -> torch.Tensor:
    """Cell order ``(N, n)``: flattened cells by descending map value; ties broken by one seeded
    random permutation of the cells, shared by every map and method (§3)."""
    n_cells = maps[0].numel()
    g = seeding.run_generator(seed, "metrics.tie_break")  # shared by every map of a run (§11)
    perm = torch.randperm(n_cells, generator=g).to(maps.device)
    flat = maps.reshape(maps.shape[0], -1)[:, perm]
    order_in_perm = torch.sort(flat, dim=1, descending=True, stable=True).indices
    return perm[order_in_perm]


def rank_of(order: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`tie_break_order`: rank ``(N, n)`` of each cell (0 = highest)."""
    rank = torch.empty_like(order)
    ar = torch.arange(order.shape[1], device=order.device).expand_as(order)
    rank.scatter_(1, order, ar)
    return rank


def to_size(maps: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Maps ``(N, h, w)`` resized to ``size`` (identity when already there)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    if mode == "bicubic":
        return F.interpolate(maps.unsqueeze(1), size=size, mode="bicubic", align_corners=False).squeeze(1)
    return upsample(maps, size, mode=mode)


def n_keep(fraction: float, n: int) -> int:
    """How many of ``n`` cells a fraction keeps: ``round(fraction · n)``, at least 1 for a
    positive fraction."""
    k = int(math.floor(fraction * n + 0.5))
    if fraction > 0:
        k = max(k, 1)
    return min(k, n)


def as_int_list(values: Sequence[Any]) -> list[int]:
    return [int(v) for v in values]
