"""RISE: Randomized Input Sampling for Explanation (Petsiuk et al. 2018; docs/algorithms.md §2).

``n_masks`` (default 4000) binary ``grid × grid`` (7 × 7) grids with keep probability ``p``
(0.5) are upsampled bilinearly to ``(grid + 1) · cell`` with ``cell = ceil(H / grid)`` and
cropped at a random shift in ``[0, cell)`` (the reference implementation's smooth masks). Each
masked image ``x ⊙ M_i + b ⊙ (1 − M_i)`` (``fill="black"``: ``b = 0`` in pixel space,
§0; ``"mean"``: the Classifier's mean colour, what the reference code's zero in normalised space
means; ``"image_mean"``, a colour or a tensor: :mod:`cnnlens.fills`) is scored by the target softmax probability ``P_i``; the saliency is
``S = Σ_i P_i M_i / (n_masks · p)``.

Masks are generated from ``seed`` on the CPU (reproducible across devices) in chunks,
upsampled on the model's device, and every chunk of ``batch_size`` masked images (images ×
masks) goes through the model at once without gradients; masks are never all kept in memory.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ...                     nn.Linear(4, 2)).eval()
    >>> e = cnnlens.explain(cnnlens.Classifier(net), torch.rand(2, 3, 32, 32), "rise", n_masks=64)
    >>> e.maps.shape, e.params["grid"]
    (torch.Size([2, 32, 32]), 7)
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .. import fills, seeding, validation
from ..classifier import Classifier
from ..explanation import Explanation
from . import register
from ._util import progress as _bar
from ._util import target_scores

__all__ = ["rise", "rise_masks"]


def _draw(n: int, size: tuple[int, int], grid: int, p: float,
          generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random part of ``n`` masks (CPU): binary grids ``(n, grid, grid)`` and shifts."""
    H, W = size
    ch, cw = math.ceil(H / grid), math.ceil(W / grid)
    cells = (torch.rand(n, grid, grid, generator=generator) < p).float()
    dy = torch.randint(0, ch, (n,), generator=generator)
    dx = torch.randint(0, cw, (n,), generator=generator)
    return cells, dy, dx


def _smooth(cells: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, size: tuple[int, int],
            device: torch.device | str) -> torch.Tensor:
    """Upsample grids to ``(grid + 1) · cell`` bilinearly and crop at the shifts → ``(n, H, W)``."""
    H, W = size
    grid = cells.shape[-1]
    ch, cw = math.ceil(H / grid), math.ceil(W / grid)
    n = cells.shape[0]
    up = F.interpolate(cells.to(device).unsqueeze(1), size=((grid + 1) * ch, (grid + 1) * cw), mode="bilinear",
                       align_corners=False).squeeze(1)
    rows = dy.to(device)[:, None] + torch.arange(H, device=device)[None, :]  # (n, H)
    cols = dx.to(device)[:, None] + torch.arange(W, device=device)[None, :]  # (n, W)
    idx = torch.arange(n, device=device)[:, None, None]
    return up[idx, rows[:, :, None], cols[:, None, :]]


def _check_grid(grid: Any, size: tuple[int, int]) -> None:
    """``grid`` cells per side, at most the image's shorter side (a cell must hold a pixel)."""
    side = min(int(size[0]), int(size[1]))
    validation.integer("grid", grid, minimum=1, maximum=side,
                       hint=f"cells per side; the images are {size[0]}x{size[1]} pixels")


def rise_masks(
    n: int, size: tuple[int, int], grid: int = 7, p: float = 0.5, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``n`` smooth RISE masks ``(n, H, W)`` in ``[0, 1]`` (module docstring). The random grids
    and shifts come from ``generator`` (CPU); upsampling runs on ``device``."""
    validation.integer("n", n, minimum=1)
    _check_grid(grid, tuple(size))
    return _smooth(*_draw(n, size, grid, p, generator), size, device)


@register("rise", stochastic=True)
def rise(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
    n_masks: int = 4000, grid: int = 7, p: float = 0.5, fill: Any = None, progress: bool = True,
    baseline: Any = None, progress_bar: bool | None = None,
) -> Explanation:
    """RISE (Petsiuk et al. 2018; §2): ``S = Σ_i P_target(x ⊙ M_i) M_i / (n_masks · p)``.

    The same masks (one seed stream per run, §11) are used for every image of the batch;
    ``batch_size`` bounds masked images per forward pass.

    Args:
        n_masks: number of masks (4000).
        grid: cells per side of the random grid (7).
        p: keep probability of a cell (0.5).
        fill: what masked pixels show (:mod:`cnnlens.fills`): ``"black"`` (pixel 0, default),
            ``"mean"`` (the Classifier's mean colour), ``"image_mean"``, a colour or a tensor;
            old name ``baseline``.
        progress: progress bar (old name ``progress_bar``).
    """
    validation.integer("n_masks", n_masks, minimum=1)
    p = validation.real("p", p, 0, 1, open_low=True, open_high=True)
    fill = fills.resolve(fill, allowed=("black", "mean", "image_mean"), default="black", baseline=baseline)
    n, c, H, W = x.shape
    _check_grid(grid, (H, W))
    fill_img = fills.fill(fill, x, clf, what="fill")
    # all random numbers are drawn first (n_masks × grid² values), so the masks do not depend
    # on batch_size or on the batch
    cells, shift_y, shift_x = _draw(n_masks, (H, W), grid, p, seeding.run_generator(seed, "rise.masks"))
    sal = torch.zeros(n, H * W, device=x.device, dtype=torch.float64)
    # masks per chunk: all images of the batch for each mask; if the batch alone exceeds
    # batch_size, images are split as well
    per_chunk = max(1, batch_size // n)
    img_chunk = min(n, batch_size)
    bar = _bar(n * n_masks, "rise", progress if progress_bar is None else progress_bar)
    # masks are made in blocks of several forward chunks (at most ~2^24 mask values) so that the
    # per-chunk work is only blend → forward → score
    block = per_chunk * max(1, min(-(-n_masks // per_chunk), (1 << 24) // (H * W * per_chunk)))
    with torch.no_grad():
        done = 0
        while done < n_masks:
            mb = min(block, n_masks - done)
            masks = _smooth(cells[done:done + mb], shift_y[done:done + mb], shift_x[done:done + mb], (H, W),
                            x.device).to(x.dtype)  # (mb, H, W)
            scores = torch.empty(mb, n, device=x.device, dtype=torch.float64)
            for ma in range(0, mb, per_chunk):
                m = min(per_chunk, mb - ma)
                for a in range(0, n, img_chunk):
                    b = min(a + img_chunk, n)
                    masked = torch.lerp(fill_img[a:b].unsqueeze(0), x[a:b].unsqueeze(0), masks[ma:ma + m, None, None])  # (m, B, C, H, W)
                    logits = clf.logits(masked.reshape(-1, c, H, W), batch_size=m * (b - a))
                    s = target_scores(logits, targets[a:b].repeat(m), "prob", check=False)
                    scores[ma:ma + m, a:b] = s.view(m, b - a).double()
                    bar.update(m * (b - a))
            sal += scores.t() @ masks.reshape(mb, -1).double()
            done += mb
    bar.close()
    maps = (sal / (n_masks * p)).to(torch.float32).view(n, H, W)
    return Explanation(maps=maps, targets=targets,
                       params={"n_masks": n_masks, "grid": grid, "p": p, "fill": fills.describe(fill)})
