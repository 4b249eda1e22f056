"""Greedy Algorithm 1 of the RI paper on a side matrix (SPEC §5).

The algorithm only needs, per input x, which reference images lie on a different side of each
sampled boundary than x (``differ``, ``(N, Q)`` bool) and which reference images have a
different predicted class (``in_d``, ``(N,)`` bool). It is vectorised over Q and over a batch of
inputs; the loop runs over greedy steps (at most |Q|).
"""
from __future__ import annotations

from dataclasses import dataclass

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
    """Run Algorithm 1 (SPEC §5) on a batch.

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
    b, n, q = differ.shape
    dev = differ.device
    full_cell = ~differ.any(dim=2)
    delta = (full_cell & in_d).sum(dim=1)
    covered = torch.ones(b, n, dtype=torch.bool, device=dev)
    chosen = torch.zeros(b, q, dtype=torch.bool, device=dev)
    order = torch.full((b, q), -1, dtype=torch.long, device=dev)
    n_chosen = torch.zeros(b, dtype=torch.long, device=dev)
    # counts are integers <= N; float32 sums of 0/1 are exact below 2**24
    dfl = differ.to(torch.float32)
    rows = torch.arange(b, device=dev)
    for _ in range(q):
        cd = covered & in_d
        active = cd.sum(dim=1) > delta
        if not bool(active.any()):
            break
        lost_d = torch.bmm(cd.to(torch.float32).unsqueeze(1), dfl).squeeze(1)  # (B, Q)
        lost_s = torch.bmm((covered & ~in_d).to(torch.float32).unsqueeze(1), dfl).squeeze(1)
        cand = (lost_d > 0) & ~chosen
        # some h outside P always separates a covered D image while |C ∩ D| > δ
        if bool((active & ~cand.any(dim=1)).any()):  # pragma: no cover - impossible by construction
            raise CnnlensError("greedy cover found no boundary to add; the side matrix is inconsistent")
        # IEEE division is correctly rounded, so equal ratios of integers give equal doubles
        ratio = torch.where(cand, lost_s.double() / lost_d.double().clamp_min(1), torch.full_like(lost_s, float("inf"), dtype=torch.float64))
        best = ratio.min(dim=1, keepdim=True).values
        tie = cand & (ratio == best)
        h = torch.where(tie, lost_d, torch.full_like(lost_d, -1.0)).argmax(dim=1)  # first max = lowest index
        idx = rows[active]
        hs = h[active]
        chosen[idx, hs] = True
        order[idx, n_chosen[idx]] = hs
        n_chosen[idx] += 1
        covered[idx] &= ~differ[idx, :, hs]
    return GreedyResult(order=order, n_chosen=n_chosen, covered=covered, delta=delta)
