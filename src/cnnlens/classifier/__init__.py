"""The model wrapper every part of cnnlens shares (docs/algorithms.md §1, §9).

:class:`Classifier` is the only place that knows about hooks, normalisation, output selection and
the feature layer. Images enter in pixel space ``[0, 1]`` as ``(N, C, H, W)`` float tensors; the
mean/std normalisation happens inside (§0), so every perturbation made by an explainer or a
metric stays in pixel space.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from cnnlens import Classifier
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
    ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    >>> clf = Classifier(net, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    >>> x = torch.rand(2, 3, 16, 16)
    >>> clf.logits(x).shape
    torch.Size([2, 2])
    >>> clf.features(x).shape, clf.feature_layer_name
    (torch.Size([2, 4, 12, 12]), '3')
    >>> bool(torch.allclose(clf.head(x, clf.features(x)), clf.logits(x)))
    True
"""
from __future__ import annotations

from .core import Classifier
from .forward import channels_last

__all__ = ["Classifier", "channels_last"]
