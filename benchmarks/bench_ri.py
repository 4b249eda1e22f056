"""Benchmark: RepresentativeInterpreter.interpret for one image, |R| = 5000, |Q| = 50 (SPEC §5).

The reference features are computed once (not timed). Timed, per image (median of ``--repeats``):

- ``greedy``: Algorithm 1 alone on the side matrix (vectorised, incremental counts);
- ``interpret_features(k=0)``: sides of x, greedy, Eq. 6 ranking of the covered set, channel
  weights — everything after ψ(x) is known;
- ``interpret_features(k=10)``: the same plus the top-10 Euclidean neighbours in ψ-space;
- ``interpret``: the full call on an image (forward pass for ψ(x), all of the above, heatmap);
- baseline ``loop greedy``: a plain NumPy implementation that recounts lost_S/lost_D over the
  covered set at every step (no incremental counts), in the same process, for the ratio.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_ri.py [--model mnist_cnn --dataset mnist] [--repeats 30]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from cnnlens import RepresentativeInterpreter, zoo
from cnnlens.representative import greedy_cover


def _loop_greedy(differ: np.ndarray, in_d: np.ndarray) -> list[int]:
    """Straightforward Algorithm 1: recount over the covered set at each step."""
    n, q = differ.shape
    delta = int((~differ.any(1) & in_d).sum())
    covered = np.ones(n, dtype=bool)
    chosen: list[int] = []
    while int((covered & in_d).sum()) > delta:
        cd = differ[covered & in_d].sum(0)
        cs = differ[covered & ~in_d].sum(0)
        best, key = -1, None
        for h in range(q):
            if h in chosen or cd[h] == 0:
                continue
            k = (cs[h] / cd[h], -cd[h], h)
            if key is None or k < key:
                best, key = h, k
        chosen.append(best)
        covered &= ~differ[:, best]
    return chosen


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist_cnn")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--split", default=None)
    ap.add_argument("--n-reference", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=20, help="different query images (medians are over all)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    clf = zoo.load_classifier(args.model)
    ds = zoo.load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
    perm = torch.randperm(len(ds.labels), generator=torch.Generator().manual_seed(0))
    ref = ds.images[perm[: args.n_reference]]
    t0 = time.perf_counter()
    ri = RepresentativeInterpreter(clf, ref, n_boundaries=50, seed=0, batch_size=250)
    setup_s = time.perf_counter() - t0
    queries = ds.images[perm[-args.queries:]] if len(ds.labels) > args.n_reference else ref[: args.queries]
    psi = ri._features(queries).reshape(args.queries, -1).float()
    cls = clf.predict(queries)
    rows: dict[str, list[float]] = {k: [] for k in ("greedy", "loop greedy", "k0", "k10", "full")}
    steps = []
    for i in range(args.queries):
        p, c, x = psi[i:i + 1], cls[i:i + 1], queries[i:i + 1]
        sides = (p @ ri.W_.T + ri.b_) >= 0
        differ = ri.sides_ != sides
        in_d = ri.predictions_ != c
        res = greedy_cover(differ, in_d)
        steps.append(int(res.n_chosen[0]))
        d_np, i_np = differ.numpy(), in_d.numpy()
        assert _loop_greedy(d_np, i_np) == res.boundaries(0).tolist()
        rows["greedy"].append(_median_ms(lambda: greedy_cover(differ, in_d), args.repeats))
        rows["loop greedy"].append(_median_ms(lambda: _loop_greedy(d_np, i_np), args.repeats))
        rows["k0"].append(_median_ms(lambda: ri.interpret_features(p, c, k=0), args.repeats))
        rows["k10"].append(_median_ms(lambda: ri.interpret_features(p, c, k=10), args.repeats))
        rows["full"].append(_median_ms(lambda: ri.interpret(x, k=10), args.repeats))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"model {args.model}, |R| = {ri.features_.shape[0]}, |Q| = {ri.n_boundaries}, D = {ri.features_.shape[1]}, "
          f"{args.queries} query images x {args.repeats} repeats, torch threads {torch.get_num_threads()}, "
          f"{platform.processor() or platform.machine()}; reference setup {setup_s:.1f} s; greedy steps median "
          f"{statistics.median(steps)} (max {max(steps)})")
    print("| step | median ms per image |")
    print("|---|---|")
    names = {"greedy": "greedy Algorithm 1 (vectorised, incremental)", "loop greedy": "greedy, plain NumPy loop (baseline)",
             "k0": "interpret_features, k=0 (sides, greedy, Eq. 6 ranking, weights)",
             "k10": "interpret_features, k=10 (+ Euclidean neighbours)", "full": "interpret(x) (+ forward pass, heatmap)"}
    for k, v in med.items():
        print(f"| {names[k]} | {v:.2f} |")
    print(f"ratio loop/vectorised greedy: {med['loop greedy'] / med['greedy']:.2f}")


if __name__ == "__main__":
    main()
