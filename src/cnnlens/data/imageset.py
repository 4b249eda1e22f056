"""The image-set type every data source returns, and the ImageNet-style resize transform."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import CnnlensError

__all__ = ["ImageDataset", "resize_center_crop"]


@dataclass(eq=False)
class ImageDataset:
    """A labelled (or unlabelled) batch of images in pixel space (docs/algorithms.md §9).

    Attributes:
        name: the dataset's zoo name (``"mnist"``).
        split: which split this is (``"test"``).
        images: ``(N, C, H, W)`` float32 in [0, 1].
        labels: ``(N,)`` int64 class indices; −1 where unlabelled.
        class_names: names of the classes, in label order (empty when unlabelled).
        names: one name per image (``"chelsea"``, ``"mnist5k_0042"``).
        skipped: unreadable files that were skipped (image folders with ``skip_bad=True``).
    """

    name: str
    split: str
    images: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    class_names: list[str]
    names: list[str] = field(repr=False)
    skipped: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        self.class_names = list(self.class_names)
        self.names = list(self.names)
        if self.images.dim() != 4 or self.labels.shape != (n,) or len(self.names) != n:
            raise CnnlensError(
                f"dataset {self.name!r}: inconsistent shapes images {tuple(self.images.shape)}, "
                f"labels {tuple(self.labels.shape)}, {len(self.names)} names"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (f"ImageDataset(name={self.name!r}, split={self.split!r}, "
                f"images={tuple(self.images.shape)}, classes={len(self.class_names)})")

    def subset(self, index: Sequence[int] | torch.Tensor | slice) -> ImageDataset:
        """The images at ``index`` (a slice, index list or boolean mask) as a new dataset."""
        idx = self._subset_index(index)
        return ImageDataset(self.name, self.split, self.images[idx], self.labels[idx],
                            self.class_names, [self.names[i] for i in idx.tolist()])

    def _subset_index(self, index: Sequence[int] | torch.Tensor | slice) -> torch.Tensor:
        """``index`` as non-negative int64 positions; a mask of the wrong length, fractional or
        out-of-range indices are refused (never truncated or wrapped silently)."""
        n = len(self)
        if isinstance(index, slice):
            return torch.arange(n)[index]
        try:
            idx = torch.as_tensor(index).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise CnnlensError(f"subset index must be a slice, a list of image indices or a boolean mask, "
                               f"got {type(index).__name__}") from None
        if idx.dtype == torch.bool:
            if idx.numel() != n:
                raise CnnlensError(f"subset mask has {idx.numel()} entries for {n} images")
            return idx.nonzero().flatten()
        if idx.numel() == 0:  # [] is float32 to torch; an empty selection is an empty dataset
            return idx.long()
        if idx.is_floating_point() or idx.is_complex():
            raise CnnlensError(f"subset index must hold whole image indices, got dtype {idx.dtype}")
        if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
            bad = idx[(idx < -n) | (idx >= n)][:8].tolist()
            raise CnnlensError(f"subset index {bad} out of range for {n} images")
        return idx.long() % max(n, 1)


def resize_center_crop(image: torch.Tensor, size: int | tuple[int, int], resize_to: int | None = None,
                       interpolation: str = "bilinear") -> torch.Tensor:
    """Resize so the short side is ``resize_to`` (bilinear, antialiased), then centre-crop to
    ``size`` — with ``size=224, resize_to=256`` pixel-identical to torchvision's
    ``Resize(256)`` + ``CenterCrop(224)`` on float tensors. ``image`` is ``(C, H, W)`` or
    ``(N, C, H, W)``; ``resize_to=None`` resizes the short side to the crop's long side. Values
    are clamped to [0, 1] (antialiased bilinear can overshoot slightly). ``interpolation``
    ``"bicubic"`` (antialiased too) is the TensorFlow-trained EfficientNet-Lite recipe.

    ``uint8`` input (what ``torchvision.io.read_image`` returns) is divided by 255 first, as every
    loader does: the result is always floats in [0, 1]. Float input must already be in [0, 1]."""
    from .. import validation

    if not isinstance(image, torch.Tensor):
        raise CnnlensError(f"resize_center_crop takes a torch.Tensor, got {type(image).__name__}")
    if isinstance(size, int):
        th = tw = validation.integer("size", size, minimum=1)
    elif isinstance(size, Sequence) and len(size) == 2:
        th, tw = (validation.integer("size", s, minimum=1) for s in size)
    else:
        raise CnnlensError(f"size must be an int or (height, width), got {size!r}")
    resize_to = validation.integer("resize_to", resize_to, minimum=1, allow_none=True)
    if interpolation not in ("bilinear", "bicubic"):
        raise CnnlensError(f"interpolation must be 'bilinear' or 'bicubic', got {interpolation!r}")
    if image.dim() not in (3, 4):
        raise CnnlensError(f"resize_center_crop takes (C, H, W) or (N, C, H, W), got {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    elif not image.is_floating_point():
        raise CnnlensError(f"resize_center_crop takes uint8 (0-255) or float images in [0, 1], got dtype {image.dtype}")
    elif image.numel():
        if not bool(torch.isfinite(image).all()):
            raise CnnlensError("image contains NaN or inf values")
        lo, hi = float(image.min()), float(image.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise CnnlensError(f"float images must be in [0, 1], got values in [{lo:g}, {hi:g}]"
                               + ("; divide by 255" if hi > 1.5 else ""))
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    h, w = x.shape[-2:]
    short = resize_to if resize_to is not None else max(th, tw)
    nh, nw = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
    if th > nh or tw > nw:
        raise CnnlensError(f"crop {(th, tw)} is larger than the resized image {(nh, nw)}")
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode=interpolation, align_corners=False, antialias=True)
    top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
    x = x[..., top : top + th, left : left + tw].clamp(0.0, 1.0).contiguous()
    return x if batched else x[0]
