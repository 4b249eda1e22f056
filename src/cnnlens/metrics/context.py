"""What a registered metric receives: :class:`MetricContext` (docs/algorithms.md §3).

``evaluate`` validates its inputs once and builds one context; every metric function reads from
it. Computations that several metrics share are made once per context and cached: the insertion
and deletion games (IAUC+IC, DAUC+DC) and the AD/AI masking pass (AD+IIC).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from .. import fills, seeding
from ..errors import CnnlensError
from ._common import MetricResult, make_result, to_size
from .games import GameCurves, n_forwards, play
from .registry import MetricInfo
from .single_step import ad_ai

__all__ = ["MetricContext", "EvaluateOptions", "preset_step", "RISE_STEPS", "GOMEZ_MAX_STEPS"]

# the reference settings of each preset (§3)
RISE_STEPS = 224  # Petsiuk 2018: 224 steps on 224x224 inputs
GOMEZ_MAX_STEPS = 196  # Gomez et al. 2022: at most 14x14 steps


def preset_step(protocol: str, n_cells: int, image_size: tuple[int, int]) -> int:
    """Cells per step of a preset: ``rise`` ⌈H·W/224⌉; ``gomez`` ⌊n / min(196, n)⌋."""
    if protocol == "rise":
        return max(1, math.ceil(image_size[0] * image_size[1] / RISE_STEPS))
    return max(1, n_cells // min(GOMEZ_MAX_STEPS, n_cells))


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """The validated knobs of one ``evaluate`` call (see its docstring)."""

    protocol: str
    score: str
    step: int | None
    deletion_substrate: Any
    insertion_substrate: Any
    mode: str
    keep: float
    clip: bool
    batch_size: int
    seed: int
    fractions: tuple[float, ...]


class MetricContext:
    """Inputs and shared computations of one ``evaluate`` call.

    Attributes:
        clf, x: the classifier and the validated images ``(N, C, H, W)``.
        targets: ``(N,)`` the explained classes.
        options: :class:`EvaluateOptions`.
        maps: validated ``(N, h, w)`` maps (``None`` when no metric asked needs them).
        layer_maps: the explanation's layer-resolution maps, if any.
        explanation: what the user passed (an Explanation, a tensor, an AblationResult).
        method: the explanation's method name (``None`` for a bare tensor).
        labels, masks, second_model, ablation_mask: optional inputs (``None`` when not given).
        metric_params: ``{metric name: {option: value}}`` of ``evaluate(metric_params=...)``
            (read with :meth:`params_of`).
        common: parameters every result records (protocol, score, seed, targets, version …).
    """

    def __init__(self, clf: Any, x: torch.Tensor, targets: torch.Tensor, options: EvaluateOptions, *,
                 maps: torch.Tensor | None, layer_maps: torch.Tensor | None, explanation: Any, method: str | None,
                 common: dict[str, Any], labels: Any = None, masks: Any = None, second_model: Any = None,
                 ablation_mask: torch.Tensor | None = None, raw_maps: Any = None, first_index: int = 0,
                 metric_params: dict[str, dict[str, Any]] | None = None) -> None:
        self.clf = clf
        self.x = x
        self.targets = targets
        self.options = options
        self.maps = maps
        self.layer_maps = layer_maps
        self.explanation = explanation
        self.method = method
        self.common = common
        self.labels = labels
        self.masks = masks
        self.second_model = second_model
        self.ablation_mask = ablation_mask
        self.raw_maps: Any = raw_maps  # what the user passed as maps, before validation
        self.progress: Any = None  # a callable taking a number of forward passes, or None
        self.first_index = first_index  # data-set position of x[0] (§11)
        self.metric_params: dict[str, dict[str, Any]] = dict(metric_params or {})
        self._cache: dict[Any, Any] = {}
        self._games: dict[str, GameCurves] = {}
        self._ad_ai: Any = None
        self.info: MetricInfo | None = None  # the metric being computed (set by evaluate)
        if maps is not None:
            self._resolve_game()

    # ---------------------------------------------------------------- the preset's resolution
    def _resolve_game(self) -> None:
        o = self.options
        _, _, hh, ww = self.x.shape
        if o.protocol == "rise":
            self.game_maps = to_size(self.maps, (hh, ww), "bilinear")
            self.ad_maps, self.upsample_mode = self.maps, "bilinear"
        else:
            native = self.layer_maps if self.layer_maps is not None else self.maps
            self.game_maps, self.ad_maps, self.upsample_mode = native, native, "bicubic"
        self.n_cells = self.game_maps.shape[1] * self.game_maps.shape[2]
        self.step = min(o.step if o.step is not None else preset_step(o.protocol, self.n_cells, (hh, ww)), self.n_cells)
        self.n_steps = math.ceil(self.n_cells / self.step)
        self.game_params = {
            "step": self.step,
            "n_steps": self.n_steps,
            "res": list(self.game_maps.shape[1:]),
            "n_cells": self.n_cells,
            "cell_upsampling": "nearest",
            "deletion_substrate": fills.describe(o.deletion_substrate),
            "insertion_substrate": fills.describe(o.insertion_substrate),
            "blur": "gaussian k=11 sigma=5, zero padding" if o.protocol == "rise" else "box max(H//5, 9) odd, zero padding",
            "auc": "trapezoid over x_k = k / n_steps",
        }

    def forwards(self, kind: str) -> int:
        """Forward passes one game costs (for the progress bar)."""
        return n_forwards(self.x.shape[0], self.n_cells, self.step)

    # ---------------------------------------------------------------- shared computations
    def game(self, kind: str) -> GameCurves:
        """The ``"insertion"`` or ``"deletion"`` game of the protocol on :attr:`maps` (cached)."""
        if kind not in self._games:
            o = self.options
            sub_kind = o.insertion_substrate if kind == "insertion" else o.deletion_substrate
            sub = fills.fill(sub_kind, self.x, self.clf, blur="gaussian" if o.protocol == "rise" else "box",
                             what=f"{kind}_fill")
            self._games[kind] = play(self.clf, self.x, self.game_maps, self.targets, kind, self.step, sub, o.score,
                                     o.batch_size, o.seed, progress=self.progress)
        return self._games[kind]

    def ad_ai(self) -> tuple[torch.Tensor, torch.Tensor, int, dict[str, Any]]:
        """``(AD, AI, n_zero, params)`` per image of the masking pass (cached)."""
        if self._ad_ai is None:
            o = self.options
            ad, ai, _, _, n_zero = ad_ai(self.clf, self.x, self.ad_maps, self.targets, mode=o.mode, keep=float(o.keep),
                                         clip=bool(o.clip), score=o.score, upsample=self.upsample_mode,
                                         batch_size=o.batch_size, seed=o.seed)
            params = {**self.common, "mode": o.mode, "keep": float(o.keep) if o.mode == "keep" else None,
                      "clip": bool(o.clip), "upsample": self.upsample_mode, "substrate": "black",
                      "res": list(self.ad_maps.shape[1:]),
                      "normalisation": "min-max per image" + (" then bicubic" if self.upsample_mode == "bicubic"
                                                               else " after bilinear upsampling")}
            self._ad_ai = (ad, ai, n_zero, params)
        return self._ad_ai

    # ---------------------------------------------------------------- helpers for metrics
    def image_generator(self, i: int, stream: str | int) -> torch.Generator:
        """The seed stream of image ``i`` of this call (§11, :mod:`cnnlens.seeding`)."""
        return seeding.image_generator(self.options.seed, self.first_index + i, stream)

    def run_generator(self, stream: str | int) -> torch.Generator:
        """A seed stream shared by the whole call (§11)."""
        return seeding.run_generator(self.options.seed, stream)

    def need(self, what: str) -> Any:
        """The optional input ``what`` (``masks``, ``second_model``, ``labels``); one line if missing."""
        value = getattr(self, what)
        if value is None:
            name = self.info.name if self.info is not None else "this metric"
            raise CnnlensError(f"metric {name!r} needs {what}; pass evaluate(..., {what}=...)")
        return value

    def params_of(self, name: str, defaults: dict[str, Any]) -> dict[str, Any]:
        """The options of metric ``name``: ``defaults`` updated with ``evaluate(metric_params=
        {name: {...}})``; an option not in ``defaults`` is refused in one line naming the valid ones."""
        given = self.metric_params.get(name, {})
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise CnnlensError(f"metric {name!r} has no option {unknown[0]!r}; its options: {', '.join(defaults)}")
        return {**defaults, **given}

    def cached(self, key: Any, compute: Any) -> Any:
        """``compute()`` once per context and ``key`` (work shared by two metrics, e.g. the
        re-explained perturbed inputs of max- and average-sensitivity)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def explain_again(self, x: torch.Tensor | None = None, clf: Any = None,
                      targets: torch.Tensor | None = None) -> torch.Tensor:
        """Re-run the explanation's method with its recorded parameters (for metrics that
        perturb the input or the model), on ``x``/``clf``/``targets`` (default: this call's)."""
        from ..attribution import explain

        exp = self.explanation
        if self.method is None or not hasattr(exp, "params"):
            name = self.info.name if self.info is not None else "this metric"
            raise CnnlensError(f"metric {name!r} re-runs the method: pass an Explanation, not bare maps")
        recorded = {"method", "seed", "layer", "target", "batch_size", "version"}
        params = {k: v for k, v in exp.params.items() if k not in recorded}
        return explain(self.clf if clf is None else clf, self.x if x is None else x, self.method,
                       target=self.targets if targets is None else targets, seed=exp.params.get("seed", 0),
                       batch_size=exp.params.get("batch_size", self.options.batch_size),
                       layer=exp.params.get("layer"), **params).maps

    def result(self, values: torch.Tensor, params: dict[str, Any], n_constant: int = 0,
               curves: torch.Tensor | None = None) -> MetricResult:
        """A :class:`MetricResult` of the metric being computed, with its registered direction."""
        assert self.info is not None
        return make_result(self.info.name, values, params, n_constant, curves, self.info.direction)
