"""Small helpers shared by the attribution methods of this package (docs/algorithms.md §0, §2)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from .. import validation
from .._progress import bar
from ..errors import CnnlensError

__all__ = ["target_scores", "chunk_ranges", "progress", "refuse_torchscript"]


def refuse_torchscript(clf: Any, method: str, why: str) -> None:
    """A one-line :class:`CnnlensError` if any part of ``clf``'s model is TorchScript (scripted or
    traced): ``method`` needs Python-level access to the forward pass, ``why`` says which."""
    owner = clf.torchscript_owner()
    if owner is not None:
        raise CnnlensError(f"method {method!r} cannot explain this model: {owner} is TorchScript (scripted/traced) "
                           f"and {why}; explain the original nn.Module")


def target_scores(logits: torch.Tensor, targets: torch.Tensor, score: str, check: bool = True) -> torch.Tensor:
    """The target class's logit (``score="logit"``) or softmax probability (``"prob"``) per row
    of ``logits`` ``(B, K)``; ``targets`` ``(B,)``. §0. ``check=False`` skips the range
    check (a device sync) in hot loops whose targets :func:`explain` already validated."""
    if validation.choice("score", score, ("logit", "prob")) == "prob":
        logits = torch.softmax(logits, dim=1)
    targets = targets.to(logits.device)
    if check and int(targets.max()) >= logits.shape[1]:
        raise CnnlensError(f"target {int(targets.max())} out of range: the model has {logits.shape[1]} classes")
    return logits.gather(1, targets.view(-1, 1)).squeeze(1)


def conserving_explanation(attributions: torch.Tensor, targets: torch.Tensor, params: dict[str, Any],
                           explained: torch.Tensor, explained_key: str, sum_key: str) -> Any:
    """An Explanation of pixel attributions ``(N, C, H, W)`` that should sum to ``explained``
    ``(N,)`` (LRP, DeepLIFT): maps = channel sums, ``info["conservation"]`` the check."""
    from ..explanation import Explanation

    sums = attributions.flatten(1).sum(1)
    return Explanation(
        maps=attributions.sum(1), targets=targets, params=params, attributions=attributions,
        info={"conservation": {explained_key: explained.tolist(), sum_key: sums.tolist(),
                               "max_abs_error": float((sums - explained).abs().max())}},
    )


def chunk_ranges(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(total)`` in steps of ``size``."""
    for start in range(0, total, size):
        yield start, min(start + size, total)


def progress(total: int, desc: str, enabled: bool | None = True) -> Any:
    """A bar over ``total`` forward passes, shown only for long work (> 1000 passes)."""
    return bar(total=total, desc=desc, progress=enabled, min_total=1000)

