"""ACE's steps 1, 2, 4 and 5 as plain functions (:mod:`cnnlens.representative.ace` has the
algorithm and the choices): multi-resolution SLIC segments, segment patches, pooled activations,
class-logit gradients, ridge CAVs, the t-test, and the fill value."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import validation
from ..classifier import Classifier
from ..errors import CnnlensError

__all__ = ["Segments", "segment_images", "segment_patches"]


# --------------------------------------------------------------------------------------------- segments
@dataclasses.dataclass
class Segments:
    """The multi-resolution segments of one image (step 1).

    Attributes:
        labels: ``(R, H, W)`` int64 SLIC label map per resolution.
        keys: ``(S, 2)`` int64: segment s is ``labels[keys[s, 0]] == keys[s, 1]``.
    """

    labels: torch.Tensor
    keys: torch.Tensor

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def masks(self) -> torch.Tensor:
        """``(S, H, W)`` bool masks of the segments."""
        if len(self) == 0:
            return torch.zeros(0, *self.labels.shape[1:], dtype=torch.bool)
        return self.labels[self.keys[:, 0]] == self.keys[:, 1, None, None]


def _slic(img: np.ndarray, n: int, compactness: float, sigma: float) -> np.ndarray:
    from skimage.segmentation import slic

    if img.shape[2] == 1:  # as RGB with three equal channels: SLIC's Lab conversion gives L* in [0, 100]
        img = np.repeat(img, 3, axis=2)
    return slic(img, n_segments=n, compactness=compactness, sigma=sigma, start_label=0, channel_axis=-1)


def segment_images(x: torch.Tensor, n_segments: Sequence[int] = (15, 50, 80), compactness: float = 20.0,
                   sigma: float = 1.0, min_area: float = 0.01) -> list[Segments]:
    """Step 1 for a pixel-space batch ``(N, C, H, W)`` (1 or 3 channels): SLIC at every
    ``n_segments``, segments under ``min_area`` (a fraction of the image; at least one pixel) and
    exact repeats dropped. Returns one :class:`Segments` per image (CPU tensors)."""
    images = x.detach().float().cpu()
    if images.shape[1] not in (1, 3):
        raise CnnlensError(f"ACE segments images with 1 or 3 channels (SLIC), got {images.shape[1]} channels")
    h, w = images.shape[2], images.shape[3]
    smallest = max(1, math.ceil(min_area * h * w))
    out = []
    for img in images.permute(0, 2, 3, 1).numpy().astype(np.float64):
        labels = np.stack([_slic(img, n, compactness, sigma) for n in n_segments])
        keys, seen = [], set()
        for r, lab in enumerate(labels):
            values, counts = np.unique(lab, return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist()):
                if c < smallest:
                    continue
                sig = np.packbits(lab == v).tobytes()
                if sig in seen:
                    continue
                seen.add(sig)
                keys.append((r, v))
        out.append(Segments(torch.from_numpy(labels.astype(np.int64)),
                            torch.tensor(keys, dtype=torch.int64).reshape(-1, 2)))
    return out


def segment_patches(image: torch.Tensor, masks: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Step 2: the patch of each segment of ``image`` ``(C, H, W)``: its bounding box with the pixels
    outside the segment set to ``fill`` ``(C,)``, resized (bilinear) to ``(H, W)``. ``masks``
    ``(S, H, W)`` bool → ``(S, C, H, W)`` in [0, 1] (one ``grid_sample`` call)."""
    s = masks.shape[0]
    c, h, w = image.shape
    if s == 0:
        return image.new_zeros(0, c, h, w)
    m = masks.to(image.device)
    filled = torch.where(m[:, None], image[None], fill.to(image)[None, :, None, None])
    rows, cols = m.any(2), m.any(1)  # (S, H), (S, W)
    ar_h = torch.arange(h, device=m.device)
    ar_w = torch.arange(w, device=m.device)
    big = torch.iinfo(torch.int64).max
    r0 = torch.where(rows, ar_h, big).min(1).values
    r1 = torch.where(rows, ar_h, -1).max(1).values
    c0 = torch.where(cols, ar_w, big).min(1).values
    c1 = torch.where(cols, ar_w, -1).max(1).values
    # output edges [-1, 1] → the box's pixel edges [c0, c1 + 1) (align_corners=False coordinates)
    theta = torch.zeros(s, 2, 3, dtype=filled.dtype, device=m.device)
    theta[:, 0, 0] = (c1 + 1 - c0).to(filled.dtype) / w
    theta[:, 0, 2] = (c0 + c1 + 1).to(filled.dtype) / w - 1
    theta[:, 1, 1] = (r1 + 1 - r0).to(filled.dtype) / h
    theta[:, 1, 2] = (r0 + r1 + 1).to(filled.dtype) / h - 1
    grid = F.affine_grid(theta, [s, c, h, w], align_corners=False)
    return F.grid_sample(filled, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp(0, 1)


# --------------------------------------------------------------------------------------------- helpers
def _activations(clf: Classifier, patches: torch.Tensor, layer: Any, pool: str, batch_size: int) -> torch.Tensor:
    """Pooled (or flattened) ψ of ``patches``, chunked, no gradients → ``(S, D)`` float32/64 CPU."""
    out = []
    with torch.no_grad():
        for c in patches.split(batch_size):
            psi, _ = clf.forward_with_features(c, layer)
            out.append(_pool(psi.detach(), pool))
    return torch.cat(out).cpu()


def _pool(psi: torch.Tensor, pool: str) -> torch.Tensor:
    dtype = torch.float64 if psi.dtype == torch.float64 else torch.float32
    psi = psi.to(dtype)
    if pool == "mean" and psi.dim() > 2:
        return psi.flatten(2).mean(2)
    return psi.flatten(1)


def _class_gradients(clf: Classifier, x: torch.Tensor, target: int, layer: Any, pool: str,
                     batch_size: int) -> torch.Tensor:
    """∂z_target/∂ψ at ``x`` in the activation space of ``pool``: summed over spatial positions for
    ``"mean"`` (a direction added at every position), flattened otherwise → ``(N, D)`` CPU."""
    out = []
    for c in x.split(batch_size):
        with torch.inference_mode(False), torch.enable_grad():
            c = c.clone() if c.is_inference() else c
            psi, logits = clf.forward_with_features(c, layer)
            if not psi.requires_grad:
                raise CnnlensError("ACE's TCAV needs gradients of the class logit at the layer; its output does not "
                                   "depend on differentiable values: choose another layer=")
            (g,) = torch.autograd.grad(logits[:, target].sum(), psi)
        dtype = torch.float64 if g.dtype == torch.float64 else torch.float32
        g = g.detach().to(dtype)
        out.append((g.flatten(2).sum(2) if pool == "mean" and g.dim() > 2 else g.flatten(1)).cpu())
    return torch.cat(out)


def _ridge_cavs(pos: torch.Tensor, negs: torch.Tensor, ridge: float) -> torch.Tensor:
    """Unit CAVs ``(R, D)``: ridge classifier of ``pos`` ``(m, D)`` (+1) against each ``negs[i]``
    ``(n, D)`` (−1), solved in the dual (float64)."""
    r = negs.shape[0]
    xs = torch.cat([pos.double()[None].expand(r, -1, -1), negs.double()], dim=1)  # (R, m+n, D)
    y = torch.cat([torch.ones(pos.shape[0]), -torch.ones(negs.shape[1])]).double()
    xc = xs - xs.mean(1, keepdim=True)
    yc = y - y.mean()
    k = xc @ xc.transpose(1, 2)  # (R, M, M)
    scale = k.diagonal(dim1=1, dim2=2).mean(1).clamp_min(1e-12)  # mean squared norm
    eye = torch.eye(k.shape[1], dtype=k.dtype)
    a = torch.linalg.solve(k + (ridge * scale)[:, None, None] * eye, yc[None, :, None].expand(r, -1, 1))
    v = (xc.transpose(1, 2) @ a).squeeze(2)  # (R, D)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)


def _ttest_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p-value; both samples constant: 1 if equal, 0 otherwise."""
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if float(a[0]) == float(b[0]) else 0.0
    import warnings

    from scipy.stats import ttest_ind

    with warnings.catch_warnings():  # nearly constant samples: scipy's precision notice, the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return 1.0 if math.isnan(p) else p


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)[None]).clamp_min(0)


def _fill_value(fill: Any, images: torch.Tensor) -> torch.Tensor:
    if isinstance(fill, str):
        validation.choice("fill", fill, ("mean",))
        return images.detach().float().mean((0, 2, 3)).cpu()
    if isinstance(fill, torch.Tensor):
        t = fill.detach().float().flatten().cpu()
        if t.numel() == 1:
            t = t.expand(images.shape[1])
    else:
        t = torch.full((images.shape[1],), validation.real("fill", fill, low=0, high=1,
                                                             hint="a grey level in [0, 1] or 'mean'"))
    if t.numel() != images.shape[1] or not bool(((t >= 0) & (t <= 1)).all()):
        raise CnnlensError(f"fill must be 'mean', a value in [0, 1] or one per channel ({images.shape[1]}), "
                           f"got {validation.shown(fill)}")
    return t.clone()
