"""Input checks of the :class:`~cnnlens.Classifier`: normalisation statistics, class names, input shape (docs/algorithms.md §0, §1)."""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import CnnlensError

__all__ = ["RANGE_SLACK", "as_stat", "as_class_names", "as_input_shape"]

# pixel values may stray this far outside [0, 1] (interpolation overshoot, finite differences)
RANGE_SLACK = 1e-2
# pixel-space std of [0, 1] images is at most 0.5; 0-255 statistics have std ~ 50-80
MAX_STD = 5.0


def as_stat(value: float | Sequence[float] | torch.Tensor | None, what: str) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise CnnlensError(f"{what} must be a number or one number per channel, got the string {value[:40]!r}")
    try:
        t = torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise CnnlensError(f"{what} must be a number or one number per channel, got {str(value)[:60]}") from None
    if t.numel() == 0:
        raise CnnlensError(f"{what} is empty; give one value or one value per channel")
    if not torch.isfinite(t).all():
        raise CnnlensError(f"{what} contains NaN or inf: {t.tolist()}")
    if what == "std" and (t <= 0).any():
        raise CnnlensError(f"std must be positive, got {t.tolist()}")
    if what == "mean" and ((t < 0).any() or (t > 1).any()):
        raise CnnlensError(
            f"mean {t.tolist()} is outside [0, 1]: mean/std are pixel-space statistics of images in "
            "[0, 1] (for 0-255 statistics divide them by 255)"
        )
    if what == "std" and (t > MAX_STD).any():
        raise CnnlensError(
            f"std {t.tolist()} is above {MAX_STD:g}: mean/std are pixel-space statistics of images in [0, 1] "
            "(for 0-255 statistics divide them by 255)"
        )
    return t.view(1, -1, 1, 1)


def as_class_names(names: Any) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, (str, bytes)):
        raise CnnlensError("class_names must be a list of names (one per class), not a single string")
    try:
        out = [str(n) for n in names]
    except TypeError:
        raise CnnlensError(f"class_names must be a list of names, got {type(names).__name__}") from None
    if not out:
        raise CnnlensError("class_names is empty; give one name per class or None")
    return out


def as_input_shape(shape: Any) -> tuple[int, int, int] | None:
    if shape is None:
        return None
    try:
        values = list(shape)
    except TypeError:
        raise CnnlensError(f"input_shape must be (C, H, W), got {shape!r}") from None
    if len(values) != 3 or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral)
        and not (isinstance(v, torch.Tensor) and not v.is_floating_point() and v.numel() == 1)
        for v in values
    ):
        raise CnnlensError(f"input_shape must be (C, H, W) with whole numbers, got {tuple(values)}")
    out = tuple(int(v) for v in values)
    if min(out) < 1:
        raise CnnlensError(f"input_shape must have positive sizes, got {out}")
    return out  # type: ignore[return-value]
