"""Pictures for display (notebook blocks, plots and the demo report): pixel-space images as uint8
RGB, maps as 'jet' overlays (the :meth:`~cnnlens.Explanation.overlay` colours), side-by-side tiles."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["rgb", "heat", "hstack", "mask_picture"]


def rgb(images: torch.Tensor, size: int | None = None) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` pictures of pixel-space images (grey repeated), optionally enlarged."""
    x = torch.as_tensor(images).detach().float().cpu().clamp(0, 1)
    if size is not None and x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="nearest")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return np.round(x.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def heat(maps: torch.Tensor, images: torch.Tensor | None = None, size: int | None = None) -> np.ndarray:
    """uint8 ``(N, H, W, 3)``: each map min-max normalised in the 'jet' colours, blended half over
    ``images`` when given (images of another size than the maps are resized to the maps')."""
    from ..explanation import Explanation

    m = torch.as_tensor(maps).detach().float().cpu()
    imgs = None if images is None else torch.as_tensor(images).detach().float().cpu().clamp(0, 1)
    if imgs is not None and tuple(imgs.shape[-2:]) != tuple(m.shape[-2:]):
        imgs = torch.nn.functional.interpolate(imgs, size=tuple(m.shape[-2:]), mode="bilinear", align_corners=False)
    if size is not None and m.shape[-1] != size:
        m = torch.nn.functional.interpolate(m[:, None], size=(size, size), mode="nearest")[:, 0]
        if imgs is not None:
            imgs = torch.nn.functional.interpolate(imgs, size=(size, size), mode="nearest")
    e = Explanation(maps=m, targets=torch.zeros(len(m), dtype=torch.long), method="view")
    return e.overlay(imgs)


def mask_picture(mask: Any, image: np.ndarray | None = None, keep: bool = True) -> np.ndarray:
    """uint8 ``(H, W, 3)``: ``image`` where ``mask`` is ``keep`` (black elsewhere), or without an
    image the mask itself (white where ``keep``)."""
    m = np.asarray(torch.as_tensor(mask).detach().cpu().numpy()).astype(bool)
    m = m if keep else ~m
    if image is None:
        return np.repeat((m * 255).astype(np.uint8)[..., None], 3, axis=-1)
    return (image * m[..., None]).astype(np.uint8)


def hstack(pictures: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """uint8 pictures side by side on white, ``pad`` pixels apart (top-aligned)."""
    h = max(p.shape[0] for p in pictures)
    w = sum(p.shape[1] for p in pictures) + pad * (len(pictures) - 1)
    out = np.full((h, w, 3), 255, np.uint8)
    x = 0
    for p in pictures:
        out[: p.shape[0], x: x + p.shape[1]] = p
        x += p.shape[1] + pad
    return out
