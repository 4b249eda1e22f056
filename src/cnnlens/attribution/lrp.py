"""Layer-wise Relevance Propagation (Bach et al. 2015; OVERVIEW §LRP; docs/algorithms.md §2 ``lrp``).

Relevance starts at the explained logit (R = logit of the target class, 0 elsewhere) and flows
back through the recorded forward pass (:mod:`cnnlens.attribution.graph`), one rule per operation:

=====================  ===========================================================================
operation              rule
=====================  ===========================================================================
conv / linear          composite ``"epsilon"``: ε-rule everywhere.
                       composite ``"epsilon_alpha2_beta1_flat"`` (OVERVIEW's): the **first** conv
                       or linear layer **Flat**, every other conv **α2β1**, every other linear
                       **ε**.
activations            pass the relevance unchanged (ReLU, ReLU6, PReLU, SiLU, GELU, ...)
products, quotients    the gate (the factor broadcast over the other; a divisor; LayerNorm's
                       ``1/σ``) is held constant, the signal gets all relevance (Ali et al. 2022;
                       AttnLRP); two same-shape factors split it equally (AttnLRP's uniform rule)
layer / group norm     recorded as centring, ``1/σ`` gate, product, affine: the rules above
max-pool, reshapes     follow the gradient (max-pool: to the winning input)
avg-pool, sums,        split in proportion to the contributions (``R_i = a_i·∂z/∂a_i·R/z``),
residual additions     also for in-place ``out += identity``
BatchNorm              folded into the preceding convolution first; otherwise passed on
normalisation, consts  passed on (the Classifier's mean/std, the binary expansion)
=====================  ===========================================================================

Rules (``z`` = the layer's output, ``s(·)`` adds ``ε·sign`` with sign(0)=+1):

- ε: ``R_in = a ⊙ Wᵀ (R / s_ε(z))`` with ``z = W a + b``;
- α2β1: ``R_in = α·[a⁺⊙W⁺ᵀ(R/s(z⁺)) + a⁻⊙W⁻ᵀ(R/s(z⁺))] − β·[a⁺⊙W⁻ᵀ(R/s(z⁻)) + a⁻⊙W⁺ᵀ(R/s(z⁻))]``,
  ``z⁺ = W⁺a⁺ + W⁻a⁻ + b⁺``, ``z⁻ = W⁻a⁺ + W⁺a⁻ + b⁻`` (α = 2, β = 1);
- Flat: ``R_in = 1ᵀ (R / s(z₁))`` with ``z₁ = 1·1`` (every input of the receptive field counts
  equally; zero padding does not count).

The explanation keeps the pixel relevance ``(N, C, H, W)`` and the map = its sum over channels
(signed, so that conservation can be checked); ``info["conservation"]`` compares Σ relevance with
the explained logit per image (biases and stabilisers absorb some relevance, so they differ).

Example::

    >>> import torch, cnnlens
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)).eval()
    >>> e = cnnlens.explain(cnnlens.Classifier(net), torch.rand(2, 1, 8, 8), "lrp", composite="epsilon")
    >>> e.maps.shape, sorted(e.info["conservation"])
    (torch.Size([2, 8, 8]), ['explained', 'max_abs_error', 'relevance_sum'])
"""
from __future__ import annotations

from typing import Any

import torch

from .. import validation
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation
from . import register
from ._util import conserving_explanation, propagation_classifier, refuse_torchscript
from .graph import (
    KIND_ACT,
    KIND_BN,
    KIND_CONST,
    KIND_IDENTITY,
    KIND_MAXPOOL,
    KIND_PARAM,
    KIND_PRODUCT,
    KIND_PROP,
    KIND_SELECT,
    Op,
    Tape,
    fold_batchnorm,
    gate_roles,
    linear_vjp,
    param_layer,
    propagate,
    record,
    rerun,
    stabilize,
    vjp,
)

__all__ = ["lrp", "lrp_relevance", "COMPOSITES"]

COMPOSITES = ("epsilon", "epsilon_alpha2_beta1_flat")


def _call(op: Op, a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return rerun(op, [a], weight=weight, bias=bias)


def _epsilon(op: Op, a: torch.Tensor, R: torch.Tensor, eps: float) -> torch.Tensor:
    _, w, b = param_layer(op)
    z = _call(op, a, w, b)
    return a * linear_vjp(op, a.shape, w, R / stabilize(z, eps))


def _alpha_beta(op: Op, a: torch.Tensor, R: torch.Tensor, alpha: float, beta: float, stab: float) -> torch.Tensor:
    _, w, b = param_layer(op)
    ap, an = a.clamp(min=0), a.clamp(max=0)
    wp, wn = w.clamp(min=0), w.clamp(max=0)
    bp = b.clamp(min=0) if b is not None else None
    bn = b.clamp(max=0) if b is not None else None
    z_pos = _call(op, ap, wp, bp) + _call(op, an, wn, None)
    z_neg = _call(op, ap, wn, bn) + _call(op, an, wp, None)
    s_pos, s_neg = R / stabilize(z_pos, stab), R / stabilize(z_neg, stab)
    pos = ap * linear_vjp(op, a.shape, wp, s_pos) + an * linear_vjp(op, a.shape, wn, s_pos)
    neg = ap * linear_vjp(op, a.shape, wn, s_neg) + an * linear_vjp(op, a.shape, wp, s_neg)
    return alpha * pos - beta * neg


def _flat(op: Op, a: torch.Tensor, R: torch.Tensor, stab: float) -> torch.Tensor:
    _, w, _ = param_layer(op)
    ones_w = torch.ones_like(w)
    z = _call(op, torch.ones_like(a), ones_w, None)
    return linear_vjp(op, a.shape, ones_w, R / stabilize(z, stab))


def lrp_relevance(
    clf: Classifier,
    x: torch.Tensor,
    targets: torch.Tensor,
    composite: str = "epsilon_alpha2_beta1_flat",
    epsilon: float = 1e-6,
    stabilizer: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel relevance ``(N, C, H, W)`` of ``targets`` and the explained logits ``(N,)``.

    ``x`` is a validated pixel-space batch. Raises :class:`CnnlensError` for an unsupported
    operation in the model (naming it) or an unknown composite.
    """
    if composite not in COMPOSITES:
        raise CnnlensError(f"unknown LRP composite {composite!r}; available: {', '.join(COMPOSITES)}")
    refuse_torchscript(clf, "lrp", "its graph hides the operations that lrp records to apply its rules layer by layer")
    tape: Tape = record(clf.forward_unchecked, x)
    fold_batchnorm(tape)
    first = next((op.index for op in tape.ops if op.kind == KIND_PARAM), None)
    logits = tape.values[tape.output]
    rows = torch.arange(len(targets), device=logits.device)
    explained = logits[rows, targets]
    start = torch.zeros_like(logits)
    start[rows, targets] = explained

    def rule(op: Op, outs: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
        ins = tape.inputs_of(op)
        R = outs[0]
        if op.kind == KIND_PARAM:
            assert R is not None
            if composite == "epsilon_alpha2_beta1_flat" and op.index == first:
                return [_flat(op, ins[0], R, stabilizer)]
            if composite == "epsilon" or op.arg("weight", 1).dim() == 2:
                return [_epsilon(op, ins[0], R, epsilon)]
            return [_alpha_beta(op, ins[0], R, 2.0, 1.0, stabilizer)]
        if op.kind in (KIND_ACT, KIND_BN, KIND_IDENTITY, KIND_CONST):
            assert R is not None
            if R.shape != ins[0].shape:
                raise CnnlensError(f"{op.name} changes the shape of its input; LRP cannot pass relevance through it")
            return [R]
        if op.kind in (KIND_SELECT, KIND_MAXPOOL):
            grads = [o if o is not None else torch.zeros_like(tape.output_of(op, i)) for i, o in enumerate(outs)]
            return list(vjp(op, ins, grads))
        if op.kind == KIND_PROP:
            assert R is not None
            z = tape.output_of(op)
            grads = vjp(op, ins, [R / stabilize(z, stabilizer)])
            return [a * g for a, g in zip(ins, grads)]
        if op.kind == KIND_PRODUCT:
            assert R is not None
            z = tape.output_of(op)
            shares = gate_roles(op, ins, z)
            if all(not share or a.shape == z.shape for a, share in zip(ins, shares)):
                return [R * share if share else None for share in shares]  # a·g·R/(a·g) = R: no division needed
            grads = vjp(op, ins, [R / stabilize(z, stabilizer)])
            return [a * g * share if share else None for a, g, share in zip(ins, grads, shares)]
        raise CnnlensError(f"LRP has no rule for {op.name}")  # pragma: no cover - kinds are closed

    relevance = propagate(tape, start, rule)
    return relevance, explained


@register("lrp", description="Layer-wise Relevance Propagation (ε or ε-α2β1-Flat composite)")
def lrp(
    clf: Classifier,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    seed: int,
    batch_size: int,
    layer: Any,
    composite: str = "epsilon_alpha2_beta1_flat",
    epsilon: float = 1e-6,
    stabilizer: float = 1e-6,
) -> Explanation:
    """LRP relevance of the target logit (§2 ``lrp``).

    Args:
        composite: ``"epsilon_alpha2_beta1_flat"`` (default, OVERVIEW's: Flat first layer,
            α2β1 other convolutions, ε dense layers) or ``"epsilon"`` (ε-rule everywhere).
        epsilon: ε of the ε-rule (default 1e-6).
        stabilizer: denominator stabiliser of the Flat, α2β1 and proportional rules (1e-6).

    Returns an :class:`Explanation` whose ``maps`` are the channel sums of the pixel relevance
    ``attributions``; ``info["conservation"]`` holds Σ relevance against the explained logit.
    """
    validation.real("epsilon", epsilon, low=0)
    validation.real("stabilizer", stabilizer, low=0, open_low=True)
    work, dtype = propagation_classifier(clf)  # float32 copy of a half-precision model (ε = 1e-6 underflows)
    rel, expl = [], []
    with torch.no_grad():
        for chunk, t in zip(x.split(batch_size), targets.split(batch_size)):
            r, e = lrp_relevance(work, chunk.to(dtype), t, composite, float(epsilon), float(stabilizer))
            rel.append(r)
            expl.append(e)
    params = {"composite": composite, "epsilon": epsilon, "stabilizer": stabilizer, "initial_relevance": "target logit",
              "compute_dtype": str(dtype).replace("torch.", "")}
    return conserving_explanation(torch.cat(rel), targets, params, torch.cat(expl), "explained", "relevance_sum")
