"""Toy classifiers whose decision depends only on one known square (SPEC §4 / §2 checks)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def square(size: int, top: int, left: int, side: int) -> torch.Tensor:
    q = torch.zeros(size, size, dtype=torch.bool)
    q[top : top + side, left : left + side] = True
    return q


class SquareMeanNet(nn.Module):
    """Class 1 iff the mean pixel value inside the square Q exceeds ``thresh`` (class 0 logit 0).

    On an all-ones image, Pos-R must keep more than ``thresh`` of Q and nothing else matters."""

    def __init__(self, q: torch.Tensor, thresh: float = 0.9) -> None:
        super().__init__()
        self.register_buffer("w", q.float() / q.sum())
        self.thresh = thresh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 40.0 * ((x[:, 0] * self.w).sum(dim=(1, 2)) - self.thresh)
        return torch.stack([torch.zeros_like(z), z], dim=1)


class SquareTextureNet(nn.Module):
    """Class-1 logit = high-frequency energy inside Q (blur removes it), class 0 a constant."""

    def __init__(self, q: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w", q.float() / q.sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hf = x[:, :1] - F.avg_pool2d(x[:, :1], 3, 1, 1, count_include_pad=False)
        z = 50.0 * ((hf[:, 0] ** 2) * self.w).sum(dim=(1, 2))
        return torch.stack([torch.full_like(z, 0.5), z], dim=1)
