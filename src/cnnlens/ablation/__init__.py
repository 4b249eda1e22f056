"""Rule-guided Dynamic Ablation (SPEC §4): :func:`dynamic_ablation` → :class:`AblationResult`,
and the attribution methods ``da_pos`` / ``da_neg`` (the normalised cam as an
:class:`~cnnlens.Explanation`, so DA joins ``compare`` and the metrics).

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    ...                     nn.Flatten(), nn.Linear(4, 3)).eval()
    >>> clf = cnnlens.Classifier(net)
    >>> res = cnnlens.dynamic_ablation(clf, torch.rand(2, 1, 12, 12), iterations=20, superpixels=0)
    >>> res.mask.shape, res.mar.shape, bool((res.mar > 0).all())
    (torch.Size([2, 12, 12]), torch.Size([2]), True)
    >>> res.rule_text[0].startswith("if region P of x is present")
    True
"""
from __future__ import annotations

from typing import Any

import torch

from ..attribution import register
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation
from .core import AblationResult, dynamic_ablation, rule_text

__all__ = ["AblationResult", "dynamic_ablation", "rule_text"]

_DA_PARAMS = ("iterations", "k", "alpha_step", "fc", "superpixels", "sequential", "speculation", "progress")


def _explain_da(rule: str, clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int,
                batch_size: int, layer: Any, **params: Any) -> Explanation:
    unknown = sorted(set(params) - set(_DA_PARAMS))
    if unknown:
        raise CnnlensError(f"da_{rule}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(_DA_PARAMS)}")
    res = dynamic_ablation(clf, x, rule=rule, seed=seed, batch_size=batch_size, target=targets, **params)
    return res.to_explanation()


@register("da_pos", stochastic=True, description="Dynamic Ablation, Pos-R: minimal region that keeps the class (SPEC §4)")
def da_pos(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int,
           layer: Any = None, **params: Any) -> Explanation:
    """Dynamic Ablation with the minimal-positive rule; map = normalised cam (SPEC §4).

    Params: ``iterations=500, k=4, alpha_step=0.2, fc=0.95, superpixels=500, sequential=False``.
    The target must be the predicted class (DA explains the model's own decision).
    """
    return _explain_da("pos", clf, x, targets, seed=seed, batch_size=batch_size, layer=layer, **params)


@register("da_neg", stochastic=True, description="Dynamic Ablation, Neg-R: minimal region whose removal changes the class (SPEC §4)")
def da_neg(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int,
           layer: Any = None, **params: Any) -> Explanation:
    """Dynamic Ablation with the minimal-negative rule; map = normalised cam (SPEC §4)."""
    return _explain_da("neg", clf, x, targets, seed=seed, batch_size=batch_size, layer=layer, **params)
