"""Similarity of two sets of maps, as Adebayo et al. 2018 measure it (docs/algorithms.md §10.1):
Spearman rank correlation with and without absolute values, SSIM of min-max normalised maps and
the Pearson correlation of HOG features. Used by :mod:`cnnlens.sanity` and the ``mprt``/``drt``
metrics."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import CnnlensError

__all__ = ["MEASURES", "similarity", "similarity_params"]

#: the similarity measures, in the paper's order (Fig. 2/4): rank correlation with and without
#: absolute values, SSIM and HOG correlation
MEASURES: tuple[str, ...] = ("spearman_abs", "spearman", "ssim", "hog")
# HOG as scikit-image's defaults (9 orientations, 8×8-pixel cells, 3×3-cell blocks, L2-Hys)
_HOG = {"orientations": 9, "pixels_per_cell": 8, "cells_per_block": 3, "block_norm": "L2-Hys"}


def _minmax(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    undefined = ~(den > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(undefined, 0.0, (a * b).sum(axis=1) / np.where(undefined, 1.0, den))
    return np.clip(r, -1.0, 1.0), undefined


def _spearman(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import rankdata

    return _pearson_rows(rankdata(a, axis=1), rankdata(b, axis=1))


def _hog_params(shape: tuple[int, int]) -> dict[str, Any]:
    cells = _HOG["cells_per_block"]
    ppc = max(1, min(_HOG["pixels_per_cell"], min(shape) // cells))
    return {**_HOG, "pixels_per_cell": ppc}


def _ssim_window(shape: tuple[int, int]) -> int:
    side = min(shape)
    return 7 if side >= 7 else max(3, side - (1 - side % 2))


def similarity(a: torch.Tensor, b: torch.Tensor, measures: Sequence[str] = MEASURES) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image similarity of two batches of maps ``(N, H, W)`` (§10.1).

    Returns ``(values, undefined)``, both ``(len(measures), N)``: float64 values and a mask of the
    images whose value is undefined (a constant map: zero variance of ranks or of HOG features),
    set to 0 by the project's convention (§3). ``spearman``/``spearman_abs``: Spearman rank
    correlation (average ranks for ties) of the flattened maps / of their absolute values;
    ``ssim``: :func:`skimage.metrics.structural_similarity` of the min-max normalised maps
    (``data_range=1``, 7×7 window, smaller on smaller maps); ``hog``: Pearson correlation of
    :func:`skimage.feature.hog` of the min-max normalised maps (9 orientations, 8×8-pixel cells,
    3×3 blocks, L2-Hys; cells shrink on maps under 24 pixels).
    """
    bad = [m for m in measures if m not in MEASURES]
    if bad:
        raise CnnlensError(f"unknown similarity measure(s) {bad}; choose from {', '.join(MEASURES)}")
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.dim() != 3 or a.shape != b.shape:
        raise CnnlensError(f"similarity needs two (N, H, W) map tensors of one shape, got "
                           f"{tuple(getattr(a, 'shape', ()))} and {tuple(getattr(b, 'shape', ()))}")
    A = a.detach().to("cpu", torch.float64).numpy()
    B = b.detach().to("cpu", torch.float64).numpy()
    n, shape = A.shape[0], tuple(A.shape[1:])
    values = np.zeros((len(measures), n))
    undefined = np.zeros((len(measures), n), dtype=bool)
    finite = np.isfinite(A).reshape(n, -1).all(1) & np.isfinite(B).reshape(n, -1).all(1)
    A = np.where(np.isfinite(A), A, 0.0)
    B = np.where(np.isfinite(B), B, 0.0)
    flat_a, flat_b = A.reshape(n, -1), B.reshape(n, -1)
    for k, m in enumerate(measures):
        if m == "spearman":
            values[k], undefined[k] = _spearman(flat_a, flat_b)
        elif m == "spearman_abs":
            values[k], undefined[k] = _spearman(np.abs(flat_a), np.abs(flat_b))
        elif m == "ssim":
            from skimage.metrics import structural_similarity

            win = _ssim_window(shape)
            for i in range(n):
                if min(shape) < 3:
                    undefined[k, i] = True
                    continue
                values[k, i] = structural_similarity(_minmax(A[i]), _minmax(B[i]), data_range=1.0, win_size=win)
        else:
            from skimage.feature import hog

            p = _hog_params(shape)
            kw = {"orientations": p["orientations"], "pixels_per_cell": (p["pixels_per_cell"],) * 2,
                  "cells_per_block": (p["cells_per_block"],) * 2, "block_norm": p["block_norm"]}
            ha = np.stack([hog(_minmax(A[i]), **kw) for i in range(n)])
            hb = np.stack([hog(_minmax(B[i]), **kw) for i in range(n)])
            values[k], undefined[k] = _pearson_rows(ha, hb)
    undefined |= ~finite[None, :]
    values[undefined] = 0.0
    return torch.from_numpy(values), torch.from_numpy(undefined)


def similarity_params(shape: tuple[int, int]) -> dict[str, Any]:
    """What :func:`similarity` does on maps of ``shape`` (recorded in results)."""
    return {
        "spearman": "Spearman rank correlation of the flattened maps (average ranks for ties)",
        "spearman_abs": "Spearman rank correlation of the flattened |maps|",
        "ssim": {"normalisation": "min-max per map", "data_range": 1.0, "win_size": _ssim_window(shape),
                 "implementation": "skimage.metrics.structural_similarity"},
        "hog": {"normalisation": "min-max per map", **_hog_params(shape), "correlation": "Pearson",
                "implementation": "skimage.feature.hog"},
        "undefined": "a constant map (zero variance): value 0, counted in n_undefined",
    }


# ------------------------------------------------------------------------------------ result
