"""MAR, the minimal area ratio of a Dynamic Ablation region: |m| / (H·W) (DA docs/algorithms.md §4; §3, §4)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..errors import CnnlensError
from ._common import MetricResult
from .registry import register

if TYPE_CHECKING:
    from .context import MetricContext

__all__ = ["mar"]


@register("mar", direction="↓", needs=("ablation",), order=8,
          description="minimal area ratio |m| / (H*W) of a Dynamic Ablation region (DA)")
def mar(ctx: MetricContext) -> MetricResult:
    mask = ctx.ablation_mask
    if mask is None:
        raw = ctx.raw_maps
        if isinstance(raw, torch.Tensor) and raw.dtype == torch.bool:
            mask = raw
        else:
            raise CnnlensError("mar needs a Dynamic Ablation result (its .mask) or a boolean (N, H, W) mask")
    m = mask.reshape(mask.shape[0], -1).double()
    return ctx.result(m.mean(1), {**ctx.common, "definition": "|m| / (H*W)"}, 0)
