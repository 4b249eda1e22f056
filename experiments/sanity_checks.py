"""Sanity checks (Adebayo et al. 2018) for every method without a reference set (issue 27; docs/algorithms.md §10.1).

Units (one JSON each under ``experiments/results/sanity/``, written atomically; a re-run skips
units whose file exists with the same configuration, so the script resumes after an interruption):

- ``mnist_cnn`` — cascading model parameter randomisation, block granularity (= its four layers),
  the first ``N_MNIST`` images of the zoo's ``mnist`` test split, every method of
  :func:`cnnlens.sanity.sanity_methods` with the module's reduced budgets.
- ``mnist_cnn_s`` — data randomisation: ``mnist_cnn_s`` (true labels) vs
  ``mnist_cnn_s_random_labels`` (memorised permuted labels), same images.
- ``mobilenet_v2`` — cascading randomisation of MobileNetV2 (ImageNet) on the first ``N_PHOTOS``
  bundled photos, maps computed after the blocks in ``MOBILENET_AT`` (the cascade re-initialises
  every block on the way), budgets cut further (``MOBILENET_BUDGETS``) to fit ~20 min at one
  thread; Score-CAM is left out there (1,280 channels = 1,280 forward passes per image per step).

``--summary`` prints the markdown tables for EXPERIMENTS.md (mean ± 95 % CI over images,
Student t) and writes the cascading-curve figures next to the JSON files.

    OMP_NUM_THREADS=1 python experiments/sanity_checks.py            # run (resumable), then summary
    python experiments/sanity_checks.py --summary
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from cnnlens import sanity, zoo  # noqa: E402
from cnnlens._io import atomic_write_text  # noqa: E402

OUT = ROOT / "experiments" / "results" / "sanity"
SEED = 0
N_MNIST = 32
N_PHOTOS = 4
MOBILENET_AT = ["classifier.1", "features.18", "features.14", "features.7", "features.0"]
MOBILENET_BUDGETS = {"rise": {"n_masks": 32}, "lime": {"num_samples": 32},
                     "extremal_perturbation": {"iterations": 10}, "da_pos": {"iterations": 10},
                     "da_neg": {"iterations": 10}}
MOBILENET_SKIP = ("scorecam",)


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def units() -> list[dict]:
    out = []
    for m in sanity.sanity_methods():
        out.append({"setting": "mnist_cnn", "kind": "cascading", "method": m, "n": N_MNIST,
                    "method_params": {}})
        out.append({"setting": "mnist_cnn_s", "kind": "data", "method": m, "n": N_MNIST, "method_params": {}})
        if m not in MOBILENET_SKIP:
            out.append({"setting": "mobilenet_v2", "kind": "cascading", "method": m, "n": N_PHOTOS,
                        "method_params": MOBILENET_BUDGETS.get(m, {}), "at": MOBILENET_AT})
    return out


def _path(u: dict) -> Path:
    return OUT / f"{u['setting']}__{u['kind']}__{u['method']}.json"


def run_unit(u: dict) -> dict:
    torch.manual_seed(0)
    t0 = time.perf_counter()
    mp = {u["method"]: u["method_params"]} if u["method_params"] else None
    if u["setting"] == "mnist_cnn":
        clf = zoo.load_classifier("mnist_cnn")
        x = zoo.load_dataset("mnist", split="test").images[:u["n"]]
        res = sanity.model_randomisation(clf, x, [u["method"]], seed=SEED, method_params=mp)
    elif u["setting"] == "mnist_cnn_s":
        clf = zoo.load_classifier("mnist_cnn_s")
        x = zoo.load_dataset("mnist", split="test").images[:u["n"]]
        res = sanity.data_randomisation(clf, zoo.load_classifier("mnist_cnn_s_random_labels"), x, [u["method"]],
                                        seed=SEED, method_params=mp)
    else:
        clf = zoo.load_classifier("mobilenet_v2_imagenet")
        x = zoo.load_dataset("photos").images[:u["n"]]
        res = sanity.model_randomisation(clf, x, [u["method"]], seed=SEED, method_params=mp, at=u["at"])
    return {"config": u, "result": res.to_dict(), "wall_seconds": round(time.perf_counter() - t0, 2),
            "threads": torch.get_num_threads(), "git_rev": git_rev(), "seed": SEED}


def run(only: str | None = None) -> None:
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for u in units():
        if only and u["setting"] != only:
            continue
        p = _path(u)
        if p.is_file():
            try:
                if json.loads(p.read_text())["config"] == u:
                    continue
            except (ValueError, KeyError):
                pass
        rec = run_unit(u)
        atomic_write_text(p, json.dumps(rec, indent=1) + "\n")
        print(f"{u['setting']:12s} {u['kind']:9s} {u['method']:22s} {rec['wall_seconds']:7.1f} s", flush=True)


def _ci(v: torch.Tensor) -> tuple[float, float]:
    from scipy.stats import t

    n = v.numel()
    mean = float(v.mean())
    if n < 2:
        return mean, float("nan")
    return mean, float(t.ppf(0.975, n - 1) * v.std(unbiased=True) / math.sqrt(n))


def summary() -> str:
    lines = []
    titles = {"mnist_cnn": "MNIST CNN (`mnist_cnn`), cascading randomisation, all 4 layers re-initialised",
              "mnist_cnn_s": "Data randomisation: `mnist_cnn_s` vs `mnist_cnn_s_random_labels`",
              "mobilenet_v2": "MobileNetV2 (ImageNet), cascading randomisation down to `features.0` (every block)"}
    for setting, title in titles.items():
        recs = []
        for u in units():
            if u["setting"] == setting and _path(u).is_file():
                recs.append(json.loads(_path(u).read_text()))
        if not recs:
            continue
        results = [sanity.SanityResult.from_dict(r["result"]) for r in recs]
        measures = results[0].measures
        n = results[0].values[results[0].methods[0]].shape[2]
        lines += [f"**{title}** — N = {n} images, seed {SEED}; similarity to the original map after full "
                  "randomisation, mean ± 95 % CI (lower = the map depends on what was randomised):", "",
                  "| method | " + " | ".join(measures) + " | wall s |",
                  "|---|" + "---:|" * (len(measures) + 1)]
        for rec, res in zip(recs, results):
            m = res.methods[0]
            cells = []
            for k in range(len(measures)):
                mean, half = _ci(res.values[m][-1, k])
                cells.append(f"{mean:.3f} ± {half:.3f}")
            budget = rec["result"]["params"]["method_params"][m]
            budget = {k: v for k, v in budget.items() if k != "progress"}
            label = m + (f" ({', '.join(f'{k}={v}' for k, v in budget.items())})" if budget else "")
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {rec['wall_seconds']:.0f} |")
        revs = sorted({r["git_rev"] for r in recs})
        lines += ["", f"git rev {', '.join(revs)}, {recs[0]['threads']} thread(s).", ""]
        if results[0].kind != "data":
            merged = sanity.SanityResult(results[0].kind, [r.methods[0] for r in results], results[0].steps,
                                         measures, {r.methods[0]: r.values[r.methods[0]] for r in results},
                                         {r.methods[0]: r.n_undefined[r.methods[0]] for r in results})
            merged.save_plot(OUT / f"{setting}_curves.png", ["spearman_abs", "ssim"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--summary", action="store_true", help="only print the tables (and write the figures)")
    p.add_argument("--only", choices=["mnist_cnn", "mnist_cnn_s", "mobilenet_v2"])
    args = p.parse_args(argv)
    if not args.summary:
        t0 = time.perf_counter()
        run(args.only)
        print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    text = summary()
    atomic_write_text(OUT / "summary.md", text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
