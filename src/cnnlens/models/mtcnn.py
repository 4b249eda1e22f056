"""MTCNN's R-Net and O-Net (Zhang et al., 2016) in plain torch, plus face/non-face wrappers.

Written from the MTCNN paper's network figure, not from facenet-pytorch's code; parameter names
are chosen to match the state dicts that the PyPI package ``facenet-pytorch`` ships
(``data/rnet.pt``, ``data/onet.pt``), so they load with ``strict=True``.

The original MTCNN was trained in Caffe on transposed images; the weights of the first fully
connected layer therefore expect the conv feature map flattened in (W, H, C) order — we flatten
after ``permute(0, 3, 2, 1)`` (DESIGN.md, data table). Inputs are ordinary ``(N, 3, H, W)`` RGB,
normalised as ``(x·255 − 127.5) / 128`` (``mean=0.5, std=128/255`` in pixel space [0, 1]).

Output index 1 of the classification head is "face", index 0 "non-face" (softmax over the two
logits gives MTCNN's face probability as column 1): :data:`FACE_CLASS_NAMES`.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CnnlensError

__all__ = ["RNet", "ONet", "FaceClassifierNet", "FACE_CLASS_NAMES", "MTCNN_MEAN", "MTCNN_STD"]

#: Class order of the face heads (MTCNN's softmax column 1 is the face probability).
FACE_CLASS_NAMES: tuple[str, str] = ("non-face", "face")
#: Pixel-space normalisation equal to MTCNN's ``(x·255 − 127.5) / 128``.
MTCNN_MEAN: float = 0.5
MTCNN_STD: float = 128.0 / 255.0


def _flatten_caffe(x: torch.Tensor) -> torch.Tensor:
    """Flatten ``(N, C, H, W)`` in Caffe's transposed (W, H, C) order."""
    return x.permute(0, 3, 2, 1).contiguous().flatten(1)


class RNet(nn.Module):
    """MTCNN refinement network for 24×24 RGB crops.

    Returns ``(box_regression (N, 4), face_logits (N, 2))`` — raw logits, no softmax.
    """

    input_size: int = 24

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_caffe(x)))
        return self.dense5_2(x), self.dense5_1(x)


class ONet(nn.Module):
    """MTCNN output network for 48×48 RGB crops.

    Returns ``(box_regression (N, 4), landmarks (N, 10), face_logits (N, 2))`` — raw logits.
    """

    input_size: int = 48

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_caffe(x)))
        return self.dense6_2(x), self.dense6_3(x), self.dense6_1(x)


class FaceClassifierNet(nn.Module):
    """Face/non-face classifier around an :class:`RNet` or :class:`ONet`.

    Accepts normalised ``(N, 1|3, H, W)`` input of any size: a 1-channel input is repeated to 3
    channels, and the image is resized to the net's input size (24 for R-Net, 48 for O-Net) with
    bilinear interpolation (``align_corners=False``, antialias off — measured on ``lfw_faces``,
    it is at least as accurate as antialias or bicubic; see the zoo tests). Resizing is
    functional, so the last module producing a 4-D map is the net's last PReLU (3×3 maps),
    which ``feature_layer="auto"`` picks (docs/algorithms.md §1).

    Returns the two pre-softmax logits ``(N, 2)`` in :data:`FACE_CLASS_NAMES` order.
    """

    def __init__(self, net: RNet | ONet) -> None:
        super().__init__()
        self.net = net
        self.input_size = int(net.input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise CnnlensError(f"face nets take (N, 1|3, H, W) images; got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        size = self.input_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=False)
        return self.net(x)[-1]
