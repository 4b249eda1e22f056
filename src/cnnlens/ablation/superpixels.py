"""Superpixels for Dynamic Ablation (docs/algorithms.md §4 "Superpixel mode").

A superpixel is in a DA mask iff its centroid (the mean pixel coordinate of its pixels) lies
inside any dynamic circle. Pixel mode is the same computation with every pixel its own segment
(centroid = the pixel's own coordinate), so both modes share one mask generator.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import validation

__all__ = ["Segmentation", "segment"]


class Segmentation:
    """Segment labels and centroids of a batch of images.

    Attributes:
        labels: ``(N, H*W)`` int64, the segment index of every pixel (row-major), in
            ``[0, count[i])``.
        centroids: ``(N, S_max, 2)`` float64 (row, column) mean coordinate of each segment;
            padding rows (segments an image does not have) are ``+inf`` so they never fall
            inside a circle.
        count: ``(N,)`` number of segments per image.
        n_segments: the requested number (``0`` = pixel mode).
    """

    def __init__(self, labels: torch.Tensor, centroids: torch.Tensor, count: torch.Tensor, n_segments: int) -> None:
        self.labels = labels
        self.centroids = centroids
        self.count = count
        self.n_segments = n_segments

    def to(self, device: torch.device) -> Segmentation:
        return Segmentation(self.labels.to(device), self.centroids.to(device), self.count.to(device), self.n_segments)


def _pixel_grid(h: int, w: int) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([rows.flatten(), cols.flatten()], dim=1)  # (H*W, 2)


def segment(x: torch.Tensor, n_segments: int) -> Segmentation:
    """Segment ``x`` ``(N, C, H, W)`` in [0, 1].

    ``n_segments > 0``: SLIC from scikit-image with its defaults (compactness 10, 10 iterations,
    ``sigma=0``, connectivity enforced) and ``n_segments`` (§4: ``sp_num``); grey images are
    segmented as one channel. ``n_segments == 0``: pixel mode (one segment per pixel).

    SLIC is per-image preprocessing (done once per image, not in the chain's loop).
    """
    validation.integer("superpixels", n_segments, minimum=0, hint="0 = pixel mode")
    n, c, h, w = x.shape
    grid = _pixel_grid(h, w)
    if n_segments == 0:
        labels = torch.arange(h * w, dtype=torch.long).expand(n, -1).clone()
        centroids = grid.unsqueeze(0).expand(n, -1, -1).clone()
        count = torch.full((n,), h * w, dtype=torch.long)
        return Segmentation(labels, centroids, count, 0)

    from skimage.segmentation import slic  # local: scikit-image is only needed here

    imgs = x.detach().float().cpu().clamp(0, 1).numpy()
    all_labels: list[np.ndarray] = []
    for img in imgs:  # preprocessing, once per image
        if c == 1:
            seg = slic(img[0].astype(np.float64), n_segments=n_segments, channel_axis=None)
        else:
            seg = slic(np.ascontiguousarray(img.transpose(1, 2, 0)).astype(np.float64), n_segments=n_segments, channel_axis=-1)
        _, inverse = np.unique(seg.reshape(-1), return_inverse=True)  # contiguous 0..S-1
        all_labels.append(inverse.reshape(-1).astype(np.int64))
    counts = [int(lab.max()) + 1 for lab in all_labels]
    s_max = max(counts)
    labels = torch.from_numpy(np.stack(all_labels))
    centroids = torch.full((n, s_max, 2), float("inf"), dtype=torch.float64)
    for i, lab in enumerate(labels):
        lab_t = lab
        sums = torch.zeros(counts[i], 2, dtype=torch.float64).index_add_(0, lab_t, grid)
        sizes = torch.bincount(lab_t, minlength=counts[i]).to(torch.float64)
        centroids[i, : counts[i]] = sums / sizes.unsqueeze(1)
    return Segmentation(labels, centroids, torch.tensor(counts, dtype=torch.long), n_segments)
