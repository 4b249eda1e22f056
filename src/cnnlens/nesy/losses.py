"""The sparsity loss (NESY Eq. 1–8, docs/algorithms.md §6.2) and the Elite BackProp loss (§6.4).

Example::

    >>> import torch
    >>> from cnnlens.nesy import SparsityLoss
    >>> P = torch.tensor([[1., 0.], [0., 1.]]); theta = torch.tensor([1., 1.])
    >>> loss = SparsityLoss(P, theta)
    >>> round(float(loss(torch.tensor([[1., 1.]]), torch.tensor([0]))), 4)  # BCE(σ(0), 1), BCE(σ(0), 0)
    0.6931
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import validation
from ..errors import CnnlensError

__all__ = ["SparsityLoss", "EBPLoss", "ebp_matrix", "class_weights"]


def _check_labels(y: torch.Tensor, n: int, C: int) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.is_floating_point() and not bool((y == y.round()).all()):  # NaN fails too: never truncate
        raise CnnlensError(f"labels must be whole class indices, got {y.flatten()[:8].tolist()}")
    y = y.long().flatten()
    if y.numel() != n:
        raise CnnlensError(f"y has {y.numel()} labels for {n} rows")
    if (y < 0).any() or (y >= C).any():
        raise CnnlensError(f"labels must be in [0, {C}), got {y.min().item()}..{y.max().item()}")
    return y


class SparsityLoss(nn.Module):
    """L_sparsity = mean over N·F of BCE(σ(Norm − θ), P[y])  (NESY Eq. 4–7, §6.2).

    Computed as ``binary_cross_entropy_with_logits(Norm − θ, P[y])`` (numerically stable).
    ``P``: ``(C, F)`` 0/1 matrix (entries equal to 1 are targets 1, everything else 0, Eq. 6);
    ``theta``: ``(F,)`` thresholds, or ``None`` for TS5 (σ(Norm), no threshold). Both are
    buffers, fixed during training. ``forward(norms (N, F), y (N,))`` → scalar.
    """

    def __init__(self, P: torch.Tensor, theta: torch.Tensor | float | None) -> None:
        super().__init__()
        P = torch.as_tensor(P, dtype=torch.float32)
        if P.dim() != 2:
            raise CnnlensError(f"P must be (C, F), got shape {tuple(P.shape)}")
        F_ = P.shape[1]
        if theta is None:
            theta = torch.zeros(F_)
        theta = torch.as_tensor(theta, dtype=torch.float32).to(P.device)
        if theta.dim() == 0:
            theta = theta.expand(F_).clone()
        if theta.shape != (F_,):
            raise CnnlensError(f"theta must have one value per filter ({F_}), got shape {tuple(theta.shape)}")
        self.register_buffer("P", (P == 1).float())  # Eq. 6: target 1 iff probability is 1
        self.register_buffer("theta", theta)

    def forward(self, norms: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if norms.dim() != 2 or norms.shape[1] != self.P.shape[1]:
            raise CnnlensError(f"norms must be (N, {self.P.shape[1]}), got {tuple(norms.shape)}")
        y = _check_labels(y, norms.shape[0], self.P.shape[0]).to(norms.device)
        target = self.P.to(norms.device)[y]
        return F.binary_cross_entropy_with_logits(norms - self.theta.to(norms.device), target)


def ebp_matrix(D: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Elite BackProp probabilities ``P_ebp`` ``(C, F)`` from class activation sums ``D``
    (§6.4): 1 for the top-``k`` filters of each class (ties → lower index), else
    ``clip(1 − D[c, j] / D[c, k-th elite], 0, 1)``."""
    if D.dim() != 2:
        raise CnnlensError(f"D must be (C, F), got shape {tuple(D.shape)}")
    validation.integer("k", k, minimum=1, maximum=D.shape[1])
    D = D.float()
    order = torch.sort(-D, dim=1, stable=True).indices
    elite = order[:, :k]
    kth = D.gather(1, elite[:, -1:])  # (C, 1) activation sum of the k-th elite
    ratio = torch.where(kth > 0, D / kth.clamp_min(torch.finfo(D.dtype).tiny), torch.zeros_like(D))
    P = (1 - ratio).clamp(0, 1)
    P.scatter_(1, elite, 1.0)
    return P


class EBPLoss(nn.Module):
    """Elite BackProp penalty λ·Σ_batch Σ_j (1 − P_ebp[y_n, j])·a_{n,j} (§6.4), with
    a_{n,j} the mean absolute activation of filter j on image n. Add it to the cross-entropy.
    ``forward(a (N, F), y (N,))`` → scalar. Build ``P_ebp`` with :func:`ebp_matrix`."""

    def __init__(self, P_ebp: torch.Tensor, lam: float = 1e-3) -> None:
        super().__init__()
        P_ebp = torch.as_tensor(P_ebp, dtype=torch.float32)
        if P_ebp.dim() != 2:
            raise CnnlensError(f"P_ebp must be (C, F), got shape {tuple(P_ebp.shape)}")
        if ((P_ebp < 0) | (P_ebp > 1)).any():
            raise CnnlensError("P_ebp entries must lie in [0, 1]")
        self.register_buffer("P", P_ebp)
        self.lam = float(lam)

    def forward(self, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if a.dim() != 2 or a.shape[1] != self.P.shape[1]:
            raise CnnlensError(f"activations must be (N, {self.P.shape[1]}), got {tuple(a.shape)}")
        y = _check_labels(y, a.shape[0], self.P.shape[0]).to(a.device)
        return self.lam * ((1 - self.P.to(a.device)[y]) * a).sum()


def class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """w_c = N / (C · N_c) (§6.3); classes absent from ``y`` get weight 0."""
    y = torch.as_tensor(y).long().flatten()
    counts = torch.bincount(y, minlength=n_classes).float()
    w = torch.where(counts > 0, y.numel() / (n_classes * counts.clamp_min(1)), torch.zeros_like(counts))
    return w
