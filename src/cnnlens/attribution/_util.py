"""Small helpers shared by the attribution methods of this package (docs/algorithms.md §0, §2)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from .. import validation
from .._progress import bar
from ..errors import CnnlensError

__all__ = ["target_scores", "chunk_ranges", "progress", "propagation_classifier", "refuse_torchscript"]


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


def propagation_classifier(clf: Any) -> tuple[Any, torch.dtype]:
    """``(classifier, compute dtype)`` for LRP and DeepLIFT (§2): a float16/bfloat16 model is
    propagated through a float32 copy of it (the user's model is not touched), since their
    guards (DeepLIFT's ``|Δx| < 1e-10``, LRP's ε and stabiliser 1e-6) underflow or overflow in
    half precision — every float16 DeepLIFT attribution was NaN. Any other model runs as it is
    (float32 stays bit-identical, float64 stays float64)."""
    dtype = clf.dtype
    if dtype not in (torch.float16, torch.bfloat16):
        return clf, dtype if dtype is not None else torch.float32
    import copy

    twin = copy.copy(clf)  # __getstate__/__setstate__: a fresh lock, the same normalisation and output
    twin.model = copy.deepcopy(clf.model).float()
    return twin, torch.float32


def chunk_ranges(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(total)`` in steps of ``size``."""
    for start in range(0, total, size):
        yield start, min(start + size, total)


def progress(total: int, desc: str, enabled: bool | None = True) -> Any:
    """A bar over ``total`` forward passes, shown only for long work (> 1000 passes)."""
    return bar(total=total, desc=desc, progress=enabled, min_total=1000)

