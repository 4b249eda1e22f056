"""Benchmark of the perturbation games (SPEC §3): efficiency and a side-by-side run against the
reference implementation ``saliency-maps-metrics`` 0.0.26 (Gomez et al. 2022).

1. Efficiency of ``evaluate(..., metrics=[iauc, dauc])`` (one insertion and one deletion game):
   efficiency = forward passes × best per-image forward time / wall time, where the per-image
   forward time is the best of several timed batched forwards at the same batch size, taken in
   the same process right before the run. 1.0 means the games cost nothing but the forwards.
   On a shared machine wall time is mostly waiting, so the same ratio is also reported with
   process CPU time (``time.process_time``, one thread) in place of wall time.
2. Side by side with ``saliency_maps_metrics`` (``protocol="gomez"``) on the same model, images,
   maps and targets, in one process: wall time of each and the largest difference of IAUC, DAUC,
   IC, DC per image.

Run: ``python benchmarks/bench_metrics.py [--quick]``; prints markdown for BENCHMARKS.md. The
numbers depend on the machine; on a shared machine report the ratios from one run.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import torch
from torch import nn

import cnnlens
from cnnlens import zoo
from cnnlens.metrics.evaluate import preset_step

if not hasattr(np, "trapz"):  # the reference calls np.trapz, removed in numpy 2
    np.trapz = np.trapezoid


def best_forward_time(clf, x: torch.Tensor, batch_size: int, repeats: int = 5) -> tuple[float, float]:
    """Best per-image (wall, CPU) time of a batched forward (no grad) at ``batch_size``."""
    reps = math.ceil(batch_size / x.shape[0])
    xb = x.repeat(reps, 1, 1, 1)[:batch_size]
    clf.logits(xb, batch_size=batch_size)  # warm-up
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        clf.logits(xb, batch_size=batch_size)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best / batch_size, best_cpu / batch_size


def efficiency(name: str, clf, x: torch.Tensor, maps: torch.Tensor, protocol: str, batch_size: int) -> dict:
    n, _, h, w = x.shape
    n_cells = h * w if protocol == "rise" else maps.shape[1] * maps.shape[2]
    step = preset_step(protocol, n_cells, (h, w))
    n_steps = math.ceil(n_cells / step)
    forwards = 2 * n * (n_steps + 1)
    per_image, per_image_cpu = best_forward_time(clf, x, batch_size)
    t0, c0 = time.perf_counter(), time.process_time()
    cnnlens.evaluate(clf, x, maps, metrics=["iauc", "dauc"], protocol=protocol, batch_size=batch_size)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"case": name, "protocol": protocol, "images": n, "steps": n_steps, "forwards": forwards,
            "fwd_ms": per_image * 1e3, "wall": wall, "eff": forwards * per_image / wall,
            "fwd_cpu_ms": per_image_cpu * 1e3, "cpu": cpu, "eff_cpu": forwards * per_image_cpu / cpu}


class ProbModel(nn.Module):
    """The reference scores the model output directly: give it the softmax of the classifier."""

    def __init__(self, clf):
        super().__init__()
        self.clf = clf

    def forward(self, x):
        return torch.softmax(self.clf.model(self.clf.normalize(x)), dim=1)


def side_by_side(name: str, clf, x: torch.Tensor, maps: torch.Tensor, insertion: str, batch_size: int) -> dict:
    from saliency_maps_metrics import multi_step_metrics as ref

    targets = clf.predict(x)
    t0, c0 = time.perf_counter(), time.process_time()
    ours = cnnlens.evaluate(clf, x, maps, metrics=["iauc", "dauc", "ic", "dc"], protocol="gomez",
                            insertion_substrate=insertion, target=targets, batch_size=batch_size)
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
    model = ProbModel(clf)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        ins = ref.Insertion(data_replace_method=insertion)
        s_i, m_i = ins.compute_scores(model, x, maps.unsqueeze(1), targets)
        dele = ref.Deletion()
        s_d, m_d = dele.compute_scores(model, x, maps.unsqueeze(1), targets)
        theirs = {
            "iauc": ref.compute_auc_metric(s_i), "ic": ins.compute_calibration_metric(s_i, m_i),
            "dauc": ref.compute_auc_metric(s_d), "dc": dele.compute_calibration_metric(s_d, m_d),
        }
    t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0
    diff = max(float(np.nanmax(np.abs(ours[k].per_image.numpy() - theirs[k]))) for k in theirs)
    return {"case": name, "images": x.shape[0], "map": f"{maps.shape[1]}x{maps.shape[2]}",
            "steps": ours["iauc"].params["n_steps"], "ours": t_ours, "ref": t_ref, "speedup": t_ref / t_ours,
            "ours_cpu": c_ours, "ref_cpu": c_ref, "speedup_cpu": c_ref / c_ours, "maxdiff": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer images (a smoke run)")
    ap.add_argument("--no-mobilenet", action="store_true", help="skip the MobileNetV2 cases (slow on CPU)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--tune-malloc", action="store_true",
                    help="call cnnlens.tune_cpu_malloc() first (process-wide: both sides get it)")
    args = ap.parse_args()
    if args.tune_malloc:
        print(f"tune_cpu_malloc: {cnnlens.tune_cpu_malloc()} (both implementations)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    bs = args.batch_size

    mnist = zoo.load_classifier("mnist_cnn")
    xm = zoo.load_dataset("mnist").images[: 8 if args.quick else 16]
    onet = zoo.load_classifier("onet_face")
    xf = zoo.load_dataset("lfw_faces").images
    xf = torch.cat([xf[:4], xf[-4:]]) if args.quick else torch.cat([xf[:8], xf[-8:]])
    mob = None if args.no_mobilenet else zoo.load_classifier("mobilenet_v2_imagenet")
    xp = None if args.no_mobilenet else zoo.load_dataset("photos").images[:1]

    def rand(n, h, w):
        return torch.rand(n, h, w, generator=g)

    eff = [
        efficiency("mnist_cnn / mnist 28x28", mnist, xm, rand(len(xm), 28, 28), "rise", bs),
        efficiency("onet_face / lfw_faces 25x25", onet, xf, rand(len(xf), 25, 25), "rise", bs),
    ]
    if mob is not None:
        eff.append(efficiency("mobilenet_v2 / photos 224x224", mob, xp, rand(1, 224, 224), "rise", bs))
    sbs = [
        side_by_side("mnist_cnn / mnist, pixel map", mnist, xm, rand(len(xm), 28, 28), "black", bs),
        side_by_side("mnist_cnn / mnist, 7x7 map", mnist, xm, rand(len(xm), 7, 7), "black", bs),
        side_by_side("onet_face / lfw_faces, 20x20 map", onet, xf, rand(len(xf), 20, 20), "black", bs),
    ]
    if mob is not None:
        sbs += [
            side_by_side("mobilenet_v2 / photos, 7x7 map (box blur)", mob, xp, rand(1, 7, 7), "blur", bs),
            side_by_side("mobilenet_v2 / photos, 224x224 map (box blur)", mob, xp, rand(1, 224, 224), "blur", bs),
        ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), torch {torch.__version__}, "
          f"{args.threads} thread(s), batch size {bs}\n")
    print("| case | protocol | images | steps | forwards | best fwd ms/img (wall / CPU) | wall s | CPU s "
          "| efficiency (wall) | efficiency (CPU time) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in eff:
        print(f"| {r['case']} | {r['protocol']} | {r['images']} | {r['steps']} | {r['forwards']} | "
              f"{r['fwd_ms']:.3f} / {r['fwd_cpu_ms']:.3f} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['eff']:.2f} | "
              f"{r['eff_cpu']:.2f} |")
    print()
    print("| case (gomez) | images | map | steps | cnnlens s (wall / CPU) | saliency-maps-metrics s (wall / CPU) "
          "| speed-up (wall / CPU) | max abs diff |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in sbs:
        print(f"| {r['case']} | {r['images']} | {r['map']} | {r['steps']} | {r['ours']:.2f} / {r['ours_cpu']:.2f} | "
              f"{r['ref']:.2f} / {r['ref_cpu']:.2f} | {r['speedup']:.2f}x / {r['speedup_cpu']:.2f}x | "
              f"{r['maxdiff']:.1e} |")


if __name__ == "__main__":
    main()
