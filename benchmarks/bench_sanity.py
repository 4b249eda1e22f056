"""Benchmark: cascading model parameter randomisation (Adebayo et al. 2018), cnnlens vs Quantus 0.6.0
(issue 27; docs/algorithms.md §10.1).

Saliency on the MNIST CNN (``cnnlens.zoo.load_classifier("mnist_cnn")``), the first ``N`` images of
the zoo's ``mnist`` data set, cascading randomisation of its four parameterised layers top-down,
Spearman rank correlation of the absolute maps per image and layer (Quantus ``MPRT``'s default
similarity; ``abs=True``).

- **Same weights**: cnnlens runs with ``init=`` Quantus's procedure (``torch.manual_seed(seed + 1)``
  then the layer's ``reset_parameters()``), so both randomise to identical weights.
- **Same maps**: Quantus's ``explain_func`` is ``cnnlens.explain(..., "saliency")`` on the
  randomised model (variant A). Variant B gives Quantus its own ``quantus.explain`` (captum
  ``Saliency``) on normalised input — its native path; those maps are a constant multiple
  (1/σ) of cnnlens's, so the Spearman values are equal too.
- Quantus at its best ``batch_size`` (each of ``BATCHES`` timed, the fastest reported); one run
  each, in one process; results compared per image and layer.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_sanity.py [--n 64]``; prints markdown for
BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

import cnnlens
from cnnlens import sanity, zoo
from cnnlens.models.mnist_cnn import MNIST_MEAN, MNIST_STD

BATCHES = (8, 16, 32, 64)
SEED = 42


def quantus_init(module: torch.nn.Module, _seed: int) -> None:
    torch.manual_seed(SEED + 1)
    module.reset_parameters()


def explain_cnnlens(model, inputs, targets, **_):
    c = cnnlens.Classifier(model, mean=MNIST_MEAN, std=MNIST_STD)
    return cnnlens.explain(c, torch.as_tensor(inputs), "saliency", target=torch.as_tensor(targets)).maps.numpy()[:, None]


def run_quantus(model, x: np.ndarray, y: np.ndarray, batch_size: int, explain_func, **kw) -> tuple[dict, float]:
    import quantus

    metric = quantus.MPRT(layer_order="top_down", seed=SEED, disable_warnings=True, display_progressbar=False)
    t0, c0 = time.perf_counter(), time.process_time()
    scores = metric(model=model, x_batch=x, y_batch=y, a_batch=None, explain_func=explain_func,
                    explain_func_kwargs=kw, device="cpu", batch_size=batch_size)
    return scores, (time.perf_counter() - t0, time.process_time() - c0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist").images[:args.n]
    y = clf.predict(x)

    # warm-up of both (imports, first-call costs), not timed
    sanity.model_randomisation(clf, x[:2], ["saliency"], granularity="layer", init=quantus_init,
                               measures=("spearman_abs",))
    run_quantus(clf.model, x[:2].numpy(), y[:2].numpy(), 2, explain_cnnlens)

    t0, c0 = time.perf_counter(), time.process_time()
    ours = sanity.model_randomisation(clf, x, ["saliency"], granularity="layer", init=quantus_init,
                                      measures=("spearman_abs",))
    t_ours = (time.perf_counter() - t0, time.process_time() - c0)
    t0, c0 = time.perf_counter(), time.process_time()
    sanity.model_randomisation(clf, x, ["saliency"], granularity="layer", init=quantus_init)
    t_all = (time.perf_counter() - t0, time.process_time() - c0)

    rows = []
    xn = ((x - MNIST_MEAN) / MNIST_STD).numpy()
    for variant, xx, fn, kw in (("A: explain_func = cnnlens saliency", x.numpy(), explain_cnnlens, {}),
                                ("B: quantus.explain (captum Saliency)", xn, None, {"method": "Saliency"})):
        import quantus

        best = None
        for b in BATCHES:
            scores, t = run_quantus(clf.model, xx, y.numpy(), b, fn or quantus.explain, **kw)
            if best is None or t[0] < best[1][0]:
                best = (b, t, scores)
        b, t, scores = best
        layers = [k for k in scores if k != "original"]
        diff = max(float(np.abs(ours.values["saliency"][s, 0].numpy() - np.asarray(scores[layer])).max())
                   for s, layer in enumerate(layers))
        rows.append((variant, b, t, diff, layers == ours.steps))

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                         text=True).stdout.strip()
    print(f"### {datetime.date.today()}, {platform.machine()} {platform.processor() or ''}, "
          f"{torch.get_num_threads()} thread(s), N = {args.n}, git {rev}\n")
    print("| run | batch size | wall s | CPU s | Quantus / cnnlens (wall, CPU) | max abs diff (per image, layer) "
          "| same layers |")
    print("|---|---:|---:|---:|---:|---:|---|")
    print(f"| cnnlens `model_randomisation` (Spearman abs) | 64 | {t_ours[0]:.3f} | {t_ours[1]:.3f} | 1.0 | — | — |")
    print(f"| cnnlens, all four measures (+ SSIM, HOG, Spearman) | 64 | {t_all[0]:.3f} | {t_all[1]:.3f} | — | — | — |")
    for variant, b, t, diff, same in rows:
        print(f"| Quantus MPRT, {variant} (best of {BATCHES}) | {b} | {t[0]:.3f} | {t[1]:.3f} | "
              f"{t[0] / t_ours[0]:.1f}×, {t[1] / t_ours[1]:.1f}× | {diff:.1e} | {same} |")


if __name__ == "__main__":
    main()
