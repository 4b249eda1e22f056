"""Complexity of a map: sparseness (Gini index) and complexity (entropy) (docs/algorithms.md §3).

Both read ``a = |map|`` over the map's ``n`` cells (at the map's own resolution):

- **sparseness** (Chalasani et al. 2020, "Concise explanations of neural networks using
  adversarial training", ICML; the Gini index of Hurley & Rickard 2009): with ``a_(1) ≤ … ≤ a_(n)``
  sorted ascending, ``G = Σ_k (2k − n − 1) a_(k) / (n Σ_k a_k)``; 0 for a constant map, → 1 for a
  single nonzero cell (``(n − 1)/n``). Higher is sparser (↑).
- **complexity** (Bhatt, Weller & Moura 2020, "Evaluating and aggregating feature-based model
  explanations", IJCAI): the entropy ``−Σ_k p_k ln p_k`` of ``p = a / Σ a`` (``0 ln 0 = 0``);
  ``ln n`` for a constant map, 0 for a single nonzero cell. Lower is simpler (↓).

An all-zero map is treated as the constant map it is (Gini 0, entropy ``ln n``) and counted in
``n_constant``.

Example::

    >>> import torch
    >>> from cnnlens.metrics.complexity import gini, entropy
    >>> one = torch.zeros(1, 2, 2); one[0, 0, 0] = 1.0
    >>> gini(torch.ones(1, 2, 2))[0].tolist(), gini(one)[0].tolist(), entropy(one)[0].tolist()
    ([0.0], [0.75], [0.0])
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import CnnlensError
from ._common import MetricResult
from .registry import register

if TYPE_CHECKING:
    from .context import MetricContext

__all__ = ["gini", "entropy"]


def _abs_flat(maps: Any) -> torch.Tensor:
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(maps)
    if not isinstance(maps, torch.Tensor) or maps.dim() < 2:
        raise CnnlensError("maps must be a (N, ...) tensor with one map per row")
    return maps.detach().reshape(maps.shape[0], -1).double().abs()


def gini(maps: Any) -> tuple[torch.Tensor, int]:
    """Gini index of ``|map|`` per image and the count of all-zero maps (scored 0)."""
    a = _abs_flat(maps)
    n = a.shape[1]
    a_sorted = torch.sort(a, dim=1).values
    k = torch.arange(1, n + 1, dtype=a.dtype, device=a.device)
    total = a.sum(1)
    zero = total == 0
    g = ((2 * k - n - 1) * a_sorted).sum(1) / (n * torch.where(zero, torch.ones_like(total), total))
    g[zero] = 0.0
    return g.cpu(), int(zero.sum())


def entropy(maps: Any) -> tuple[torch.Tensor, int]:
    """Entropy (natural log) of ``|map| / Σ|map|`` per image and the count of all-zero maps
    (scored ``ln n``, the constant map's value)."""
    a = _abs_flat(maps)
    n = a.shape[1]
    total = a.sum(1, keepdim=True)
    zero = total.squeeze(1) == 0
    p = a / torch.where(total == 0, torch.ones_like(total), total)
    h = -torch.where(p > 0, p * torch.log(torch.where(p > 0, p, torch.ones_like(p))), torch.zeros_like(p)).sum(1) + 0.0
    h[zero] = math.log(n)
    return h.cpu(), int(zero.sum())


@register("sparseness", direction="↑", order=30,
          description="Gini index of |map| (Chalasani et al. 2020): 0 uniform, near 1 a single cell")
def _sparseness(ctx: MetricContext) -> MetricResult:
    ctx.params_of("sparseness", {})
    values, n_zero = gini(ctx.maps)
    return ctx.result(values, {**ctx.common, "definition": "Gini index of |map|: Σ (2k − n − 1) a_(k) / (n Σ a)",
                               "res": list(ctx.maps.shape[1:]), "all_zero_map": "0, counted in n_constant"}, n_zero)


@register("complexity", direction="↓", order=31,
          description="entropy of |map| / Σ|map| (Bhatt et al. 2020): 0 a single cell, ln n uniform")
def _complexity(ctx: MetricContext) -> MetricResult:
    ctx.params_of("complexity", {})
    values, n_zero = entropy(ctx.maps)
    return ctx.result(values, {**ctx.common, "definition": "−Σ p ln p, p = |map| / Σ|map| (natural log)",
                               "res": list(ctx.maps.shape[1:]), "all_zero_map": "ln n, counted in n_constant"},
                      n_zero)
