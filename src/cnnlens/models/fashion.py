"""Project-trained Fashion-MNIST CNNs (plain torch), shipped as package data by :mod:`cnnlens.zoo`.

The weights are trained by ``experiments/train_zoo.py`` on Debian's real Fashion-MNIST and
written as plain state dicts into ``cnnlens/weights/`` (docs/algorithms.md §3, §4, §5, §6.9; issue #7). Every
network takes *normalised* input ``(x − FASHION_MEAN) / FASHION_STD``; the zoo's
:class:`cnnlens.Classifier` applies that to pixel-space input in [0, 1] (§0–§1).

- :class:`FashionVGG` (``fashion_vgg``) — VGG-style, 10 classes, 1×28×28. ``features``:
  conv 3×3 1→32, ReLU, max-pool → 14×14; conv 32→64, ReLU, max-pool → 7×7; conv 64→128, ReLU;
  conv 128→**256**, ReLU → ``(N, 256, 7, 7)``. Head (``classifier``): max-pool 2 (functional, so
  that ``feature_layer="auto"`` resolves to ``features``) → flatten 2304 → linear 128 → **ReLU**
  → linear 10. The hidden ReLU layer makes the head piecewise linear with many regions (RI,
  §5); the 256 last-conv filters give the NeSy study F = 256 (§6.9).
- :func:`fashion_pair_seq` (``fashion_pair_seq``) — OVERVIEW's setting (§3): a plain
  ``nn.Sequential`` for a binary Fashion-MNIST pair at 1×128×128. Module names are plain indices
  (the Sequential *is* the model): ``0`` conv 1→8, ``1`` ReLU, ``2`` max-pool (→64²), ``3`` conv
  8→16, ``4`` ReLU, ``5`` max-pool (→32²), ``6`` conv 16→32, ``7`` ReLU, ``8`` max-pool (→16²),
  ``9`` conv 32→32 (**the last Conv2d**, Grad-CAM's layer), ``10`` ReLU, ``11`` max-pool (→8²,
  ``feature_layer="auto"``), ``12`` flatten, ``13`` linear 2048→64, ``14`` ReLU, ``15`` linear
  64→2.
- :class:`FashionDepthCNN` (``fashion_cnn_s`` / ``_m`` / ``_l``) — a depth family on the same
  task and input (10 classes, 1×28×28) for DA's cross-model MAR table (§3 MAR, §4):
  1, 2 and 4 conv layers with growing width; each ``features`` ends in a ReLU and the head
  max-pools functionally, so ``feature_layer="auto"`` resolves to ``features``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlensError

__all__ = [
    "FASHION_MEAN",
    "FASHION_STD",
    "FASHION_CLASS_NAMES",
    "FashionVGG",
    "FashionDepthCNN",
    "DEPTH_CONFIGS",
    "fashion_pair_seq",
    "PAIR_SEQ_SIZE",
    "FashionTaskCNN",
    "FASHION_TASKS",
    "TASK_SIZE",
]

#: Mean and std of Fashion-MNIST's 60000 training pixels in [0, 1] (computed by
#: ``experiments/train_zoo.py``'s data pipeline; rounded to 4 digits).
FASHION_MEAN: float = 0.2860
FASHION_STD: float = 0.3530
FASHION_CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
#: Input side of :func:`fashion_pair_seq` (28×28 images upsampled bilinearly in the data pipeline).
PAIR_SEQ_SIZE: int = 128


def _check(x: torch.Tensor, name: str, size: int) -> None:
    if x.dim() != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != (size, size):
        raise CnnlensError(f"{name} takes (N, 1, {size}, {size}) images; got shape {tuple(x.shape)}")


def _conv_stack(spec: list[int | str], in_channels: int = 1) -> nn.Sequential:
    """3×3 conv (padding 1) + ReLU per integer, ``nn.MaxPool2d(2)`` per ``"M"``."""
    layers: list[nn.Module] = []
    c = in_channels
    for item in spec:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, int(item), 3, padding=1), nn.ReLU()]
            c = int(item)
    return nn.Sequential(*layers)


class FashionVGG(nn.Module):
    """VGG-style Fashion-MNIST CNN: 4 conv layers (last has 256 filters) + FC-ReLU-FC head.

    Input ``(N, 1, 28, 28)`` normalised; output ``(N, num_classes)`` logits. ``features`` yields
    ``(N, 256, 7, 7)`` (post-ReLU of the last conv). Parameter names: ``features.{0,3,6,8}``
    (convs), ``classifier.{0,2}`` (linears).
    """

    CONFIG: tuple[int | str, ...] = (32, "M", 64, "M", 128, 256)

    def __init__(self, num_classes: int = 10, hidden: int = 128) -> None:
        super().__init__()
        self.features = _conv_stack(list(self.CONFIG))
        self.classifier = nn.Sequential(
            nn.Linear(256 * 3 * 3, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, "FashionVGG", 28)
        psi = self.features(x)
        return self.classifier(torch.flatten(F.max_pool2d(psi, 2), 1))


#: (conv/pool config, hidden FC width) per depth-family member; all end at 7×7 or 14×14 maps.
DEPTH_CONFIGS: dict[str, tuple[tuple[int | str, ...], int]] = {
    "s": ((16,), 64),                       # 1 conv,  28² → pooled 14²
    "m": ((32, "M", 64), 64),               # 2 convs, 14² → pooled 7²
    "l": ((16, "M", 32, 64, 64), 128),      # 4 convs, 14² → pooled 7²
}


class FashionDepthCNN(nn.Module):
    """One member (``"s"``, ``"m"``, ``"l"``) of the Fashion-MNIST depth family (§4 Table 1).

    ``features`` = the conv stack of :data:`DEPTH_CONFIGS` (ends in a ReLU); the head max-pools
    by 2 (functional), flattens, then linear → ReLU → linear. Input ``(N, 1, 28, 28)`` normalised.
    """

    def __init__(self, size: str, num_classes: int = 10) -> None:
        super().__init__()
        if size not in DEPTH_CONFIGS:
            raise CnnlensError(f"unknown depth-family size {size!r}; choose one of "
                               f"{', '.join(DEPTH_CONFIGS)}")
        config, hidden = DEPTH_CONFIGS[size]
        self.size = size
        self.features = _conv_stack(list(config))
        side = 28 // (2 ** config.count("M")) // 2
        channels = [c for c in config if c != "M"][-1]
        self.classifier = nn.Sequential(
            nn.Linear(int(channels) * side * side, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, f"FashionDepthCNN({self.size!r})", 28)
        return self.classifier(torch.flatten(F.max_pool2d(self.features(x), 2), 1))


def fashion_pair_seq(num_classes: int = 2) -> nn.Sequential:
    """OVERVIEW-style plain ``nn.Sequential`` for a binary Fashion-MNIST pair at 1×128×128.

    Four conv(3×3, padding 1)/ReLU/max-pool blocks with 8-16-32-32 channels (128² → 8²), then
    flatten, linear 2048→64, ReLU, linear 64→``num_classes``. Module names are plain indices;
    the last ``Conv2d`` is ``"9"``, ``feature_layer="auto"`` resolves to ``"11"`` (the last
    max-pool, ``(N, 32, 8, 8)``).
    """
    return nn.Sequential(
        *_conv_stack([8, "M", 16, "M", 32, "M", 32, "M"]),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
    )


# --- RI per-task models (issue 25) -------------------------------------------------------------
#: Input side of :class:`FashionTaskCNN` (28×28 Fashion-MNIST upsampled bilinearly).
TASK_SIZE: int = 64
#: The RI Table 1 tasks: zoo model name → Fashion-MNIST classes (relabelled 0…k−1 in this order).
FASHION_TASKS: dict[str, tuple[int, ...]] = {
    "fashion_task_tshirt_shirt": (0, 6),
    "fashion_task_pullover_coat": (2, 4),
    "fashion_task_sneaker_boot": (7, 9),
    "fashion_task4": (0, 2, 4, 6),
}


class FashionTaskCNN(nn.Module):
    """One model per RI task (RI §6.2: one network per data set; issue 25), 1×64×64 input.

    ``features`` (ψ, ``feature_layer="features"``): conv 3×3 1→8, ReLU, max-pool (→32²); conv
    8→16, ReLU, max-pool (→16²); conv 16→32, ReLU, max-pool (→8²); conv 32→32, ReLU →
    ``(N, 32, 8, 8)``. Head ``classifier`` (G): flatten 2048 → linear 64 → **ReLU** → linear
    ``num_classes``. G is piecewise linear and reads every entry of ψ (no pooling between ψ and
    the first linear layer), so the Eq. 2 boundaries are exact hyperplanes over the whole map.
    """

    def __init__(self, num_classes: int = 2, hidden: int = 64) -> None:
        super().__init__()
        self.features = _conv_stack([8, "M", 16, "M", 32, "M", 32])
        self.classifier = nn.Sequential(
            nn.Linear(32 * 8 * 8, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, "FashionTaskCNN", TASK_SIZE)
        return self.classifier(torch.flatten(self.features(x), 1))
