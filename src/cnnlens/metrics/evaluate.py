"""``evaluate``: every docs/algorithms.md §3 metric of one explanation behind one call, with the two presets.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    ...                     nn.Flatten(), nn.Linear(4, 3)).eval()
    >>> clf = cnnlens.Classifier(net)
    >>> x = torch.rand(2, 1, 8, 8)
    >>> res = cnnlens.evaluate(clf, x, torch.rand(2, 8, 8), metrics=["iauc", "dauc", "ad"])
    >>> sorted(res), res["dauc"].per_image.shape, res["dauc"].params["n_steps"]
    (['ad', 'dauc', 'iauc'], torch.Size([2]), 64)
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from .. import fills, validation
from .._progress import bar as progress_bar
from ..errors import CnnlensError
from ..explanation import Explanation
from ._common import (
    DEFAULT_BATCH_SIZE,
    MetricResult,
    check_classifier,
    check_maps,
    check_score,
)
from .context import GOMEZ_MAX_STEPS, RISE_STEPS, EvaluateOptions, MetricContext, preset_step
from .insertion_game import DEFAULT_FRACTIONS
from .registry import canonical_metric, default_metrics, list_metrics, metric_info
from .single_step import _check_mode

__all__ = ["evaluate", "PROTOCOLS", "canonical_metric", "preset_step",
           "RISE_STEPS", "GOMEZ_MAX_STEPS"]

PROTOCOLS = ("rise", "gomez")
SUBSTRATES = ("black", "blur", "mean", "image_mean")


def _unpack(explanation: Any, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, str | None, Any]:
    """(maps, layer_maps, explanation targets, method name, DA mask) of the input."""
    if isinstance(explanation, Explanation):
        return explanation.maps, explanation.layer_maps, explanation.targets, explanation.method, None
    mask = getattr(explanation, "mask", None)
    if mask is not None and isinstance(mask, torch.Tensor):  # an AblationResult
        cam = getattr(explanation, "cam", None)
        return cam if isinstance(cam, torch.Tensor) else None, None, None, "dynamic_ablation", mask
    return explanation, None, None, None, None


def _check_metric_params(metric_params: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """``{canonical metric name: {option: value}}``; every key must be a metric asked for."""
    if metric_params is None:
        return {}
    if not isinstance(metric_params, dict) or not all(isinstance(v, dict) for v in metric_params.values()):
        raise CnnlensError("metric_params must be a dict {metric name: {option: value}}, "
                           f"got {type(metric_params).__name__}")
    asked = {canonical_metric(m) for m in names}
    out: dict[str, dict[str, Any]] = {}
    for key, opts in metric_params.items():
        name = canonical_metric(key)
        if name not in asked:
            raise CnnlensError(f"metric_params names {key!r}, which is not among the metrics asked for")
        out[name] = dict(opts)
    return out


def evaluate(
    clf: Any,
    x: torch.Tensor,
    explanation: Any,
    metrics: Sequence[str] | str | None = None,
    protocol: str = "rise",
    score: str = "prob",
    step: int | None = None,
    deletion_fill: Any = None,
    insertion_fill: Any = None,
    mode: str = "soft",
    keep: float = 0.2,
    clip: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    target: Any = None,
    labels: Any = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    progress: bool = False,
    masks: Any = None,
    second_model: Any = None,
    first_index: int = 0,
    deletion_substrate: Any = None,
    insertion_substrate: Any = None,
    metric_params: Any = None,
) -> dict[str, MetricResult]:
    """Evaluate an explanation with registered metrics (§3; :func:`~cnnlens.metrics.list_metrics`).

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        x: images ``(N, C, H, W)`` in [0, 1].
        explanation: an :class:`~cnnlens.Explanation`, a ``(N, h, w)`` tensor of maps, or a
            Dynamic Ablation result (``.mask``; for ``mar``).
        metrics: metric names (``None``: OVERVIEW's ``iauc``, ``dauc``, ``ic``, ``dc``, ``ad``,
            ``iic``); built in also ``insertion_game`` and ``mar``; alias ``ai`` = ``iic``.
        protocol: ``"rise"`` (Petsiuk 2018: pixel cells, ⌈H·W/224⌉ per step, Gaussian blur 11/σ5,
            bilinear soft masks) or ``"gomez"`` (Gomez et al. 2022: the method's native map,
            ⌊n / min(196, n)⌋ cells per step, box blur, bicubic soft masks).
        score: ``"prob"`` (softmax probability of the target) or ``"logit"``.
        step: cells per step (``None`` = the preset's).
        deletion_fill, insertion_fill: what deleted pixels become / inserted pixels start from
            (:mod:`cnnlens.fills`): ``"black"`` (deletion default), ``"blur"`` (the preset's
            blur; insertion default), ``"mean"`` (the colour the Classifier normalises to 0),
            ``"image_mean"``, a colour or a tensor. Old names: ``deletion_substrate``,
            ``insertion_substrate``.
        mode, keep, clip: AD/AI masking (see :func:`~cnnlens.metrics.average_drop_increase`).
        batch_size: perturbed images per forward pass.
        seed: seed of the shared tie-breaking permutation.
        target: class per image; ``None`` → the Explanation's targets, else the prediction.
        labels: ground truth for ``insertion_game`` (``None`` → agreement with the prediction).
        fractions: kept fractions of ``insertion_game``.
        progress: show a progress bar over the forward passes.
        masks: ground-truth masks ``(N, H, W)`` (nonzero = inside), for metrics that need them
            (``pointing_game``, ``relevance_mass_accuracy``, ``relevance_rank_accuracy``).
        second_model: a second classifier, for metrics that compare two models.
        first_index: data-set position of ``x[0]``: per-image randomness of a metric comes from
            ``SeedSequence([seed, first_index + i, stream])`` (§11; ``ctx.image_generator``).
        metric_params: options of individual metrics, ``{metric name: {option: value}}``, e.g.
            ``{"max_sensitivity": {"radius": 0.05, "normalise": True}}`` (each metric's options
            and defaults: docs/algorithms.md §3); recorded in that metric's ``params``.

    Returns:
        ``{name: MetricResult}`` in the order asked. Each result's ``params`` records the
        protocol and every knob above (and the method's name); ``n_constant`` counts images whose
        correlation was undefined (set to 0) or whose original score was 0 (AD).
    """
    from .. import __version__

    clf = check_classifier(clf)
    if protocol not in PROTOCOLS:
        raise CnnlensError(f"unknown protocol {protocol!r}; use 'rise' (Petsiuk 2018) or 'gomez' (Gomez et al. 2022)")
    if metrics is None:
        metrics = default_metrics()
    if isinstance(metrics, str):
        metrics = [metrics]
    names = list(metrics)
    if not names:
        raise CnnlensError("metrics is empty; give at least one of: " + ", ".join(list_metrics()))
    infos = [metric_info(m) for m in names]
    needs = {n for info in infos for n in info.needs}
    score = check_score(score)
    batch_size = validation.batch_size(batch_size)
    _check_mode(mode, keep)
    clip = validation.flag("clip", clip)
    progress = validation.flag("progress", progress)
    deletion_substrate = fills.resolve(deletion_fill, "deletion_fill", SUBSTRATES, "black",
                                       deletion_substrate=deletion_substrate)
    insertion_substrate = fills.resolve(insertion_fill, "insertion_fill", SUBSTRATES, "blur",
                                        insertion_substrate=insertion_substrate)
    step = validation.integer("step", step, minimum=1, allow_none=True, hint="cells per step")
    seed = validation.seed(seed)
    first_index = validation.integer("first_index", first_index, minimum=0)
    for given, value in (("masks", masks), ("second_model", second_model)):
        if value is not None and given not in needs:
            users = [m for m in list_metrics() if given in metric_info(m).needs]
            warnings.warn(f"{given}= is given but none of the metrics {names} uses it (it is read by: "
                          f"{', '.join(users) or 'no registered metric'}); it is ignored", stacklevel=2)
    metric_params = _check_metric_params(metric_params, names)
    x = clf.check_input(x)
    n = x.shape[0]
    maps, layer_maps, exp_targets, method, da_mask = _unpack(explanation, x)
    raw_maps = maps
    needs_maps = bool(needs & {"maps", "insertion", "deletion"})
    if needs_maps:
        if maps is None:
            raise CnnlensError("this explanation has no maps; pass an Explanation or a (N, H, W) tensor")
        maps = check_maps(maps, x)
        if layer_maps is not None:
            layer_maps = check_maps(layer_maps, x, what="layer_maps", allow_larger=True)
    else:
        maps = None
    if target is None and exp_targets is not None:
        target = exp_targets
    targets = clf.targets(x, target, batch_size=batch_size)
    if exp_targets is not None:
        et = torch.as_tensor(exp_targets).flatten().to(targets.device, torch.long)
        if et.shape == targets.shape and not bool(torch.equal(et, targets)):
            i = int((et != targets).nonzero()[0])
            raise CnnlensError(
                f"target= {targets.tolist()[:8]} differs from the targets the explanation was computed for "
                f"{et.tolist()[:8]} (first at image {i}); drop target= to score the explanation's own classes, "
                "or explain for these targets")
    common = {
        "protocol": protocol,
        "score": score,
        "seed": seed,
        "batch_size": batch_size,
        "method": method,
        "n_images": n,
        "version": __version__,
        "targets": targets.tolist(),
        "first_index": first_index,
    }
    options = EvaluateOptions(protocol, score, step, deletion_substrate, insertion_substrate, mode, keep, clip,
                              batch_size, seed, fractions)
    ctx = MetricContext(clf, x, targets, options, maps=maps, layer_maps=layer_maps, explanation=explanation,
                        method=method, common=common, labels=labels, masks=masks, second_model=second_model,
                        ablation_mask=da_mask, raw_maps=raw_maps, first_index=first_index,
                        metric_params=metric_params)

    bar = None
    if progress:
        total = sum(ctx.forwards(g) for g in ("insertion", "deletion") if g in needs) if needs_maps else 0
        bar = progress_bar(total=total, desc=f"evaluate {method or ''}".strip(), unit="fwd")
        ctx.progress = bar.update
    results: dict[str, MetricResult] = {}
    try:
        for name, info in zip(names, infos):
            ctx.info = info
            results[name] = info.fn(ctx)
    finally:
        if bar is not None:
            bar.close()
    return results
