"""DeepLIFT with the Rescale rule (Shrikumar, Greenside & Kundaje 2017; docs/algorithms.md §2 ``deeplift``).

The input ``x`` and its baseline ``x′`` go through the model in one batch, recorded op by op
(:mod:`cnnlens.attribution.graph`). Multipliers flow back from the target logit:

- linear operations (conv, linear, batch norm, pooling by averaging, sums, reshapes,
  normalisation): the multiplier is the gradient (the linear rule);
- elementwise nonlinearities (ReLU, ReLU6, PReLU, …): ``m_in = m_out · Δy/Δx`` (Rescale), or the
  gradient at ``x`` where ``|Δx| < 1e-10``;
- products and quotients of two traced values (squeeze-excitation gates; LayerNorm/GroupNorm,
  recorded as their steps): the exact rule ``m_a = m·(b + b′)/2``, ``m_b = m·(a + a′)/2`` (and its
  quotient form), so completeness holds through them too;
- max-pool: each window's output difference ``Δy`` goes to one input — the winner for ``x`` when
  ``y ≥ y′``, else the winner for ``x′`` — divided by that input's ``Δx`` (gradient where
  ``|Δx| < 1e-10``).

Attribution = ``(x − x′) ⊙ m_x`` in pixel space; by construction Σ attribution =
``f(x) − f(x′)`` for the target logit (completeness), reported in ``info["conservation"]``.
Reused and in-place ReLU modules and in-place residual additions are separate steps of the
record, so ResNets and MobileNetV2 are handled exactly.

Baselines (``fill=``, old name ``baseline=``; :mod:`cnnlens.fills`): ``"black"`` (pixel 0,
default), ``"mean"`` (the pixel that the Classifier's normalisation maps to 0, i.e. its mean
colour — OVERVIEW's "zero tensor"; formerly ``"zero_normalized"``, still accepted),
``"image_mean"`` (each image's own mean colour per channel; formerly ``"mean"``), or a tensor
broadcastable to the images.

Example::

    >>> import torch, cnnlens
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)).eval()
    >>> e = cnnlens.explain(cnnlens.Classifier(net), torch.rand(2, 1, 8, 8), "deeplift")
    >>> e.info["conservation"]["max_abs_error"] < 1e-4
    True
"""
from __future__ import annotations

from typing import Any

import torch

from .. import fills
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation
from . import register
from ._util import conserving_explanation, propagation_classifier, refuse_torchscript
from .graph import KIND_ACT, KIND_MAXPOOL, KIND_PARAM, KIND_PRODUCT, Op, Tape, is_quotient, linear_vjp, propagate, record, vjp

__all__ = ["deeplift", "deeplift_attributions", "make_baseline", "BASELINES"]

BASELINES = ("black", "mean", "image_mean")
_EPS = 1e-10


def make_baseline(clf: Classifier, x: torch.Tensor, baseline: Any) -> torch.Tensor:
    """The pixel-space baseline ``x′`` for ``x`` (same shape): a :mod:`cnnlens.fills` fill."""
    ref = fills.fill(baseline, x, clf, what="fill")
    return clf.check_input(ref.contiguous()) if isinstance(baseline, torch.Tensor) else ref


def _safe_div(num: torch.Tensor, den: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    small = den.abs() < _EPS
    return torch.where(small, fallback, num / torch.where(small, torch.ones_like(den), den))


def _product_multipliers(op: Op, ins: list[torch.Tensor], m: torch.Tensor, n: int) -> list[torch.Tensor]:
    """Exact multipliers of ``y = a·b`` (or ``a/b``) between input and baseline halves.

    ``Δ(ab) = Δa·(b + b′)/2 + Δb·(a + a′)/2`` and ``Δ(a/b) = Δa·(1/b + 1/b′)/2 − Δb·(a + a′)/(2bb′)``
    hold exactly, so the multipliers ``m_a``, ``m_b`` keep completeness (the two-player Shapley
    split of the product's difference; Shrikumar et al. 2017 discuss such gated products)."""
    if any(t.shape[0] != 2 * n for t in ins):
        raise CnnlensError(f"{op.name} mixes the images of a batch; DeepLIFT cannot follow it")
    a, a_ref, b, b_ref = ins[0][:n], ins[0][n:], ins[1][:n], ins[1][n:]
    if is_quotient(op):
        ma = m * (1 / b + 1 / b_ref) / 2
        mb = -m * (a + a_ref) / (2 * b * b_ref)
    else:
        ma, mb = m * (b + b_ref) / 2, m * (a + a_ref) / 2
    return [ma.sum_to_size(a.shape), mb.sum_to_size(b.shape)]


def deeplift_attributions(
    clf: Classifier, x: torch.Tensor, ref: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(attributions (N, C, H, W), f(x) − f(x′) (N,))`` for the target logits."""
    n = x.shape[0]
    refuse_torchscript(clf, "deeplift", "its graph hides the operations that deeplift records to apply its rules layer by layer")
    tape: Tape = record(clf.forward_unchecked, torch.cat([x, ref]))
    logits = tape.values[tape.output]
    rows = torch.arange(n, device=logits.device)
    delta_f = logits[rows, targets] - logits[rows + n, targets]
    start = torch.zeros_like(logits[:n])
    start[rows, targets] = 1.0

    def rule(op: Op, outs: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
        ins = tape.inputs_of(op)
        if op.kind == KIND_ACT:
            m = outs[0]
            assert m is not None
            a, a_ref = ins[0][:n], ins[0][n:]
            y = tape.output_of(op)
            grad = vjp(op, [a], [m])[0]
            return [_safe_div(m * (y[:n] - y[n:]), a - a_ref, grad)]
        if op.kind == KIND_MAXPOOL:
            m = outs[0]
            assert m is not None
            a, a_ref = ins[0][:n], ins[0][n:]
            y, y_ref = tape.output_of(op)[:n], tape.output_of(op)[n:]
            top = torch.maximum(y, y_ref)
            contrib = vjp(op, [a], [m * (top - y_ref)])[0] + vjp(op, [a_ref], [m * (y - top)])[0]
            grad = vjp(op, [a], [m])[0]
            return [_safe_div(contrib, a - a_ref, grad)]
        if op.kind == KIND_PRODUCT:
            assert outs[0] is not None
            return list(_product_multipliers(op, ins, outs[0], n))
        if op.kind == KIND_PARAM:
            m = outs[0]
            assert m is not None
            return [linear_vjp(op, ins[0][:n].shape, op.arg("weight", 1), m)]
        # linear operations: the gradient, taken on the whole (input, baseline) batch so that
        # explicit batch sizes in views stay valid; the baseline half gets zero
        grads = []
        for i, o in enumerate(outs):
            full = tape.output_of(op, i)
            g = torch.zeros_like(full)
            if o is not None:
                g[:n] = o
            grads.append(g)
        return [g[:n] for g in vjp(op, ins, grads)]

    mult = propagate(tape, start, rule)
    return (x - ref) * mult, delta_f


@register("deeplift", description="DeepLIFT (Rescale rule) against a baseline")
def deeplift(
    clf: Classifier,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    seed: int,
    batch_size: int,
    layer: Any,
    fill: Any = None,
    baseline: Any = None,
) -> Explanation:
    """DeepLIFT-Rescale attributions of the target logit (§2 ``deeplift``).

    Args:
        fill: ``"black"`` (default), ``"mean"`` (the Classifier's mean colour), ``"image_mean"`` or a
            tensor (:mod:`cnnlens.fills`).
        baseline: the old name of ``fill`` (``"zero_normalized"`` = ``"mean"``).

    ``batch_size`` bounds the images per recorded pass (each pass holds the images and their
    baselines, so 2 × batch_size rows). Returns an :class:`Explanation` with ``maps`` = channel
    sums of ``attributions`` and ``info["conservation"]`` (Σ attribution vs f(x) − f(x′)).
    """
    fill = fills.resolve(fill, allowed=BASELINES, default="black", baseline=baseline)
    ref = make_baseline(clf, x, fill)
    # a float16/bfloat16 model: the pass is recorded on a float32 copy (the images and baselines
    # as the model sees them, cast up), so Σ attribution = f(x) − f(x′) of that copy exactly
    work, dtype = propagation_classifier(clf)
    attrs, deltas = [], []
    step = max(1, batch_size // 2)
    with torch.no_grad():
        for xc, rc, tc in zip(x.split(step), ref.split(step), targets.split(step)):
            a, d = deeplift_attributions(work, xc.to(dtype), rc.to(dtype), tc)
            attrs.append(a)
            deltas.append(d)
    params = {"fill": fills.describe(fill), "rule": "rescale", "compute_dtype": str(dtype).replace("torch.", "")}
    return conserving_explanation(torch.cat(attrs), targets, params, torch.cat(deltas), "delta_f", "attribution_sum")
