"""``evaluate``: every SPEC §3 metric of one explanation behind one call, with the two presets.

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

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import CnnlensError
from ..explanation import Explanation
from ._common import (
    DEFAULT_BATCH_SIZE,
    MetricResult,
    check_batch_size,
    check_classifier,
    check_maps,
    check_score,
    forward_logits,
    make_result,
    resolve_targets,
    substrate,
    to_size,
)
from .games import auc, n_forwards, pearson, play
from .insertion_game import DEFAULT_FRACTIONS, insertion_game
from .single_step import _check_mode, ad_ai

__all__ = ["evaluate", "METRICS", "PROTOCOLS", "DEFAULT_METRICS", "canonical_metric", "preset_step"]

METRICS = ("iauc", "dauc", "ic", "dc", "ad", "iic", "insertion_game", "mar")
ALIASES = {"ai": "iic"}
PROTOCOLS = ("rise", "gomez")
DEFAULT_METRICS = ("iauc", "dauc", "ic", "dc", "ad", "iic")

# the reference settings of each preset (SPEC §3)
RISE_STEPS = 224  # Petsiuk 2018: 224 steps on 224x224 inputs
GOMEZ_MAX_STEPS = 196  # Gomez et al. 2022: at most 14x14 steps


def canonical_metric(name: Any) -> str:
    """``"ai"`` → ``"iic"``; an unknown name raises a :class:`CnnlensError` listing the valid ones."""
    if not isinstance(name, str):
        raise CnnlensError(f"metric names must be strings, got {name!r}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in METRICS:
        raise CnnlensError(f"unknown metric {name!r}; available: {', '.join(METRICS)} (alias: ai = iic)")
    return key


def preset_step(protocol: str, n_cells: int, image_size: tuple[int, int]) -> int:
    """Cells per step of a preset: ``rise`` ⌈H·W/224⌉; ``gomez`` ⌊n / min(196, n)⌋."""
    if protocol == "rise":
        return max(1, math.ceil(image_size[0] * image_size[1] / RISE_STEPS))
    return max(1, n_cells // min(GOMEZ_MAX_STEPS, n_cells))


def _unpack(explanation: Any, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, str | None, Any]:
    """(maps, layer_maps, explanation targets, method name, DA mask) of the input."""
    if isinstance(explanation, Explanation):
        return explanation.maps, explanation.layer_maps, explanation.targets, explanation.method, None
    mask = getattr(explanation, "mask", None)
    if mask is not None and isinstance(mask, torch.Tensor):  # an AblationResult
        cam = getattr(explanation, "cam", None)
        return cam if isinstance(cam, torch.Tensor) else None, None, None, "dynamic_ablation", mask
    return explanation, None, None, None, None


def evaluate(
    clf: Any,
    x: torch.Tensor,
    explanation: Any,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    protocol: str = "rise",
    score: str = "prob",
    step: int | None = None,
    deletion_substrate: str = "black",
    insertion_substrate: str = "blur",
    mode: str = "soft",
    keep: float = 0.2,
    clip: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    target: Any = None,
    labels: Any = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    progress: bool = False,
) -> dict[str, MetricResult]:
    """Evaluate an explanation with the SPEC §3 metrics.

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        x: images ``(N, C, H, W)`` in [0, 1].
        explanation: an :class:`~cnnlens.Explanation`, a ``(N, h, w)`` tensor of maps, or a
            Dynamic Ablation result (``.mask``; for ``mar``).
        metrics: names from ``iauc``, ``dauc``, ``ic``, ``dc``, ``ad``, ``iic`` (alias ``ai``),
            ``insertion_game``, ``mar``.
        protocol: ``"rise"`` (Petsiuk 2018: pixel cells, ⌈H·W/224⌉ per step, Gaussian blur 11/σ5,
            bilinear soft masks) or ``"gomez"`` (Gomez et al. 2022: the method's native map,
            ⌊n / min(196, n)⌋ cells per step, box blur, bicubic soft masks).
        score: ``"prob"`` (softmax probability of the target) or ``"logit"``.
        step: cells per step (``None`` = the preset's).
        deletion_substrate, insertion_substrate: ``"black"``, ``"blur"`` (the preset's blur) or
            ``"mean"`` (the colour the Classifier normalises to 0).
        mode, keep, clip: AD/AI masking (see :func:`~cnnlens.metrics.average_drop_increase`).
        batch_size: perturbed images per forward pass.
        seed: seed of the shared tie-breaking permutation.
        target: class per image; ``None`` → the Explanation's targets, else the prediction.
        labels: ground truth for ``insertion_game`` (``None`` → agreement with the prediction).
        fractions: kept fractions of ``insertion_game``.
        progress: show a progress bar over the forward passes.

    Returns:
        ``{name: MetricResult}`` in the order asked. Each result's ``params`` records the
        protocol and every knob above (and the method's name); ``n_constant`` counts images whose
        correlation was undefined (set to 0) or whose original score was 0 (AD).
    """
    from .. import __version__

    clf = check_classifier(clf)
    if protocol not in PROTOCOLS:
        raise CnnlensError(f"unknown protocol {protocol!r}; use 'rise' (Petsiuk 2018) or 'gomez' (Gomez et al. 2022)")
    if isinstance(metrics, str):
        metrics = [metrics]
    names = list(metrics)
    if not names:
        raise CnnlensError("metrics is empty; give at least one of: " + ", ".join(METRICS))
    keys = [canonical_metric(m) for m in names]
    score = check_score(score)
    batch_size = check_batch_size(batch_size)
    _check_mode(mode, keep)
    for what, sub in (("deletion_substrate", deletion_substrate), ("insertion_substrate", insertion_substrate)):
        if sub not in ("black", "blur", "mean"):
            raise CnnlensError(f"{what} must be 'black', 'blur' or 'mean', got {sub!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 1):
        raise CnnlensError(f"step must be a positive integer (cells per step) or None, got {step!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CnnlensError(f"seed must be an integer, got {seed!r}")
    x = clf.check_input(x)
    n, _, hh, ww = x.shape
    maps, layer_maps, exp_targets, method, da_mask = _unpack(explanation, x)
    needs_maps = any(k != "mar" for k in keys)
    if needs_maps:
        if maps is None:
            raise CnnlensError("this explanation has no maps; pass an Explanation or a (N, H, W) tensor")
        maps = check_maps(maps, x)
        if layer_maps is not None:
            layer_maps = check_maps(layer_maps, x, what="layer_maps", allow_larger=True)
    with torch.no_grad():
        n_classes = int(forward_logits(clf, x[:1]).shape[1])
    if target is None and exp_targets is not None:
        target = exp_targets
    targets = resolve_targets(clf, x, target, batch_size, n_classes=n_classes)

    # the game resolution of the preset
    if needs_maps:
        if protocol == "rise":
            game_maps = to_size(maps, (hh, ww), "bilinear")
            ad_maps, upsample_mode = maps, "bilinear"
        else:
            native = layer_maps if layer_maps is not None else maps
            game_maps, ad_maps, upsample_mode = native, native, "bicubic"
        n_cells = game_maps.shape[1] * game_maps.shape[2]
        the_step = min(step if step is not None else preset_step(protocol, n_cells, (hh, ww)), n_cells)
        n_steps = math.ceil(n_cells / the_step)
    common = {
        "protocol": protocol,
        "score": score,
        "seed": seed,
        "batch_size": batch_size,
        "method": method,
        "n_images": n,
        "version": __version__,
        "targets": targets.tolist(),
    }
    game_params = {}
    if needs_maps:
        game_params = {
            "step": the_step,
            "n_steps": n_steps,
            "res": list(game_maps.shape[1:]),
            "n_cells": n_cells,
            "cell_upsampling": "nearest",
            "deletion_substrate": deletion_substrate,
            "insertion_substrate": insertion_substrate,
            "blur": "gaussian k=11 sigma=5, zero padding" if protocol == "rise" else "box max(H//5, 9) odd, zero padding",
            "auc": "trapezoid over x_k = k / n_steps",
        }

    bar = None
    if progress:
        from tqdm import tqdm

        total = 0
        if needs_maps:
            total += sum(n_forwards(n, n_cells, the_step) for g in ("insertion", "deletion")
                         if any(k in keys for k in ({"iauc", "ic"} if g == "insertion" else {"dauc", "dc"})))
        bar = tqdm(total=total, desc=f"evaluate {method or ''}".strip(), unit="fwd", leave=False)

    results: dict[str, MetricResult] = {}
    try:
        games: dict[str, Any] = {}
        for kind, pair, sub_kind in (("insertion", ("iauc", "ic"), insertion_substrate),
                                     ("deletion", ("dauc", "dc"), deletion_substrate)):
            if not any(k in keys for k in pair):
                continue
            sub = substrate(sub_kind, x, clf, protocol)
            games[kind] = play(clf, x, game_maps, targets, kind, the_step, sub, score, batch_size, seed,
                               progress=bar.update if bar is not None else None)
        for name, key in zip(names, keys):
            if key in ("iauc", "dauc", "ic", "dc"):
                g = games["insertion" if key in ("iauc", "ic") else "deletion"]
                params = {**common, **game_params,
                          "game": "insertion" if key in ("iauc", "ic") else "deletion"}
                if key in ("iauc", "dauc"):
                    results[name] = make_result(key, auc(g.scores), params, 0, g.scores)
                else:
                    diff = g.scores[:, 1:] - g.scores[:, :-1]
                    if key == "dc":
                        diff = -diff
                    r, n_const = pearson(diff, g.cell_means)
                    results[name] = make_result(key, r, {**params, "correlation": "pearson(score change, m_k)"},
                                                n_const, g.scores)
        if any(k in ("ad", "iic") for k in keys):
            ad, ai, y, o, n_zero = ad_ai(clf, x, ad_maps, targets, mode=mode, keep=float(keep), clip=bool(clip),
                                         score=score, upsample=upsample_mode, batch_size=batch_size, seed=seed)
            params = {**common, "mode": mode, "keep": float(keep) if mode == "keep" else None, "clip": bool(clip),
                      "upsample": upsample_mode, "substrate": "black",
                      "res": list(ad_maps.shape[1:]),
                      "normalisation": "min-max per image" + (" then bicubic" if upsample_mode == "bicubic"
                                                               else " after bilinear upsampling")}
            for name, key in zip(names, keys):
                if key == "ad":
                    results[name] = make_result("ad", ad, params, n_zero)
                elif key == "iic":
                    results[name] = make_result("iic", ai, params, 0)
        for name, key in zip(names, keys):
            if key == "insertion_game":
                g = insertion_game(clf, x, maps, labels, fractions=fractions, seed=seed, batch_size=batch_size)
                res = MetricResult("insertion_game", g.correct.double(), g.accuracy, float("nan"),
                                   {**common, **g.params, "unmodified": g.unmodified,
                                    "check_passed": g.check_passed}, 0, None, "↑")
                results[name] = res
            elif key == "mar":
                if da_mask is None:
                    if maps is not None and maps.dtype == torch.bool:
                        da_mask = maps
                    else:
                        raise CnnlensError("mar needs a Dynamic Ablation result (its .mask) or a boolean (N, H, W) mask")
                m = da_mask.reshape(da_mask.shape[0], -1).double()
                results[name] = make_result("mar", m.mean(1), {**common, "definition": "|m| / (H*W)"}, 0)
    finally:
        if bar is not None:
            bar.close()
    return {name: results[name] for name in names}
