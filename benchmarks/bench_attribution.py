"""Attribution speed benchmark (issue 8; SPEC §2 "batched over perturbations").

For each model (the bundled MNIST CNN and MobileNetV2 on the bundled photos), in ONE process,
side by side, same images and settings:

* the best per-image forward time ``t_f`` over batch sizes (``Classifier.logits`` without
  gradients, best of 3), measured in this run;
* cnnlens LIME (1000 samples, quickshift), RISE (4000 masks), Score-CAM (feature layer):
  wall time, forward passes, efficiency = passes × t_f / wall (1.0 = pure forward cost), and the
  same ratio with process CPU time in place of wall time (one torch thread: what the run itself
  costs, not stretched by other jobs on a shared machine);
* ours and each peer run twice, alternating (ours, peer, ours, peer); each side's best time is
  reported (the machine's speed drifts during a run);
* the peers on the same input: ``lime`` 0.2.0.1 ``LimeImageExplainer.explain_instance`` with
  our segmentation, hide_color=0 and the same batch size (per-superpixel weights correlated with
  ours), and pytorch-grad-cam ``ScoreCAM`` with the same batch size (max |Δ| of the min-max
  normalised maps). The peers see the same Classifier (normalisation inside) through a module.
* Grad-CAM / saliency / Guided Backprop wall time for reference (one forward + backward);
* a control: a plain loop of ``Classifier.logits`` over fresh masked copies at the same batch size,
  as many passes as LIME makes. "vs forward loop" = passes × the loop's CPU time per pass / the
  run's CPU time: the share of a sustained forward rate a method reaches (1.0 = no overhead).

The machine is shared (2 CPU cores, other jobs running): compare ratios within one run only.

    OMP_NUM_THREADS=1 python benchmarks/bench_attribution.py [--models mnist_cnn,mobilenet_v2_imagenet]
        [--n-mnist 4] [--n-photos 1] [--lime-samples 1000] [--rise-masks 4000] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

import cnnlens
from cnnlens import zoo
from cnnlens.attribution.lime import segment
from cnnlens.explanation import minmax_normalize


class T(tuple):
    """(wall seconds, process CPU seconds); ``min`` of two is taken per component."""

    def __new__(cls, wall: float, cpu: float):
        return super().__new__(cls, (wall, cpu))

    wall = property(lambda self: self[0])
    cpu = property(lambda self: self[1])

    def best(self, other: T) -> T:
        return T(min(self.wall, other.wall), min(self.cpu, other.cpu))


def best_forward(clf, x: torch.Tensor, sizes=(1, 8, 16, 32, 64, 128, 256), repeats: int = 3) -> tuple[T, int]:
    """Best per-image forward time over batch sizes (masked copies of x, as the methods score),
    as wall and as process CPU time; the batch size is chosen by CPU time (stable on a shared
    machine)."""
    best, best_b = T(float("inf"), float("inf")), 1
    for b in sizes:
        xb = x[torch.arange(b) % x.shape[0]] * (torch.rand(b, 1, *x.shape[-2:]) > 0.5).float()
        clf.logits(xb, batch_size=b)
        for _ in range(repeats):
            _, t = timed(lambda: clf.logits(xb, batch_size=b))
            t = T(t.wall / b, t.cpu / b)
            if t.cpu < best.cpu:
                best_b = b
            best = best.best(t)
    return best, best_b


class _Module(torch.nn.Module):
    def __init__(self, clf) -> None:
        super().__init__()
        self.net, self._clf = clf.model, clf

    def forward(self, x):
        return self._clf.logits(x)


def timed(fn):
    """``fn()`` and its :class:`T` (wall and CPU time of this process; one torch thread)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, T(time.perf_counter() - t0, time.process_time() - c0)


def run_model(name: str, n: int, lime_samples: int, rise_masks: int) -> list[dict]:
    from lime import lime_image
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    clf = zoo.load_classifier(name)
    data = zoo.load_dataset("photos" if name == "mobilenet_v2_imagenet" else "mnist")
    x = data.images[:n]
    targets = clf.predict(x)
    t_f, b_best = best_forward(clf, x)
    bs = b_best
    rows: list[dict] = []

    def row(method, impl, t: T, passes, agreement=""):
        # the machine is shared and its speed drifts: re-measure the forward bound right after
        # each run and use the better of the two calibrations (the stricter efficiency)
        t_now, _ = best_forward(clf, x, sizes=(bs, 2 * bs) if bs < 256 else (bs,), repeats=2) if passes else (t_f, bs)
        t_ref = t_f.best(t_now)
        rows.append({"model": name, "images": n, "method": method, "impl": impl, "wall_s": t.wall, "cpu_s": t.cpu,
                     "passes": passes, "t_forward_ms": t_ref.wall * 1e3, "t_forward_cpu_ms": t_ref.cpu * 1e3,
                     "agreement": agreement, "batch_size": bs})
        set_efficiency(rows[-1])
        print(rows[-1], flush=True)

    def improve(r: dict, t: T) -> None:  # a second run of the same implementation: keep the best
        r["wall_s"], r["cpu_s"] = min(r["wall_s"], t.wall), min(r["cpu_s"], t.cpu)
        set_efficiency(r)

    for m in ("gradcam", "saliency", "guided_backprop"):
        _, wall = timed(lambda: cnnlens.explain(clf, x, m, target=targets, batch_size=bs))
        row(m, "cnnlens", wall, 0)

    # Score-CAM: ours, then pytorch-grad-cam on the same layer
    def our_scorecam():
        return cnnlens.explain(clf, x, "scorecam", target=targets, batch_size=bs, progress=False)

    def their_scorecam():
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])

    ours, wall = timed(our_scorecam)
    row("scorecam", "cnnlens", wall, ours.info["forward_passes"])
    layer = clf.layer_module(None, x)[0]
    cam = ScoreCAM(model=_Module(clf), target_layers=[layer])
    cam.batch_size = bs
    from functools import partialmethod

    import tqdm as _tqdm
    _tqdm.tqdm.__init__ = partialmethod(_tqdm.tqdm.__init__, disable=True)  # silence the peer's bars
    ref, wall = timed(their_scorecam)
    diff = float(np.abs(minmax_normalize(ours.maps).numpy() - ref).max())
    # alternate (ours, peer, ours, peer) and keep each side's best: the machine's speed drifts
    improve(rows[-1], timed(our_scorecam)[1])
    _, wall2 = timed(their_scorecam)
    row("scorecam", "pytorch-grad-cam", wall.best(wall2), n * ours.info["channels"],
        f"max |Δ| of normalised maps {diff:.1e}")

    # LIME: ours (quickshift, as the lime package), then lime with the same segments
    segs = segment(x, "quickshift", seed=0)
    def our_lime():
        return cnnlens.explain(clf, x, "lime", target=targets, segments=segs, num_samples=lime_samples,
                               batch_size=bs, progress=False)

    ours, wall = timed(our_lime)
    row("lime", "cnnlens", wall, n * lime_samples)
    asked: list[list[np.ndarray]] = [[] for _ in range(n)]

    def lime_run(random_state: int, record: bool):
        explainer = lime_image.LimeImageExplainer(random_state=random_state)
        out = []
        for i in range(n):
            seg = segs[i].numpy()
            img = x[i].expand(3, -1, -1) if x.shape[1] == 1 else x[i]

            def fn(imgs, i=i):
                if record:
                    asked[i].append(imgs.copy())
                return clf.probs(torch.from_numpy(imgs).permute(0, 3, 1, 2).float()[:, : x.shape[1]],
                                 batch_size=bs).numpy()
            out.append(explainer.explain_instance(
                img.permute(1, 2, 0).double().numpy(), fn, labels=(int(targets[i]),), top_labels=None,
                hide_color=0, num_samples=lime_samples, batch_size=bs, segmentation_fn=lambda _im, s=seg: s,
                num_features=100000))
        return out

    def weights(i: int, e=None, r=None) -> np.ndarray:
        k = int(segs[i].max()) + 1
        if e is not None:
            return torch.stack([e.maps[i][segs[i] == f][0] for f in range(k)]).double().numpy()
        w = np.zeros(k)
        for f, v in r.local_exp[int(targets[i])]:
            w[f] = v
        return w

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1])

    refs, wall = timed(lambda: lime_run(0, True))
    # ours again, then lime with another seed (its sampling noise, below), both timed: each
    # side's best of two alternating runs is reported, since the machine's speed drifts
    improve(rows[-1], timed(our_lime)[1])
    refs1, wall1 = timed(lambda: lime_run(1, False))  # lime against itself with another seed
    wall = wall.best(wall1)
    c_ours = [corr(weights(i, e=ours), weights(i, r=refs[i])) for i in range(n)]
    c_self = [corr(weights(i, r=refs1[i]), weights(i, r=refs[i])) for i in range(n)]
    # ours with the 0/1 samples lime drew (read back from the images it asked to score)
    c_same = []
    for i in range(n):
        imgs = np.concatenate(asked[i])
        x0 = (x[i].expand(3, -1, -1) if x.shape[1] == 1 else x[i]).permute(1, 2, 0).double().numpy()
        seg = segs[i].numpy()
        kept = np.stack([(imgs[:, seg == f] == x0[seg == f]).reshape(len(imgs), -1).all(1)
                         for f in range(int(seg.max()) + 1)], axis=1).astype(np.int64)
        e = cnnlens.explain(clf, x[i:i + 1], "lime", target=targets[i:i + 1], segments=segs[i:i + 1],
                            samples=kept, batch_size=bs, progress=False)
        mine = torch.stack([e.maps[0][segs[i] == f][0] for f in range(int(seg.max()) + 1)]).double().numpy()
        c_same.append(corr(mine, weights(i, r=refs[i])))
    fmt = lambda cs: ", ".join(f"{c:.3f}" for c in cs)  # noqa: E731
    row("lime", "lime 0.2.0.1", wall, n * lime_samples,
        f"weight correlation with ours {fmt(c_ours)}; lime seed 0 vs seed 1 {fmt(c_self)}; ours with lime's "
        f"samples {fmt(c_same)} ({', '.join(str(int(s.max()) + 1) for s in segs)} superpixels)")

    ours, wall = timed(lambda: cnnlens.explain(clf, x, "rise", target=targets, n_masks=rise_masks, batch_size=bs,
                                               progress=False))
    row("rise", "cnnlens", wall, n * rise_masks)

    # control: a plain loop of forwards at the same batch size over fresh masked copies, as long
    # as the LIME run — what sustained forwards cost on this machine (the short best-of-3 bursts
    # behind t_f can be faster than any sustained run on a VM whose host is busy)
    passes = n * lime_samples
    gen = torch.Generator().manual_seed(0)

    def loop():
        with torch.no_grad():
            for a in range(0, passes, bs):
                m = min(bs, passes - a)
                xb = x[torch.arange(a, a + m) % n] * (torch.rand(m, 1, *x.shape[-2:], generator=gen) > 0.5).float()
                clf.logits(xb, batch_size=m)
    _, wall = timed(loop)
    row("forward loop (control)", "plain Classifier.logits", wall, passes)
    loop_cpu = rows[-1]["cpu_s"] / passes
    for r in rows:
        if r["model"] == name and r["passes"]:
            r["vs_loop_cpu"] = r["passes"] * loop_cpu / r["cpu_s"]
    return rows


def set_efficiency(r: dict) -> None:
    """efficiency = passes × best per-image forward time / run time, by wall clock and by CPU time"""
    p = r["passes"]
    r["efficiency"] = p * r["t_forward_ms"] / 1e3 / r["wall_s"] if p else None
    r["efficiency_cpu"] = p * r["t_forward_cpu_ms"] / 1e3 / r["cpu_s"] if p else None


def to_markdown(rows: list[dict]) -> str:
    lines = ["| model | images | method | implementation | wall s | CPU s | forward passes | efficiency (wall) "
             "| efficiency (CPU) | vs forward loop (CPU) | agreement |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        eff = f"{r['efficiency']:.2f}" if r["efficiency"] is not None else "–"
        effc = f"{r['efficiency_cpu']:.2f}" if r["efficiency_cpu"] is not None else "–"
        vl = f"{r['vs_loop_cpu']:.2f}" if r.get("vs_loop_cpu") is not None else "–"
        lines.append(f"| {r['model']} | {r['images']} | {r['method']} | {r['impl']} | {r['wall_s']:.2f} | "
                     f"{r['cpu_s']:.2f} | {r['passes'] or '1 fwd + bwd'} | {eff} | {effc} | {vl} | {r['agreement']} |")
    models: dict[str, tuple[float, int]] = {}
    for r in rows:
        t, b = models.get(r["model"], (float("inf"), r["batch_size"]))
        models[r["model"]] = (min(t, r["t_forward_cpu_ms"]), b)
    foot = "; ".join(f"{m}: best forward {t:.2f} ms/image (CPU time), methods run at batch size {b}"
                     for m, (t, b) in models.items())
    return "\n".join(lines) + "\n\n" + foot


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mnist_cnn,mobilenet_v2_imagenet")
    p.add_argument("--n-mnist", type=int, default=4)
    p.add_argument("--n-photos", type=int, default=1)
    p.add_argument("--lime-samples", type=int, default=1000)
    p.add_argument("--rise-masks", type=int, default=4000)
    p.add_argument("--json", default=None)
    p.add_argument("--tune-malloc", action="store_true",
                   help="call cnnlens.tune_cpu_malloc() first (process-wide: the peers get it too)")
    args = p.parse_args()
    if args.tune_malloc:
        print(f"tune_cpu_malloc: {cnnlens.tune_cpu_malloc()} (both sides)", flush=True)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)
    rows = []
    for name in args.models.split(","):
        n = args.n_photos if name == "mobilenet_v2_imagenet" else args.n_mnist
        rows += run_model(name, n, args.lime_samples, args.rise_masks)
    print(to_markdown(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
