"""Greedy Algorithm 1 of the RI paper on a side matrix (docs/algorithms.md §5).

The algorithm only needs, per input x, which reference images lie on a different side of each
sampled boundary than x (``differ``, ``(N, Q)`` bool) and which reference images have a
different predicted class (``in_d``, ``(N,)`` bool). It is vectorised over Q and over a batch of
inputs; the loop runs over greedy steps (at most |Q|).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CnnlensError

__all__ = ["GreedyResult", "greedy_cover"]


@dataclass
class GreedyResult:
    """Result of :func:`greedy_cover` for a batch of B inputs.

    Attributes:
        order: ``(B, Q)`` int64, the chosen boundary indices in the order they were added,
            padded with −1.
        n_chosen: ``(B,)`` int64, |P| per input.
        covered: ``(B, N)`` bool, the reference images covered by P (C).
        delta: ``(B,)`` int64, δ = τ(x) = |D(x) ∩ cell of x under all of Q|.
    """

    order: torch.Tensor
    n_chosen: torch.Tensor
    covered: torch.Tensor
    delta: torch.Tensor

    def boundaries(self, i: int) -> torch.Tensor:
        """The chosen boundary indices of input ``i`` (``(|P|,)`` int64, in selection order)."""
        return self.order[i, : int(self.n_chosen[i])]


def greedy_cover(differ: torch.Tensor, in_d: torch.Tensor) -> GreedyResult:
    """Run Algorithm 1 (§5) on a batch.

    Args:
        differ: ``(B, N, Q)`` (or ``(N, Q)`` for one input) bool: ``differ[b, n, q]`` is True when
            reference ``n`` lies on a different side of boundary ``q`` than input ``b``
            (side s_h(z) = [⟨W_h, ψ(z)⟩ + b_h ≥ 0]).
        in_d: ``(B, N)`` (or ``(N,)``) bool: reference ``n`` is in D(x_b) (other predicted class).

    Returns:
        :class:`GreedyResult`. Per step, among h ∉ P with lost_D(h) > 0, the boundary with the
        smallest lost_S/lost_D is added; ties (including lost_S = 0) go to the largest lost_D,
        then the lowest index in Q. Stops when |C ∩ D| ≤ δ.
    """
    if differ.dim() == 2:
        differ = differ.unsqueeze(0)
    if in_d.dim() == 1:
        in_d = in_d.unsqueeze(0)
    if differ.dim() != 3 or in_d.dim() != 2 or differ.shape[:2] != in_d.shape:
        raise CnnlensError(
            f"greedy_cover needs differ (B, N, Q) and in_d (B, N); got {tuple(differ.shape)} and {tuple(in_d.shape)}"
        )
    differ = differ.bool()
    in_d = in_d.bool()
    if differ.shape[0] == 1 and differ.device.type == "cpu":
        return _greedy_one_cpu(differ[0], in_d[0])
    b, n, q = differ.shape
    dev = differ.device
    full_cell = ~differ.any(dim=2)
    delta = (full_cell & in_d).sum(dim=1)
    chosen = torch.zeros(b, q, dtype=torch.bool, device=dev)
    order = torch.full((b, q), -1, dtype=torch.long, device=dev)
    n_chosen = torch.zeros(b, dtype=torch.long, device=dev)
    # 0/1 float counts are exact below 2**24. ``lost`` holds [lost_D; lost_S] for every h and is
    # updated incrementally: each step subtracts only the rows the chosen boundary removed.
    dfl = differ.to(torch.float32)  # (B, N, Q)
    ind = in_d.to(torch.float32)
    split = torch.stack([ind, 1.0 - ind], dim=1)  # (B, 2, N)
    cov = torch.ones(b, n, dtype=torch.float32, device=dev)
    lost = torch.bmm(split, dfl)  # (B, 2, Q)
    n_cd = ind.sum(dim=1)  # |C ∩ D|
    rows = torch.arange(b, device=dev)
    inf = torch.tensor(float("inf"), dtype=torch.float64, device=dev)
    for _ in range(q):
        active = n_cd > delta
        if not bool(active.any()):
            break
        lost_d, lost_s = lost[:, 0], lost[:, 1]
        cand = (lost_d > 0.5) & ~chosen
        # some h outside P always separates a covered D image while |C ∩ D| > δ
        if bool((active & ~cand.any(dim=1)).any()):  # pragma: no cover - impossible by construction
            raise CnnlensError("greedy cover found no boundary to add; the side matrix is inconsistent")
        # IEEE division is correctly rounded, so equal ratios of integers give equal doubles
        ratio = torch.where(cand, lost_s.double() / lost_d.double().clamp_min(1.0), inf)
        best = ratio.min(dim=1, keepdim=True).values
        tie = cand & (ratio == best)
        h = torch.where(tie, lost_d, torch.full_like(lost_d, -1.0)).argmax(dim=1)  # first max = lowest index
        h = torch.where(active, h, torch.full_like(h, -1))
        act = rows[active]
        ha = h[active]
        chosen[act, ha] = True
        order[act, n_chosen[act]] = ha
        n_chosen[act] += 1
        removed = torch.zeros_like(cov)
        removed[act] = cov[act] * dfl[act, :, ha]  # (B, N): covered rows on the other side of h
        cov -= removed
        lost -= torch.bmm(split * removed[:, None, :], dfl)
        n_cd -= (removed * ind).sum(dim=1)
    covered = cov > 0.5
    return GreedyResult(order=order, n_chosen=n_chosen, covered=covered, delta=delta)


def _greedy_one_cpu(differ: torch.Tensor, in_d: torch.Tensor) -> GreedyResult:
    """Algorithm 1 for one input on the CPU (NumPy; lower per-step overhead than torch ops).

    Same rules as the batched path; lost_S/lost_D are integer counts updated incrementally from
    the rows each chosen boundary removes, so the total work is O(|R|·|Q|) plus O(|P|·(|R| + |Q|)).
    """
    d = differ.numpy()
    ind = in_d.numpy()
    n, q = d.shape
    delta = int((~d.any(axis=1) & ind).sum())
    lost_d = d[ind].sum(axis=0, dtype=np.int64)
    lost_s = d[~ind].sum(axis=0, dtype=np.int64)
    covered = np.ones(n, dtype=bool)
    chosen = np.zeros(q, dtype=bool)
    order: list[int] = []
    n_cd = int(ind.sum())
    while n_cd > delta:
        cand = (lost_d > 0) & ~chosen
        if not cand.any():  # pragma: no cover - impossible by construction
            raise CnnlensError("greedy cover found no boundary to add; the side matrix is inconsistent")
        # IEEE division is correctly rounded, so equal ratios of integers give equal doubles
        ratio = np.where(cand, lost_s / np.maximum(lost_d, 1), np.inf)
        tie = cand & (ratio == ratio.min())
        h = int(np.argmax(np.where(tie, lost_d, -1)))  # first max = lowest index
        removed = covered & d[:, h]
        rows = d[removed]
        rd = ind[removed]
        lost_d -= rows[rd].sum(axis=0, dtype=np.int64)
        lost_s -= rows[~rd].sum(axis=0, dtype=np.int64)
        n_cd -= int(rd.sum())
        covered &= ~removed
        chosen[h] = True
        order.append(h)
    out = torch.full((1, q), -1, dtype=torch.long)
    out[0, : len(order)] = torch.tensor(order, dtype=torch.long)
    return GreedyResult(order=out, n_chosen=torch.tensor([len(order)]), covered=torch.from_numpy(covered)[None],
                        delta=torch.tensor([delta]))
