"""Dynamic Ablation speed benchmarks (issue 11; SPEC §4 "Batched execution").

(a) Efficiency on MobileNetV2 (compute-bound on CPU):
    efficiency = (model evaluations the literal algorithm makes, N·T)
                 × (best per-image forward time, measured in this run over several batch sizes)
                 / (wall time of the batched chains).
(b) Bundled MNIST CNN, 16 images × 500 iterations: batched vs literal sequential wall time.
(c) With a GPU: the speed-up of speculative proposals for a single image (batched with
    speculation vs speculation disabled by a tiny value... i.e. one proposal per round).

Each table comes from one run of this script (one process, side by side). Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_ablation.py [--n-mobilenet 8] [--iters-mobilenet 40]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from cnnlens import zoo
from cnnlens.ablation import dynamic_ablation


def best_per_image_time(clf, x: torch.Tensor, sizes=(1, 4, 8, 16, 32), repeats: int = 3) -> tuple[float, int]:
    """Smallest forward time per image over batch sizes (best of ``repeats``), through the same
    ``Classifier.logits`` call the chains use. Inputs are masked copies of ``x`` (as in DA)."""
    best, best_b = float("inf"), 0
    for b in sizes:
        xb = x[torch.arange(b) % x.shape[0]] * (torch.rand(b, 1, *x.shape[-2:]) > 0.5).float()
        clf.logits(xb, batch_size=b)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            clf.logits(xb, batch_size=b)
            dt = (time.perf_counter() - t0) / b
            if dt < best:
                best, best_b = dt, b
    return best, best_b


def bench_a(n: int, iters: int, batch_size: int, device: str) -> dict:
    clf = zoo.load_classifier("mobilenet_v2_imagenet", device=device)
    x = zoo.load_dataset("photos").images[:n].to(device)
    t_img, b_best = best_per_image_time(clf, x)
    res = dynamic_ablation(clf, x, rule="pos", iterations=iters, superpixels=500, seed=0, batch_size=batch_size)
    t_img2, b_best2 = best_per_image_time(clf, x)  # again after the run: keep the better
    if t_img2 < t_img:
        t_img, b_best = t_img2, b_best2
    literal = n * iters
    eff = literal * t_img / res.seconds
    return {"images": n, "iterations": iters, "batch_size": batch_size, "literal_evaluations": literal,
            "evaluations": int(res.evaluations.sum()), "rounds": res.rounds,
            "best_per_image_ms": 1000 * t_img, "best_batch": b_best, "wall_s": res.seconds,
            "efficiency": eff, "mar_mean": float(res.mar.mean())}


def bench_b(n: int, iters: int, device: str) -> dict:
    clf = zoo.load_classifier("mnist_cnn", device=device)
    ds = zoo.load_dataset("mnist")
    g = torch.Generator().manual_seed(0)
    x = ds.images[torch.randperm(ds.images.shape[0], generator=g)[:n]].to(device)
    out = {}
    for mode in ("batched", "sequential"):
        t0 = time.perf_counter()
        res = dynamic_ablation(clf, x, rule="pos", iterations=iters, seed=0, sequential=(mode == "sequential"))
        out[mode] = {"wall_s": time.perf_counter() - t0, "chains_s": res.seconds, "rounds": res.rounds,
                     "evaluations": int(res.evaluations.sum()), "mar_mean": float(res.mar.mean()),
                     "mar_std": float(res.mar.std()), "masks": res.mask}
    same = torch.equal(out["batched"].pop("masks"), out["sequential"].pop("masks"))
    return {"images": n, "iterations": iters, **out, "speedup": out["sequential"]["wall_s"] / out["batched"]["wall_s"],
            "identical_masks": same}


def bench_c(iters: int) -> dict | None:
    if not torch.cuda.is_available():
        return None
    clf = zoo.load_classifier("mobilenet_v2_imagenet", device="cuda")
    x = zoo.load_dataset("photos").images[:1].cuda()
    out = {}
    for name, spec in (("no speculation", 1e-9), ("speculative", None)):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = dynamic_ablation(clf, x, iterations=iters, seed=0, speculation=spec, batch_size=64)
        torch.cuda.synchronize()
        out[name] = {"wall_s": time.perf_counter() - t0, "rounds": res.rounds, "evaluations": int(res.evaluations.sum())}
    out["speedup"] = out["no speculation"]["wall_s"] / out["speculative"]["wall_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-mobilenet", type=int, default=8)
    ap.add_argument("--iters-mobilenet", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n-mnist", type=int, default=16)
    ap.add_argument("--iters-mnist", type=int, default=500)
    ap.add_argument("--skip", default="", help="comma list of a,b,c to skip")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    info = {"device": device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "load_avg": os.getloadavg()}
    print(json.dumps(info))
    results = {"info": info}
    if "a" not in args.skip:
        results["a"] = bench_a(args.n_mobilenet, args.iters_mobilenet, args.batch_size, device)
        print("(a)", json.dumps(results["a"]))
    if "b" not in args.skip:
        results["b"] = bench_b(args.n_mnist, args.iters_mnist, device)
        print("(b)", json.dumps(results["b"]))
    if "c" not in args.skip:
        results["c"] = bench_c(500)
        print("(c)", json.dumps(results["c"]))
    results["info"]["load_avg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
