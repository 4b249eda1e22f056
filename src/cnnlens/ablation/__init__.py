"""Rule-guided Dynamic Ablation (docs/algorithms.md §4): :func:`dynamic_ablation` → :class:`AblationResult`,
also the attribution methods ``da_pos`` / ``da_neg`` (``cnnlens/attribution/da.py``: the normalised
cam as an :class:`~cnnlens.Explanation`, so DA joins ``compare`` and the metrics).

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

from .core import AblationResult, dynamic_ablation, rule_text

__all__ = ["AblationResult", "dynamic_ablation", "rule_text"]
