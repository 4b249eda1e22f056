"""Max-sensitivity of saliency on the bundled MNIST CNN: cnnlens vs Quantus 0.6.0 vs captum (issue 27).

One process, same model, images (the first N MNIST images), saliency maps, targets and noise
(``δ`` drawn by cnnlens from its per-image seed streams and handed to the peers as their
``perturb_func``), radius 0.02, 10 samples, the normalised form ``‖Φ(x+δ) − Φ(x)‖ / ‖Φ(x)‖``
that captum and Quantus report (cnnlens: ``normalise=True``):

- cnnlens: ``evaluate(..., metrics=["max_sensitivity"], metric_params=...)``;
- Quantus ``MaxSensitivity(nr_samples=10)`` at each ``batch_size`` in ``--quantus-batch-sizes``
  (the best is reported), explaining with (a) ``quantus.explain(method="Saliency")`` (captum's
  Saliency, what a Quantus user calls) when its maps equal cnnlens's, and (b) cnnlens's saliency
  as ``explain_func``;
- captum ``sensitivity_max(Saliency.attribute, n_perturb_samples=10)``.

Each timing is the best of ``--repeats`` runs (wall clock; process CPU time alongside). The
largest relative difference of the per-image values against cnnlens is printed with each row.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_trust.py [--n 64] [--threads 1]``; prints a
markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
import warnings

import numpy as np
import torch
from torch import nn

import cnnlens
from cnnlens import zoo
from cnnlens.metrics import evaluate
from cnnlens.metrics.robustness import perturbations

R, S = 0.02, 10


class PixelModel(nn.Module):
    """The classifier as a plain module on pixel-space input (normalisation inside)."""

    def __init__(self, clf):
        super().__init__()
        self.clf = clf
        self.net = clf.model

    def forward(self, x):
        return self.net(self.clf.normalize(x))


class Replay:
    """Quantus ``perturb_func``: the perturbed batches cnnlens drew (batch-major, sample-minor)."""

    def __init__(self, xs: torch.Tensor, batch_size: int):
        self.xs, self.b, self.calls = xs.numpy(), batch_size, 0

    def __call__(self, arr, indices, **kwargs):
        batch, step = divmod(self.calls, self.xs.shape[0])
        self.calls += 1
        return self.xs[step, batch * self.b: batch * self.b + arr.shape[0]].reshape(arr.shape[0], -1)


def timed(fn, repeats: int):
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return best, best_cpu, out


def rel_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quantus-batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import quantus
    from captum.attr import Saliency
    from captum.metrics import sensitivity_max

    dev = torch.device(args.device)
    clf = zoo.load_classifier("mnist_cnn", device=dev)
    x = zoo.load_dataset("mnist").images[: args.n].to(dev)
    exp = cnnlens.explain(clf, x, "saliency")
    y = exp.targets
    xs = (x.unsqueeze(0) + perturbations(x, R, S)).clamp(0, 1)
    model = PixelModel(clf).eval()
    rows = []

    def ours():
        return evaluate(clf, x, exp, metrics=["max_sensitivity"],
                        metric_params={"max_sensitivity": {"radius": R, "n_samples": S, "normalise": True}}
                        )["max_sensitivity"].per_image.numpy()

    ours()  # warm-up
    t, c, ref = timed(ours, args.repeats)
    rows.append(("cnnlens `max_sensitivity`", "—", t, c, 0.0))

    # the floor: the N·S input gradients alone, plain torch, in chunks of 64
    flat = xs.reshape(S * args.n, *x.shape[1:])
    tgt = y.repeat(S)

    def floor():
        for i in range(0, flat.shape[0], 64):
            xb = flat[i:i + 64].clone().requires_grad_(True)
            out = model(xb).gather(1, tgt[i:i + 64, None]).sum()
            torch.autograd.grad(out, xb)

    floor()
    t, c, _ = timed(floor, args.repeats)
    rows.append(("floor: the N·10 input gradients alone (plain torch, chunks of 64)", 64, t, c, float("nan")))

    # Quantus (a): its own explain (captum Saliency), (b): cnnlens's saliency as explain_func
    xn, yn, an = x.cpu().numpy(), y.cpu().numpy(), exp.maps.unsqueeze(1).cpu().numpy()
    q_maps = quantus.explain(model, xn, yn, method="Saliency", device=str(dev))
    q_equal = np.allclose(np.asarray(q_maps).reshape(an.shape), an, rtol=1e-5, atol=1e-7)

    def cnnlens_explain(model, inputs, targets, **kwargs):
        return cnnlens.explain(clf, torch.as_tensor(inputs, device=dev), "saliency",
                               target=torch.as_tensor(targets, device=dev)).maps.unsqueeze(1).cpu().numpy()

    variants = ([("quantus.explain (captum Saliency)", quantus.explain, {"method": "Saliency", "device": str(dev)})]
                if q_equal else []) + [("cnnlens saliency as explain_func", cnnlens_explain, {})]
    for label, fn, kw in variants:
        best = None
        for bs in args.quantus_batch_sizes:
            def run_q(bs=bs, fn=fn, kw=kw):
                m = quantus.MaxSensitivity(nr_samples=S, perturb_func=Replay(xs.cpu(), bs), disable_warnings=True)
                return np.asarray(m(model=model, x_batch=xn, y_batch=yn, a_batch=an, explain_func=fn,
                                    explain_func_kwargs=kw, batch_size=bs, device=str(dev)))
            t, c, out = timed(run_q, args.repeats)
            print(f"  Quantus {label}, batch_size {bs}: {t:.3f} s")
            if best is None or t < best[0]:
                best = (t, c, out, bs)
        rows.append((f"Quantus `MaxSensitivity`, {label}", best[3], best[0], best[1], rel_diff(best[2], ref)))

    replay = xs.transpose(0, 1).reshape(args.n * S, *x.shape[1:])
    sal = Saliency(model)

    def run_c():
        return sensitivity_max(sal.attribute, x, perturb_func=lambda inp, r: replay, perturb_radius=R,
                               n_perturb_samples=S, target=y).cpu().numpy()

    t, c, out = timed(run_c, args.repeats)
    rows.append(("captum `sensitivity_max` (Saliency)", "—", t, c, rel_diff(out, ref)))

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"\nN = {args.n} MNIST images, radius {R}, {S} samples, normalised; device {dev}, "
          f"{args.threads} thread(s), torch {torch.__version__}, quantus {quantus.__version__}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; git {rev}; "
          f"quantus.explain maps equal cnnlens's: {q_equal}\n")
    print("| implementation | batch_size | wall s | CPU s | cnnlens speed-up (wall) | max rel. diff vs cnnlens |")
    print("|---|---:|---:|---:|---:|---:|")
    base = rows[0][2]
    for name, bs, t, c, d in rows:
        diff = "—" if d != d else f"{d:.1e}"
        print(f"| {name} | {bs} | {t:.3f} | {c:.3f} | {t / base:.2f}× | {diff} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
