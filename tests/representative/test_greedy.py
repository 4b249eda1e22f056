"""Greedy Algorithm 1 (SPEC §5) on constructed side matrices with known optima."""
from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
import torch

from cnnlens.representative import greedy_cover


def _m(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


def _reference_greedy(differ: torch.Tensor, in_d: torch.Tensor) -> list[int]:
    """Plain-Python Algorithm 1 with exact fractions (independent of the vectorised code)."""
    n, q = differ.shape
    d = [bool(v) for v in in_d]
    diff = [[bool(differ[i, h]) for h in range(q)] for i in range(n)]
    delta = sum(1 for i in range(n) if d[i] and not any(diff[i]))
    covered = set(range(n))
    chosen: list[int] = []
    while sum(1 for i in covered if d[i]) > delta:
        best = None
        for h in range(q):
            if h in chosen:
                continue
            lost_d = sum(1 for i in covered if d[i] and diff[i][h])
            lost_s = sum(1 for i in covered if not d[i] and diff[i][h])
            if lost_d == 0:
                continue
            key = (Fraction(lost_s, lost_d), -lost_d, h)
            if best is None or key < best[0]:
                best = (key, h)
        assert best is not None
        chosen.append(best[1])
        covered -= {i for i in covered if diff[i][best[1]]}
    return chosen


def _optimum(differ: torch.Tensor, in_d: torch.Tensor, delta: int) -> int:
    """Brute force max |C| over all P ⊆ Q with |C ∩ D| ≤ δ."""
    n, q = differ.shape
    best = -1
    for r in range(q + 1):
        for P in itertools.combinations(range(q), r):
            cov = ~differ[:, list(P)].any(1) if P else torch.ones(n, dtype=torch.bool)
            if int((cov & in_d).sum()) <= delta:
                best = max(best, int(cov.sum()))
    return best


def test_lost_s_zero_tie_goes_to_largest_lost_d():
    # refs 0-3 in D, 4-9 not. h0 cuts D{0,1}; h1 cuts D{0,1,2}; h2 cuts D{3} and S{4}.
    differ = torch.zeros(10, 3, dtype=torch.bool)
    differ[[0, 1], 0] = True
    differ[[0, 1, 2], 1] = True
    differ[[3, 4], 2] = True
    in_d = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=torch.bool)
    res = greedy_cover(differ, in_d)
    # step 1: h0 and h1 both have lost_S = 0 -> the larger lost_D (h1); step 2: h2
    assert res.boundaries(0).tolist() == [1, 2]
    assert res.covered[0].nonzero().squeeze(1).tolist() == [5, 6, 7, 8, 9]
    assert int(res.delta[0]) == 0
    assert int(res.covered[0].sum()) == _optimum(differ, in_d, 0)


def test_equal_ratio_and_equal_lost_d_goes_to_lowest_index():
    differ = torch.zeros(6, 3, dtype=torch.bool)
    differ[[0, 3], 1] = True  # h1 and h2 identical, h0 worse
    differ[[0, 3], 2] = True
    differ[[0, 3, 4], 0] = True
    in_d = torch.tensor([1, 0, 0, 0, 0, 0], dtype=torch.bool)
    res = greedy_cover(differ, in_d)
    assert res.boundaries(0).tolist() == [1]
    assert int(res.covered[0].sum()) == _optimum(differ, in_d, 0) == 4


def test_ratio_ranking_prefers_smaller_lost_s_over_lost_d():
    # h0: lost_S 2 / lost_D 4 = 0.5 ; h1: 1/1 = 1 ; h2: 3/3 = 1
    differ = torch.zeros(12, 3, dtype=torch.bool)
    in_d = torch.zeros(12, dtype=torch.bool)
    in_d[:4] = True
    differ[[0, 1, 2, 3, 4, 5], 0] = True
    differ[[0, 6], 1] = True
    differ[[0, 1, 2, 7, 8, 9], 2] = True
    res = greedy_cover(differ, in_d)
    assert res.boundaries(0).tolist() == [0]
    assert res.boundaries(0).tolist() == _reference_greedy(differ, in_d)


def test_delta_counts_unseparable_d_images_and_stop_rule():
    differ = _m([[0, 0], [1, 0], [0, 1], [0, 0], [0, 0]])
    in_d = torch.tensor([1, 1, 1, 0, 0], dtype=torch.bool)  # ref 0 in D, never separated
    res = greedy_cover(differ, in_d)
    assert int(res.delta[0]) == 1
    assert res.boundaries(0).tolist() == [0, 1]
    assert int((res.covered[0] & in_d).sum()) == 1


def test_empty_p_when_nothing_to_remove():
    differ = _m([[1, 0], [0, 0], [0, 1]])
    in_d = torch.tensor([0, 1, 0], dtype=torch.bool)  # the only D image shares x's full cell
    res = greedy_cover(differ, in_d)
    assert int(res.n_chosen[0]) == 0 and bool(res.covered[0].all())


@pytest.mark.parametrize("seed", range(40))
def test_random_matrices_match_reference_and_stop_rule(seed):
    g = torch.Generator().manual_seed(seed)
    n, q = 30, 6
    differ = torch.rand(n, q, generator=g) < 0.25
    in_d = torch.rand(n, generator=g) < 0.4
    res = greedy_cover(differ, in_d)
    assert res.boundaries(0).tolist() == _reference_greedy(differ, in_d)
    assert int((res.covered[0] & in_d).sum()) <= int(res.delta[0])
    assert int(res.n_chosen[0]) <= q
    # the covered set is exactly the cell of P
    P = res.boundaries(0)
    expect = ~differ[:, P].any(1) if P.numel() else torch.ones(n, dtype=torch.bool)
    assert torch.equal(res.covered[0], expect)


def test_batch_equals_one_by_one():
    g = torch.Generator().manual_seed(7)
    differ = torch.rand(5, 40, 8, generator=g) < 0.3
    in_d = torch.rand(5, 40, generator=g) < 0.5
    res = greedy_cover(differ, in_d)
    for b in range(5):
        one = greedy_cover(differ[b], in_d[b])
        assert res.boundaries(b).tolist() == one.boundaries(0).tolist()
        assert torch.equal(res.covered[b], one.covered[0])
