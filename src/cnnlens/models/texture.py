"""A small CNN for ``texture_scenes`` (docs/algorithms.md §6.8, §6.9): the NeSy demo's network.

``nn.Sequential``: conv 3×3 (3→16) → ReLU → max-pool 2 → conv 3×3 (16→32) → ReLU → max-pool 2
→ conv 3×3 (32→64) → ReLU → global average pool → flatten → linear 64→4. Module names are plain
indices: the last conv is ``"6"``, its ReLU ``"7"`` (the NeSy layer: 64 filters, 16×16 at 64²
input). Input: ``(N, 3, H, W)`` RGB in [0, 1], no normalisation (the zoo's Classifier uses mean 0,
std 1). The zoo's ``texture_cnn`` (cross-entropy) and ``texture_cnn_ts3`` (its TS3 fine-tune with
the sparsity loss) are trained by ``experiments/train_zoo.py``.
"""
from __future__ import annotations

from torch import nn

__all__ = ["texture_cnn"]


def texture_cnn(n_classes: int = 4) -> nn.Sequential:
    """The network described in the module docstring (untrained)."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes))
