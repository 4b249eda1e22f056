"""Localisation against ground-truth masks: pointing game, relevance mass and rank accuracy (docs/algorithms.md §3).

Each takes the explanation's maps and one binary mask ``M`` per image (``evaluate(masks=...)``,
nonzero = inside; at image resolution, maps coarser than the images are upsampled bilinearly):

- **pointing game** (Zhang et al. 2018, "Top-down neural attention by excitation backprop",
  IJCV 126): 1 if the map's maximum lies in ``M`` (optionally: within ``tolerance`` pixels of
  it, Zhang et al. use 15 px), else 0. Tied maxima: a hit if **any** of them lies in ``M``.
- **relevance mass accuracy** (Arras, Osman & Samek 2022, "CLEVR-XAI", Information Fusion 81):
  ``RMA = Σ_{p ∈ M} max(R_p, 0) / Σ_p max(R_p, 0)``, the share of the positive relevance inside.
- **relevance rank accuracy** (same paper): with ``K = |M|``, the share of the ``K``
  highest-valued pixels that lie in ``M``; ties are broken by the shared seeded permutation of §3.

Undefined values are set to 0 and counted in ``n_constant`` (as the other metrics do, never NaN):
a constant map (an all-zero one included) for the pointing game and rank accuracy — it points at
nothing, and "any tied maximum" would otherwise make it a hit everywhere —, and a map without
positive relevance for the mass accuracy. An empty mask is an error (the metrics are undefined for
it): one line naming the first such image.

Example::

    >>> import torch
    >>> from cnnlens.metrics.localisation import pointing_game, relevance_mass_accuracy
    >>> masks = torch.zeros(1, 4, 4, dtype=torch.bool); masks[0, :2, :2] = True
    >>> pointing_game(masks.float(), masks)[0].tolist(), relevance_mass_accuracy(masks.float(), masks)[0].tolist()
    ([1.0], [1.0])
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import validation
from ..errors import CnnlensError
from ._common import MetricResult, rank_of, tie_break_order, to_size
from .registry import register

if TYPE_CHECKING:
    from .context import MetricContext

__all__ = ["pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy", "check_masks"]


def check_masks(masks: Any, n: int, size: tuple[int, int]) -> torch.Tensor:
    """Validate ground-truth masks for ``n`` images of ``size``: a ``(N, H, W)`` or ``(N, 1, H, W)``
    tensor or array, nonzero = inside; returns a bool ``(N, H, W)`` tensor. Every mask must have
    at least one pixel inside."""
    if isinstance(masks, np.ndarray):
        masks = torch.from_numpy(masks)
    if not isinstance(masks, torch.Tensor):
        raise CnnlensError(f"masks must be a (N, H, W) tensor or array, got {type(masks).__name__}")
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise CnnlensError(f"masks must have shape (N, H, W), got {tuple(masks.shape)}")
    if masks.shape[0] != n:
        raise CnnlensError(f"masks has {masks.shape[0]} masks for {n} images; give one mask per image")
    if tuple(masks.shape[1:]) != tuple(size):
        raise CnnlensError(f"masks are {tuple(masks.shape[1:])} but the images are {tuple(size)}; give masks at image resolution")
    if masks.is_floating_point() and not bool(torch.isfinite(masks).all()):
        raise CnnlensError("masks contain NaN or inf values")
    m = masks != 0
    empty = (~m.reshape(n, -1).any(1)).nonzero().flatten().tolist()
    if empty:
        raise CnnlensError(f"mask of image {empty[0]} is empty ({len(empty)} of {n} masks); localisation is undefined "
                           "without a ground-truth region: leave those images out")
    return m


def _prepare(maps: Any, masks: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 maps at the masks' resolution and bool masks, both flattened ``(N, H·W)``."""
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(maps)
    if not isinstance(maps, torch.Tensor) or maps.dim() not in (3, 4):
        raise CnnlensError("maps must be a (N, h, w) tensor")
    if maps.dim() == 4:
        maps = maps[:, 0]
    if isinstance(masks, (torch.Tensor, np.ndarray)) and masks.ndim >= 3:
        size = tuple(masks.shape[-2:])
    else:
        size = tuple(maps.shape[1:])
    m = check_masks(masks, maps.shape[0], size).to(maps.device)  # type: ignore[arg-type]
    full = to_size(maps.float(), size, "bilinear").double()  # type: ignore[arg-type]
    n = full.shape[0]
    return full.reshape(n, -1), m.reshape(n, -1)


def _constant(flat: torch.Tensor) -> torch.Tensor:
    return flat.amax(1) == flat.amin(1)


def _dilate(masks: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Masks ``(N, H, W)`` grown by every pixel within Euclidean distance ``tolerance``."""
    r = int(np.floor(tolerance))
    if r < 1:
        return masks
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disc = ((yy * yy + xx * xx) <= tolerance * tolerance).float().to(masks.device)[None, None]
    grown = F.conv2d(masks.float().unsqueeze(1), disc, padding=r)
    return grown.squeeze(1) > 0.5


def pointing_game(maps: Any, masks: Any, tolerance: float = 0.0) -> tuple[torch.Tensor, int]:
    """Pointing game per image (Zhang et al. 2018): ``(hits (N,) float64 0/1, n_constant)``.

    A hit when a pixel holding the map's maximum (any of tied ones) lies in the mask grown by
    ``tolerance`` pixels (Euclidean; 0 = the mask itself). A constant map scores 0 and is counted."""
    tolerance = validation.real("tolerance", tolerance, 0, None, hint="pixels around the mask that still count")
    flat, m = _prepare(maps, masks)
    if tolerance >= 1:
        size = tuple(masks.shape[-2:])
        m = _dilate(m.reshape(-1, *size), tolerance).reshape(m.shape[0], -1)
    at_max = flat == flat.amax(1, keepdim=True)
    hit = (at_max & m).any(1).double()
    const = _constant(flat)
    hit[const] = 0.0
    return hit.cpu(), int(const.sum())


def relevance_mass_accuracy(maps: Any, masks: Any) -> tuple[torch.Tensor, int]:
    """Relevance mass accuracy per image (Arras et al. 2022): ``Σ_M R⁺ / Σ R⁺`` and the count of
    maps without positive relevance (scored 0)."""
    flat, m = _prepare(maps, masks)
    pos = flat.clamp_min(0.0)
    total = pos.sum(1)
    inside = (pos * m).sum(1)
    none = total == 0
    rma = torch.where(none, torch.zeros_like(total), inside / torch.where(none, torch.ones_like(total), total))
    return rma.cpu(), int(none.sum())


def relevance_rank_accuracy(maps: Any, masks: Any, seed: int = 0) -> tuple[torch.Tensor, int]:
    """Relevance rank accuracy per image (Arras et al. 2022): ``|top-K ∩ M| / K`` with ``K = |M|``,
    ties broken by the seeded permutation shared by every map (§3); a constant map scores 0 and is
    counted."""
    flat, m = _prepare(maps, masks)
    k = m.sum(1, keepdim=True)
    rank = rank_of(tie_break_order(flat, int(seed)))
    rra = ((rank < k) & m).sum(1).double() / k.squeeze(1).double()
    const = _constant(flat)
    rra[const] = 0.0
    return rra.cpu(), int(const.sum())


def _masks_of(ctx: MetricContext) -> torch.Tensor:
    return check_masks(ctx.need("masks"), ctx.x.shape[0], tuple(ctx.x.shape[2:]))


_MAPS_NOTE = "maps bilinearly upsampled to the masks' (image) resolution when coarser; masks: nonzero = inside"


@register("pointing_game", direction="↑", needs=("maps", "masks"), order=20,
          description="1 if the map's maximum lies in the ground-truth mask (Zhang et al. 2018)")
def _pointing_game(ctx: MetricContext) -> MetricResult:
    p = ctx.params_of("pointing_game", {"tolerance": 0.0})
    values, n_const = pointing_game(ctx.maps, _masks_of(ctx), p["tolerance"])
    return ctx.result(values, {**ctx.common, **p, "ties": "a hit if any tied maximum lies in the mask",
                               "constant_map": "0, counted in n_constant", "resolution": _MAPS_NOTE,
                               "definition": "1[argmax_p map_p ∈ M dilated by tolerance px] (Zhang et al. 2018)"},
                      n_const)


@register("relevance_mass_accuracy", direction="↑", needs=("maps", "masks"), aliases=("rma",), order=21,
          description="share of the positive relevance inside the ground-truth mask (Arras et al. 2022)")
def _rma(ctx: MetricContext) -> MetricResult:
    ctx.params_of("relevance_mass_accuracy", {})
    values, n_none = relevance_mass_accuracy(ctx.maps, _masks_of(ctx))
    return ctx.result(values, {**ctx.common, "definition": "Σ_M max(R, 0) / Σ max(R, 0) (Arras et al. 2022)",
                               "no_positive_relevance": "0, counted in n_constant", "resolution": _MAPS_NOTE},
                      n_none)


@register("relevance_rank_accuracy", direction="↑", needs=("maps", "masks"), aliases=("rra",), order=22,
          description="share of the |M| highest-ranked pixels inside the ground-truth mask M (Arras et al. 2022)")
def _rra(ctx: MetricContext) -> MetricResult:
    ctx.params_of("relevance_rank_accuracy", {})
    values, n_const = relevance_rank_accuracy(ctx.maps, _masks_of(ctx), ctx.options.seed)
    return ctx.result(values, {**ctx.common, "definition": "|top-K(R) ∩ M| / K, K = |M| (Arras et al. 2022)",
                               "ties": "shared seeded permutation (metrics.tie_break)",
                               "constant_map": "0, counted in n_constant", "resolution": _MAPS_NOTE},
                      n_const)
