"""The insertion game of Dynamic Ablation (DA Fig. 5; docs/algorithms.md §3 "Insertion game").

Rank the pixels by the map, keep the top fraction p, black the rest, and report the accuracy of
the model on the modified images against ground-truth labels for each p. At p = 1.0 nothing is
changed, so the accuracy equals the unmodified accuracy — a built-in check recorded in the result.
On an unlabelled set the game reports agreement with the unmodified prediction instead, and says so.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> from cnnlens.metrics import insertion_game
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    >>> clf = cnnlens.Classifier(net)
    >>> x = torch.rand(4, 1, 4, 4)
    >>> r = insertion_game(clf, x, torch.rand(4, 4, 4), labels=None, fractions=(0.25, 1.0))
    >>> r.measure, float(r.accuracy[-1])
    ('agreement', 1.0)
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from .. import validation
from ..errors import CnnlensError
from ._common import (
    DEFAULT_BATCH_SIZE,
    MetricResult,
    check_classifier,
    check_maps,
    forward_logits,
    n_keep,
    rank_of,
    tie_break_order,
    to_size,
)
from .registry import register

if TYPE_CHECKING:
    from .context import MetricContext

__all__ = ["insertion_game", "InsertionGameResult", "DEFAULT_FRACTIONS"]

DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclasses.dataclass
class InsertionGameResult:
    """Result of :func:`insertion_game`.

    Attributes:
        fractions: ``(F,)`` kept fractions p.
        accuracy: ``(F,)`` float64, the fraction of images classified correctly (``measure ==
            "accuracy"``) or agreeing with the unmodified prediction (``"agreement"``) at each p.
        correct: ``(N, F)`` bool per image and fraction.
        measure: ``"accuracy"`` (against labels) or ``"agreement"`` (unlabelled set).
        unmodified: accuracy (or agreement, = 1) of the unmodified images.
        check_passed: ``True`` when p = 1.0 is present and equals ``unmodified`` (``None`` when
            p = 1.0 was not asked).
        kept_pixels: ``(F,)`` number of pixels kept per image at each p.
        params: fractions, seed, batch size, upsampling.
    """

    fractions: torch.Tensor
    accuracy: torch.Tensor
    correct: torch.Tensor
    measure: str
    unmodified: float
    check_passed: bool | None
    kept_pixels: torch.Tensor
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{p:g}: {a:.3f}" for p, a in zip(self.fractions.tolist(), self.accuracy.tolist()))
        return f"InsertionGameResult({self.measure} over {self.correct.shape[0]} images; {pairs})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "fractions": self.fractions.tolist(),
            "accuracy": self.accuracy.tolist(),
            "unmodified": self.unmodified,
            "check_passed": self.check_passed,
            "kept_pixels": self.kept_pixels.tolist(),
            "n_images": int(self.correct.shape[0]),
            "params": self.params,
        }


def _check_fractions(fractions: Any) -> list[float]:
    if isinstance(fractions, (int, float)) and not isinstance(fractions, bool):
        fractions = [fractions]
    try:
        out = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise CnnlensError(f"fractions must be numbers in (0, 1], got {fractions!r}") from None
    if not out or any(not 0.0 < f <= 1.0 for f in out):
        raise CnnlensError(f"fractions must be numbers in (0, 1], got {fractions!r}")
    return out


def _check_labels(clf: Any, x: torch.Tensor, labels: Any, batch_size: int) -> torch.Tensor | None:
    """Ground-truth labels ``(N,)`` by the target rule of :meth:`Classifier.targets` (whole class
    indices in range); all ``-1`` (unlabelled) → ``None``."""
    n = x.shape[0]
    try:
        raw = torch.as_tensor(labels).detach().flatten()
    except (TypeError, ValueError, RuntimeError):
        raw = None  # Classifier.targets names what is wrong
    if raw is not None:
        if raw.numel() != n:
            raise CnnlensError(f"labels has {raw.numel()} entries for {n} images")
        if raw.dtype != torch.bool and not raw.is_complex():
            unl = raw < 0
            if bool(unl.all()):
                return None
            if bool(unl.any()):
                raise CnnlensError(
                    f"labels mixes labelled and unlabelled (-1) images ({int(unl.sum())} of {n}); "
                    "pass only labelled images, or labels=None for agreement")
    try:
        return clf.targets(x, labels if raw is None else raw, batch_size=batch_size)
    except CnnlensError as exc:
        raise CnnlensError("labels" + str(exc).removeprefix("target")) from None


def insertion_game(
    clf: Any,
    x: torch.Tensor,
    maps: Any,
    labels: Any = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> InsertionGameResult:
    """Accuracy when only the top fraction ``p`` of pixels (by ``maps``) is kept (DA Fig. 5).

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        x: images ``(N, C, H, W)`` in [0, 1] (DA: a random test sample, not filtered for
            correctness).
        maps: ``(N, h, w)`` maps (or an :class:`~cnnlens.Explanation`); coarser maps are
            upsampled bilinearly to the image size before ranking.
        labels: ``(N,)`` ground-truth classes; ``None`` or all ``-1`` (unlabelled) → agreement
            with the unmodified prediction.
        fractions: kept fractions p in (0, 1]; p pixels kept = round(p · H · W) (at least 1).
        seed: seed of the permutation that breaks ties in the ranking (DA's cam has many).
        batch_size: modified images per forward; all (image, p) pairs are scored in chunks.

    Returns:
        An :class:`InsertionGameResult`. If p = 1.0 is asked and does not reproduce the
        unmodified accuracy (it can only differ through batch-size-dependent numerics), a
        warning says so and ``check_passed`` is ``False``.
    """
    clf = check_classifier(clf)
    batch_size = validation.batch_size(batch_size)
    validation.seed(seed)
    fr = _check_fractions(fractions)
    x = clf.check_input(x)
    maps = check_maps(maps, x)
    n, _, h, w = x.shape
    if labels is None:
        lab = None
    else:
        lab = _check_labels(clf, x, labels, batch_size)
    with torch.no_grad():
        pred0 = torch.cat([forward_logits(clf, x[i:i + batch_size]).argmax(1) for i in range(0, n, batch_size)])
    reference = pred0 if lab is None else lab
    measure = "agreement" if lab is None else "accuracy"
    unmodified = float((pred0 == reference).double().mean())

    full = to_size(maps, (h, w), "bilinear")
    rank = rank_of(tie_break_order(full, seed)).reshape(n, h, w)
    ks = torch.tensor([n_keep(f, h * w) for f in fr], device=x.device)
    n_f = len(fr)
    pairs = n * n_f
    preds = torch.empty(pairs, dtype=torch.long, device=x.device)
    for start in range(0, pairs, batch_size):
        idx = torch.arange(start, min(start + batch_size, pairs), device=x.device)
        img, fi = idx // n_f, idx % n_f
        keep = (rank[img] < ks[fi].view(-1, 1, 1)).unsqueeze(1).to(x.dtype)
        preds[idx] = forward_logits(clf, x[img] * keep).argmax(1)
    correct = (preds.view(n, n_f) == reference.view(n, 1)).cpu()
    acc = correct.double().mean(dim=0)
    check = None
    if 1.0 in fr:
        check = bool(abs(float(acc[fr.index(1.0)]) - unmodified) < 1e-12)
        if not check:
            warnings.warn(
                f"insertion game: p = 1.0 gives {measure} {float(acc[fr.index(1.0)]):.4f} but the unmodified "
                f"images give {unmodified:.4f} (batch-dependent numerics of the model)", RuntimeWarning, stacklevel=2)
    return InsertionGameResult(
        fractions=torch.tensor(fr, dtype=torch.float64),
        accuracy=acc,
        correct=correct,
        measure=measure,
        unmodified=unmodified,
        check_passed=check,
        kept_pixels=ks.cpu(),
        params={"fractions": fr, "seed": seed, "batch_size": batch_size, "upsample": "bilinear",
                "measure": measure, "substrate": "black"},
    )


@register("insertion_game", direction="↑", scalar=False, order=7,
          description="DA's insertion game: accuracy when only the top fraction p of pixels is kept, per p")
def insertion_game_metric(ctx: MetricContext) -> MetricResult:
    o = ctx.options
    g = insertion_game(ctx.clf, ctx.x, ctx.maps, ctx.labels, fractions=o.fractions, seed=o.seed,
                       batch_size=o.batch_size)
    return MetricResult("insertion_game", g.correct.double(), g.accuracy, float("nan"),
                        {**ctx.common, **g.params, "unmodified": g.unmodified, "check_passed": g.check_passed},
                        0, None, ctx.info.direction if ctx.info is not None else "↑")
