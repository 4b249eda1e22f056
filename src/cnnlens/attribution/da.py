"""Dynamic Ablation as attribution methods ``da_pos`` / ``da_neg`` (docs/algorithms.md §4): the normalised cam of
:func:`cnnlens.dynamic_ablation` as an :class:`~cnnlens.Explanation`, so DA joins ``compare`` and
the metrics."""
from __future__ import annotations

from typing import Any

import torch

from ..ablation import dynamic_ablation
from ..classifier import Classifier
from ..explanation import Explanation
from . import register

__all__ = ["da_pos", "da_neg"]

_DA_PARAMS = ("iterations", "k", "alpha_step", "fc", "superpixels", "sequential", "speculation", "progress")


def _explain_da(rule: str, clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int,
                batch_size: int, first_index: int, **params: Any) -> Explanation:
    res = dynamic_ablation(clf, x, rule=rule, seed=seed, batch_size=batch_size, target=targets,
                           first_index=first_index, **params)
    return res.to_explanation()


@register("da_pos", stochastic=True, params=_DA_PARAMS,
          description="Dynamic Ablation, Pos-R: minimal region that keeps the class (§4)")
def da_pos(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int,
           layer: Any = None, first_index: int = 0, **params: Any) -> Explanation:
    """Dynamic Ablation with the minimal-positive rule; map = normalised cam (§4).

    The target must be the predicted class (DA explains the model's own decision).

    Args:
        **params: options of :func:`cnnlens.dynamic_ablation` — ``iterations=500``, ``k=4``,
            ``alpha_step=0.2``, ``fc=0.95``, ``superpixels=500``, ``sequential=False``,
            ``speculation``, ``progress``.
    """
    return _explain_da("pos", clf, x, targets, seed=seed, batch_size=batch_size, first_index=first_index, **params)


@register("da_neg", stochastic=True, params=_DA_PARAMS,
          description="Dynamic Ablation, Neg-R: minimal region whose removal changes the class (§4)")
def da_neg(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int,
           layer: Any = None, first_index: int = 0, **params: Any) -> Explanation:
    """Dynamic Ablation with the minimal-negative rule; map = normalised cam (§4)."""
    return _explain_da("neg", clf, x, targets, seed=seed, batch_size=batch_size, first_index=first_index, **params)
