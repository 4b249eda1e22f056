"""What replaces removed pixels: one vocabulary for every method and metric (docs/algorithms.md §0).

A *fill* is the image that hidden / deleted pixels take (RISE's and DeepLIFT's baseline, LIME's
hidden superpixels, the deletion and insertion substrates of the metrics). Every part of cnnlens
builds it here, under one set of names:

- ``"black"`` — pixel value 0 in pixel space (§0), not 0 in normalised space.
- ``"mean"`` — the colour the model sees as 0: the Classifier's ``mean=`` (the dataset mean; the
  RISE reference code's substrate, OVERVIEW's "zero tensor" for DeepLIFT); for a Classifier
  without normalisation that colour is black.
- ``"image_mean"`` — each image's own mean colour.
- ``"segment_mean"`` — each superpixel's mean colour (LIME's package default; needs segments).
- ``"blur"`` — the image blurred (``blur="gaussian"``: RISE's 11×11, σ = 5; ``"box"``: Gomez et
  al.'s mean filter of odd size max(H // 5, 9)), both with zero padding.
- a number, one number per channel, or a tensor broadcastable to the images.

The old keywords stay as aliases: ``baseline=`` (RISE, DeepLIFT), ``hide_color=`` (LIME),
``deletion_substrate=`` / ``insertion_substrate=`` (metrics); DeepLIFT's former
``"zero_normalized"`` is ``"mean"``.

Example::

    >>> import torch
    >>> from cnnlens import fills
    >>> x = torch.rand(2, 3, 4, 4)
    >>> fills.fill("black", x).abs().sum().item()
    0.0
    >>> bool(torch.allclose(fills.fill("image_mean", x)[:, :, 0, 0], x.mean(dim=(2, 3))))
    True
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import validation
from .errors import CnnlensError

__all__ = ["NAMES", "ALIASES", "fill", "resolve", "describe", "gaussian_kernel", "gaussian_blur", "box_blur"]

NAMES = ("black", "mean", "image_mean", "segment_mean", "blur")
ALIASES = {"zero_normalized": "mean"}


def resolve(value: Any, what: str = "fill", allowed: tuple[str, ...] = NAMES, default: Any = None,
            **aliases: Any) -> Any:
    """The fill asked for under the new keyword ``what`` or one old keyword (``aliases``:
    ``{old_name: value}``, ``None`` when not given), else ``default``; names are canonicalised
    (``zero_normalized`` → ``mean``) and checked against ``allowed``; numbers and tensors pass."""
    given = {k: v for k, v in aliases.items() if v is not None}
    if len(given) > 1:
        raise CnnlensError(f"give one of {', '.join(given)}, not several")
    if given:
        if value is not None:
            raise CnnlensError(f"give {what}= or {', '.join(given)}= (its old name), not both")
        what, value = next(iter(given.items()))
    if value is None:
        value = default
    if isinstance(value, str):
        key = ALIASES.get(value, value)
        if key not in allowed:
            raise CnnlensError(f"{what} must be one of {', '.join(map(repr, allowed))}, a colour or a tensor, "
                               f"got {value!r}")
        return key
    return value


def describe(value: Any) -> Any:
    """A JSON-ready record of a fill (names and numbers as they are, a tensor as ``"tensor"``)."""
    if isinstance(value, torch.Tensor):
        return "tensor" if value.numel() > 8 else value.flatten().tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def fill(kind: Any, x: torch.Tensor, clf: Any = None, *, blur: str = "gaussian",
         segments: torch.Tensor | None = None, what: str = "fill") -> torch.Tensor:
    """The fill image for the pixel-space batch ``x`` ``(N, C, H, W)``, same shape and dtype
    (names in the module docstring; ``clf`` for ``"mean"``, ``segments`` ``(N, H, W)`` int64
    superpixel ids for ``"segment_mean"``)."""
    kind = resolve(kind, what)
    if blur not in ("gaussian", "box"):
        raise CnnlensError(f"blur must be 'gaussian' or 'box', got {blur!r}")
    if isinstance(kind, str):
        if kind == "black":
            return torch.zeros_like(x)
        if kind == "mean":
            if clf is None:
                raise CnnlensError(f"{what}='mean' is the Classifier's mean colour: pass the Classifier")
            if clf.mean is None:  # no normalisation: the model sees black as 0
                return torch.zeros_like(x)
            return clf.mean.to(device=x.device, dtype=x.dtype).expand_as(x).clone()
        if kind == "image_mean":
            return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
        if kind == "segment_mean":
            if segments is None:
                raise CnnlensError(f"{what}='segment_mean' needs superpixels (LIME)")
            return _segment_means(x, segments)
        return gaussian_blur(x) if blur == "gaussian" else box_blur(x)
    if isinstance(kind, bool) or kind is None:
        raise CnnlensError(f"{what} must be a name, a colour or a tensor, got {kind!r}")
    if isinstance(kind, torch.Tensor) and kind.dim() >= 2:
        try:
            out = torch.broadcast_to(kind.to(device=x.device, dtype=x.dtype), x.shape).clone()
        except RuntimeError:
            raise CnnlensError(f"{what} of shape {tuple(kind.shape)} does not broadcast to the images "
                               f"{tuple(x.shape)}") from None
        _check_pixel_values(what, kind)
        return out
    try:
        colour = torch.as_tensor(kind, dtype=x.dtype, device=x.device).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise CnnlensError(f"{what} must be a name, a number or one value per channel, got {kind!r}") from None
    if colour.numel() not in (1, x.shape[1]) or not torch.isfinite(colour).all():
        raise CnnlensError(f"{what} must be a name, a number or one value per channel, got {kind!r}")
    _check_pixel_values(what, colour)
    return colour.view(1, -1, 1, 1).expand(x.shape)


def _check_pixel_values(what: str, values: torch.Tensor) -> None:
    """A fill given as numbers is a picture in pixel space (§0): finite, in [0, 1] (the input
    check's slack allowed); a 0–255 colour or a normalised tensor is refused, never used."""
    from .classifier.inputs import RANGE_SLACK

    v = values.detach()
    if v.is_complex() or v.dtype == torch.bool:
        raise CnnlensError(f"{what} must hold real pixel values, got dtype {v.dtype}")
    v = v.double()
    if not bool(torch.isfinite(v).all()):
        raise CnnlensError(f"{what} contains NaN or inf values")
    lo, hi = float(v.min()), float(v.max())
    if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
        hint = "; divide by 255" if hi > 2 else ""
        raise CnnlensError(f"{what} must be pixel values in [0, 1] like the images (normalisation happens inside "
                           f"the Classifier), got values in [{lo:g}, {hi:g}]{hint}")


def _segment_means(x: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    n, c = x.shape[:2]
    n_max = int(segments.max()) + 1
    flat = segments.reshape(n, 1, -1).expand(-1, c, -1)
    sums = torch.zeros(n, c, n_max, device=x.device, dtype=x.dtype).scatter_add_(2, flat, x.reshape(n, c, -1))
    counts = torch.zeros(n, 1, n_max, device=x.device, dtype=x.dtype).scatter_add_(
        2, segments.reshape(n, 1, -1), torch.ones_like(x[:, :1].reshape(n, 1, -1)))
    means = sums / counts.clamp(min=1)
    return means.gather(2, flat).reshape(x.shape)


def gaussian_kernel(size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """RISE's blur kernel (Petsiuk 2018 evaluation): a centred unit impulse on a ``size × size``
    grid filtered by a Gaussian of ``sigma`` (truncated at 4σ, reflecting borders, as
    ``scipy.ndimage.gaussian_filter`` does), so the kernel sums to 1. ``size`` is a positive odd
    integer (an even kernel would shift the blurred image), ``sigma`` a positive number."""
    size = validation.integer("size", size, minimum=1)
    if size % 2 == 0:
        raise CnnlensError(f"size must be an odd integer (the kernel is centred on a pixel), got {size}")
    sigma = validation.real("sigma", sigma, low=0, open_low=True)
    radius = int(4.0 * sigma + 0.5)
    offs = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (offs / sigma) ** 2)
    g /= g.sum()
    # 1-D filter of an impulse at the centre with half-sample symmetric (reflect) borders
    k1 = np.zeros(size)
    c = size // 2
    for o, wgt in zip(offs.astype(int), g):
        j = c + o
        # fold j back into [0, size) with reflection d c b a | a b c d | d c b a
        period = 2 * size
        j = j % period
        if j >= size:
            j = period - 1 - j
        k1[j] += wgt
    return torch.from_numpy(np.outer(k1, k1)).float()


def _depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point() or x.numel() == 0:
        got = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise CnnlensError(f"x must be a non-empty float (N, C, H, W) batch, got {got}")
    c = x.shape[1]
    k = kernel.to(device=x.device, dtype=x.dtype).expand(c, 1, *kernel.shape)
    return F.conv2d(x, k, padding=kernel.shape[-1] // 2, groups=c)


def gaussian_blur(x: torch.Tensor, size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """RISE's insertion substrate: Gaussian blur (kernel ``size``, σ ``sigma``), zero padding."""
    return _depthwise(x, gaussian_kernel(size, sigma))


def box_blur(x: torch.Tensor) -> torch.Tensor:
    """Gomez et al.'s insertion substrate: a mean filter of odd size ``max(H // 5, 9)`` with zero
    padding, for any number of channels (the reference handles 3 channels only)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        _depthwise(x, torch.ones(1, 1))  # the one-line refusal
    size = max(x.shape[2] // 5, 9)
    if size % 2 == 0:
        size += 1
    return _depthwise(x, torch.full((size, size), 1.0 / (size * size)))
