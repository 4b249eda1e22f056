"""Perturbation games: insertion → IAUC and IC, deletion → DAUC and DC (docs/algorithms.md §3).

One game gives both numbers of its pair. Cells of the map (at resolution ``res``) are taken in
descending order (ties broken by one seeded permutation shared by all methods), ``step`` cells
per step; n_steps = ⌈n / step⌉ and the last step takes the remainder. The curve
s_0 … s_{n_steps} is the target score at each point (s_0: the unmodified image for deletion, the
substrate for insertion); AUC is the trapezoid over x_k = k / n_steps. The calibration metrics
are Pearson correlations over k = 1 … n_steps of the score change with m_k, the mean map value of
the cells changed at step k: IC with s_k − s_{k−1}, DC with s_{k−1} − s_k. A constant vector gives
0 and is counted.

All (image, step) pairs of a batch are built as one tensor operation per chunk of ``batch_size``
pairs and scored in one forward per chunk.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ._common import MetricResult, model_scores, rank_of, tie_break_order
from .registry import register

if TYPE_CHECKING:
    from .context import MetricContext

__all__ = ["GameCurves", "play", "auc", "pearson", "n_forwards"]


@dataclasses.dataclass
class GameCurves:
    """Scores of one game: ``scores`` ``(N, n_steps + 1)``, ``cell_means`` ``(N, n_steps)``
    (m_k), and the step layout."""

    scores: torch.Tensor
    cell_means: torch.Tensor
    step: int
    n_steps: int
    n_cells: int
    res: tuple[int, int]


def n_forwards(n_images: int, n_cells: int, step: int) -> int:
    """Forward passes of one game on ``n_images`` images (the curve has n_steps + 1 points)."""
    return n_images * (math.ceil(n_cells / step) + 1)


def play(
    clf,
    x: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    kind: str,
    step: int,
    sub: torch.Tensor,
    score: str,
    batch_size: int,
    seed: int,
    progress=None,
) -> GameCurves:
    """Play the insertion (``kind="insertion"``) or deletion game on validated input.

    Args:
        x: images ``(N, C, H, W)``; maps: ``(N, h, w)`` at the game's resolution (cells are
            nearest-upsampled to the image); targets ``(N,)``; sub: the substrate ``(N, C, H, W)``
            (what deletion puts in, what insertion starts from).
        progress: optional callable ``progress(k)`` told how many forwards were just done.
    """
    n, _, hh, ww = x.shape
    h, w = maps.shape[1:]
    n_cells = h * w
    n_steps = math.ceil(n_cells / step)
    order = tie_break_order(maps, seed)
    rank = rank_of(order).reshape(n, h, w)
    # m_k: mean map value of the cells changed at step k (the last step may be shorter)
    vals = maps.reshape(n, -1).gather(1, order).double()
    pad = n_steps * step - n_cells
    if pad:
        vals = torch.cat([vals, torch.full((n, pad), float("nan"), dtype=vals.dtype, device=vals.device)], 1)
    cell_means = vals.view(n, n_steps, step).nanmean(dim=2)

    if kind == "deletion":
        base, other = x, sub
    else:
        base, other = sub, x
    points = n_steps + 1
    total = n * points
    scores = torch.empty(total, dtype=torch.float32, device=x.device)
    for start in range(0, total, batch_size):
        idx = torch.arange(start, min(start + batch_size, total), device=x.device)
        img, k = idx // points, idx % points
        changed = (rank[img] < (k * step).clamp(max=n_cells).view(-1, 1, 1)).to(x.dtype).unsqueeze(1)
        if (h, w) != (hh, ww):
            changed = F.interpolate(changed, size=(hh, ww), mode="nearest")
        batch = base[img] * (1 - changed) + other[img] * changed
        scores[idx] = model_scores(clf, batch, targets[img], score)
        if progress is not None:
            progress(int(idx.numel()))
    return GameCurves(scores.view(n, points).double().cpu(), cell_means.cpu(), step, n_steps, n_cells, (h, w))


def auc(scores: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under ``(N, K + 1)`` curves over x_k = k / K, k = 0 … K."""
    k = scores.shape[1] - 1
    return (scores.sum(1) - 0.5 * (scores[:, 0] + scores[:, -1])) / k


def pearson(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Row-wise Pearson correlation of ``(N, K)`` tensors; a row where either side is constant
    gives 0. Returns ``(r, count of such rows)``."""
    const = (a.amax(1) == a.amin(1)) | (b.amax(1) == b.amin(1))
    a = a.double() - a.double().mean(1, keepdim=True)
    b = b.double() - b.double().mean(1, keepdim=True)
    na = a.pow(2).sum(1).sqrt()
    nb = b.pow(2).sum(1).sqrt()
    const = const | (na == 0) | (nb == 0)
    r = (a * b).sum(1) / (na * nb).clamp_min(1e-300)
    r = torch.where(const, torch.zeros_like(r), r.clamp(-1.0, 1.0))
    return r, int(const.sum())


# ---------------------------------------------------------------------------------------------
# the registered metrics (§3): one game gives both numbers of its pair
def _auc_metric(ctx: MetricContext, kind: str) -> MetricResult:
    g = ctx.game(kind)
    return ctx.result(auc(g.scores), {**ctx.common, **ctx.game_params, "game": kind}, 0, g.scores)


def _calibration_metric(ctx: MetricContext, kind: str) -> MetricResult:
    g = ctx.game(kind)
    diff = g.scores[:, 1:] - g.scores[:, :-1]
    if kind == "deletion":
        diff = -diff
    r, n_const = pearson(diff, g.cell_means)
    params = {**ctx.common, **ctx.game_params, "game": kind, "correlation": "pearson(score change, m_k)"}
    return ctx.result(r, params, n_const, g.scores)


@register("iauc", direction="↑", needs=("maps", "insertion"), default=True, order=1,
          description="insertion AUC: area under the target score as cells are inserted (OVERVIEW)")
def iauc(ctx: MetricContext) -> MetricResult:
    return _auc_metric(ctx, "insertion")


@register("dauc", direction="↓", needs=("maps", "deletion"), default=True, order=2,
          description="deletion AUC: area under the target score as cells are deleted (OVERVIEW)")
def dauc(ctx: MetricContext) -> MetricResult:
    return _auc_metric(ctx, "deletion")


@register("ic", direction="↑", needs=("maps", "insertion"), default=True, order=3,
          description="insertion correlation: Pearson of score gain and map value per step (OVERVIEW)")
def ic(ctx: MetricContext) -> MetricResult:
    return _calibration_metric(ctx, "insertion")


@register("dc", direction="↑", needs=("maps", "deletion"), default=True, order=4,
          description="deletion correlation: Pearson of score drop and map value per step (OVERVIEW)")
def dc(ctx: MetricContext) -> MetricResult:
    return _calibration_metric(ctx, "deletion")
