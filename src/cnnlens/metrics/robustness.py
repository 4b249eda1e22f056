"""Robustness of a map to input noise: max- and average-sensitivity (Yeh et al. 2019; docs/algorithms.md §3).

Yeh, Hsieh, Suggala, Inouye & Ravikumar 2019, "On the (In)fidelity and Sensitivity of
Explanations" (NeurIPS), Definition 3.1 and §3 there:

    SENS_MAX(Φ, f, x, r) = max_{‖δ‖∞ ≤ r} ‖Φ(f, x + δ) − Φ(f, x)‖
    SENS_AVG(Φ, f, x, r) = E_{δ ~ U(‖δ‖∞ ≤ r)} ‖Φ(f, x + δ) − Φ(f, x)‖

estimated, as the paper does, by Monte-Carlo: ``n_samples`` perturbations ``δ`` uniform in the
L∞ ball of radius ``radius`` (each pixel and channel independently ``U[−r, r]``, pixel space),
``x + δ`` clamped to [0, 1] (the images the Classifier accepts), the explanation's method re-run
with its recorded parameters on ``x + δ`` for the **original** target, Frobenius norm of the
map difference; max over the samples (max-sensitivity) or mean (average-sensitivity). Lower is
better (↓).

Options (``evaluate(metric_params={"max_sensitivity": {...}})``): ``radius`` (0.02, as captum's
``sensitivity_max``), ``n_samples`` (10, captum's; Quantus uses 200), ``normalise`` (``False``: the
paper's ``‖Φ(x+δ) − Φ(x)‖``; ``True``: divided by ``‖Φ(x)‖``, the form captum and Quantus
report). With ``normalise=True`` a map with ``‖Φ(x)‖ = 0`` scores 0 and is counted in
``n_constant``.

Randomness: ``δ`` of image ``i`` comes from its own seed stream ``metrics.sensitivity``
(``SeedSequence([seed, first_index + i, 11])``, §11), so a value never depends on the batch or the
image's neighbours. Max- and average-sensitivity with the same options share one set of
perturbations and re-explanations.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .. import seeding, validation
from ..errors import CnnlensError
from ._common import MetricResult
from .registry import register

if TYPE_CHECKING:
    from .context import MetricContext

__all__ = ["perturbations", "sensitivity_distances", "DEFAULTS"]

DEFAULTS: dict[str, Any] = {"radius": 0.02, "n_samples": 10, "normalise": False}


def perturbations(x: torch.Tensor, radius: float, n_samples: int, seed: int = 0,
                  first_index: int = 0) -> torch.Tensor:
    """``δ`` ``(n_samples, N, C, H, W)``: uniform in ``[−radius, radius)`` per value, image ``i``
    drawn from its seed stream ``metrics.sensitivity`` (§11)."""
    n = x.shape[0]
    out = torch.empty((n_samples, *x.shape), dtype=torch.float32)
    for i in range(n):
        g = seeding.image_generator(seed, first_index + i, "metrics.sensitivity")
        u = torch.rand((n_samples, *x.shape[1:]), generator=g, dtype=torch.float32)
        out[:, i] = (2.0 * u - 1.0) * radius
    return out.to(device=x.device, dtype=x.dtype)


def _check(p: dict[str, Any]) -> dict[str, Any]:
    return {"radius": validation.real("radius", p["radius"], 0, None, open_low=True, hint="L∞ radius in pixel units"),
            "n_samples": validation.integer("n_samples", p["n_samples"], minimum=1),
            "normalise": validation.flag("normalise", p["normalise"])}


def sensitivity_distances(ctx: MetricContext, radius: float, n_samples: int) -> torch.Tensor:
    """``‖Φ(x + δ_s) − Φ(x)‖_F`` ``(N, n_samples)`` float64 (cached per context and options).

    Methods with per-image seed streams (LIME …) are re-run once per sample on the whole batch,
    so image ``i`` keeps its stream; the others on all ``n_samples · N`` perturbed images at once."""
    from ..attribution import method_info

    def compute() -> torch.Tensor:
        x, base = ctx.x, ctx.maps
        assert base is not None
        n = x.shape[0]
        delta = perturbations(x, radius, n_samples, ctx.options.seed, ctx.first_index)
        xs = (x.unsqueeze(0) + delta).clamp_(0.0, 1.0)
        dist = torch.empty((n, n_samples), dtype=torch.float64)
        if ctx.method is not None and method_info(ctx.method).takes_index:
            for s in range(n_samples):
                maps = ctx.explain_again(xs[s])
                dist[:, s] = _fro(maps, base).cpu()
        else:
            maps = ctx.explain_again(xs.reshape(n_samples * n, *x.shape[1:]), targets=ctx.targets.repeat(n_samples))
            dist[:] = _fro(maps.reshape(n_samples, n, *maps.shape[1:]), base.unsqueeze(0)).T.cpu()
        return dist

    return ctx.cached(("sensitivity", float(radius), int(n_samples)), compute)


def _fro(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.shape[-2:] != b.shape[-2:]:
        raise CnnlensError(f"the re-run method gave maps of size {tuple(a.shape[-2:])}, the explanation's are "
                           f"{tuple(b.shape[-2:])}; pass the method's own Explanation")
    return (a.double() - b.double()).flatten(-2).norm(dim=-1)


def _sensitivity(ctx: MetricContext, name: str, reduce: str) -> MetricResult:
    p = _check(ctx.params_of(name, DEFAULTS))
    dist = sensitivity_distances(ctx, p["radius"], p["n_samples"])
    n_zero = 0
    if p["normalise"]:
        norm = ctx.maps.double().flatten(1).norm(dim=1).cpu()
        zero = norm == 0
        dist = torch.where(zero[:, None], torch.zeros_like(dist), dist / torch.where(zero, 1.0, norm)[:, None])
        n_zero = int(zero.sum())
    values = dist.amax(1) if reduce == "max" else dist.mean(1)
    formula = "‖Φ(x+δ) − Φ(x)‖_F" + (" / ‖Φ(x)‖_F" if p["normalise"] else "")
    return ctx.result(values, {**ctx.common, **p, "reduce": f"{reduce} over samples", "definition": formula,
                               "noise": "δ ~ U[−radius, radius) per pixel and channel, x + δ clamped to [0, 1]",
                               "seed_stream": "metrics.sensitivity (per image, §11)",
                               "target": "the original targets",
                               **({"zero_map": "0, counted in n_constant"} if p["normalise"] else {})}, n_zero)


@register("max_sensitivity", direction="↓", needs=("maps", "method"), order=40,
          description="max over seeded x + δ, ‖δ‖∞ ≤ r, of ‖Φ(x+δ) − Φ(x)‖ (Yeh et al. 2019)")
def _max_sensitivity(ctx: MetricContext) -> MetricResult:
    return _sensitivity(ctx, "max_sensitivity", "max")


@register("avg_sensitivity", direction="↓", needs=("maps", "method"), aliases=("average_sensitivity",), order=41,
          description="mean over seeded x + δ, ‖δ‖∞ ≤ r, of ‖Φ(x+δ) − Φ(x)‖ (Yeh et al. 2019)")
def _avg_sensitivity(ctx: MetricContext) -> MetricResult:
    return _sensitivity(ctx, "avg_sensitivity", "mean")
