"""The :class:`Explanation` result type and its explicit post-processing steps (SPEC §0, §2).

An explanation keeps raw values: ``maps`` ``(N, H, W)`` at input resolution, optionally the
layer-resolution map and the full ``(N, C, H, W)`` pixel attribution. Normalisation, ReLU and
upsampling are explicit calls, never hidden.

Example::

    >>> import torch
    >>> from cnnlens import Explanation
    >>> e = Explanation(maps=torch.tensor([[[0., 2.], [4., 8.]]]), targets=torch.tensor([3]),
    ...                 method="demo", params={"seed": 0})
    >>> e.normalized().maps[0]
    tensor([[0.0000, 0.2500],
            [0.5000, 1.0000]])
    >>> e.overlay(torch.zeros(1, 3, 2, 2)).shape
    (1, 2, 2, 3)
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._io import atomic_write_bytes
from .errors import CnnlensError

__all__ = ["Explanation", "minmax_normalize", "upsample", "jet"]


def minmax_normalize(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation of ``(N, H, W)`` maps to ``[0, 1]``; a constant map → zeros."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(flat))
    return out.reshape(maps.shape)


def upsample(maps: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize ``(N, h, w)`` maps to ``size`` = ``(H, W)`` (bilinear, ``align_corners=False``)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode=mode, align_corners=False).squeeze(1)


def jet(values: np.ndarray) -> np.ndarray:
    """The 'jet' colour map: values in ``[0, 1]`` → RGB floats in ``[0, 1]`` (shape ``(..., 3)``)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # red, green, blue peaks
    return np.clip(1.5 - np.abs(4.0 * (v - centres)), 0.0, 1.0)


def _to_numpy_images(images: torch.Tensor | np.ndarray, n: int, size: tuple[int, int]) -> np.ndarray:
    imgs = images.detach().float().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(images).float()
    if imgs.dim() == 3:
        imgs = imgs.unsqueeze(0)
    if imgs.dim() != 4 or imgs.shape[0] != n:
        raise CnnlensError(f"images must have shape ({n}, C, H, W), got {tuple(imgs.shape)}")
    if imgs.shape[1] == 1:
        imgs = imgs.expand(-1, 3, -1, -1)
    elif imgs.shape[1] != 3:
        raise CnnlensError(f"images must have 1 or 3 channels, got {imgs.shape[1]}")
    if tuple(imgs.shape[-2:]) != size:
        raise CnnlensError(f"images are {tuple(imgs.shape[-2:])} but the maps are {size}")
    return imgs.clamp(0, 1).permute(0, 2, 3, 1).numpy()


@dataclasses.dataclass
class Explanation:
    """Attribution maps for a batch of images (SPEC §2).

    Attributes:
        maps: ``(N, H, W)`` raw map values at input resolution.
        targets: ``(N,)`` int64 explained classes.
        method: the method's registry name.
        params: every parameter that produced the maps (incl. seed, layer, version).
        layer_maps: optional ``(N, h, w)`` map at the feature layer's resolution.
        attributions: optional ``(N, C, H, W)`` pixel-space attribution.
        info: diagnostics computed with the maps (e.g. the LRP/DeepLIFT conservation report,
            counts of constant maps); JSON-serialisable values.
    """

    maps: torch.Tensor
    targets: torch.Tensor
    method: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    layer_maps: torch.Tensor | None = None
    attributions: torch.Tensor | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.maps, torch.Tensor) or self.maps.dim() != 3:
            shape = tuple(self.maps.shape) if isinstance(self.maps, torch.Tensor) else type(self.maps).__name__
            raise CnnlensError(f"Explanation.maps must be a (N, H, W) tensor, got {shape}")
        self.targets = torch.as_tensor(self.targets, dtype=torch.long).flatten()
        if self.targets.numel() != self.maps.shape[0]:
            raise CnnlensError(f"{self.targets.numel()} targets for {self.maps.shape[0]} maps")

    def __len__(self) -> int:
        return self.maps.shape[0]

    def normalized(self) -> "Explanation":
        """A copy whose maps are min-max normalised per image to ``[0, 1]`` (constant → 0)."""
        return dataclasses.replace(self, maps=minmax_normalize(self.maps.detach().float()))

    def overlay(self, images: torch.Tensor | np.ndarray | None = None, alpha: float = 0.5) -> np.ndarray:
        """RGB uint8 ``(N, H, W, 3)`` pictures: the normalised map in the 'jet' colours, blended
        with ``alpha`` over ``images`` (``(N, C, H, W)`` in [0, 1]) or alone without images."""
        if not 0.0 <= alpha <= 1.0:
            raise CnnlensError(f"alpha must be in [0, 1], got {alpha}")
        heat = jet(self.normalized().maps.cpu().numpy())
        if images is not None:
            base = _to_numpy_images(images, len(self), tuple(self.maps.shape[-2:]))
            heat = alpha * heat + (1.0 - alpha) * base
        return np.round(heat * 255.0).astype(np.uint8)

    def save(self, path: str | os.PathLike[str], images: torch.Tensor | None = None, names: list[str] | None = None) -> list[Path]:
        """Write one PNG overlay per image and ``explanation.npz`` (maps, targets, params) into
        the folder ``path``; every file is written atomically. Returns the written paths."""
        from PIL import Image  # local: keeps `import cnnlens` light

        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise CnnlensError(f"{folder} exists and is not a folder")
        if names is not None and len(names) != len(self):
            raise CnnlensError(f"{len(names)} names for {len(self)} maps")
        pictures = self.overlay(images)
        written: list[Path] = []
        for i, pic in enumerate(pictures):
            stem = f"{i:04d}" + (f"_{_safe(names[i])}" if names is not None else "")
            out = folder / f"{stem}_{_safe(self.method)}.png"
            buf = _png_bytes(Image.fromarray(pic))
            atomic_write_bytes(out, buf)
            written.append(out)
        npz = folder / "explanation.npz"
        arrays: dict[str, np.ndarray] = {
            "maps": self.maps.detach().cpu().numpy(),
            "targets": self.targets.cpu().numpy(),
            "method": np.array(self.method),
            "params": np.array(json.dumps(self.params, default=str, sort_keys=True)),
            "info": np.array(json.dumps(self.info, default=str, sort_keys=True)),
        }
        if self.layer_maps is not None:
            arrays["layer_maps"] = self.layer_maps.detach().cpu().numpy()
        bio = io.BytesIO()
        np.savez_compressed(bio, **arrays)
        atomic_write_bytes(npz, bio.getvalue())
        written.append(npz)
        return written

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Explanation":
        """Read an explanation written by :meth:`save` (the folder or its ``explanation.npz``)."""
        p = Path(path)
        if p.is_dir():
            p = p / "explanation.npz"
        if not p.exists():
            raise CnnlensError(f"no explanation at {p}")
        with np.load(p, allow_pickle=False) as data:
            return cls(
                maps=torch.from_numpy(data["maps"]),
                targets=torch.from_numpy(data["targets"]),
                method=str(data["method"]),
                params=json.loads(str(data["params"])),
                layer_maps=torch.from_numpy(data["layer_maps"]) if "layer_maps" in data else None,
                info=json.loads(str(data["info"])) if "info" in data else {},
            )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))[:60]


def _png_bytes(image: Any) -> bytes:
    bio = io.BytesIO()
    image.save(bio, format="PNG")
    return bio.getvalue()
