"""Dynamic Ablation paper reproductions, sized for a shared 2-core CPU (SPEC §4 "Reproduction").

    python experiments/da_experiments.py fig5   [--n 100]   # insertion game + per-method time table
    python experiments/da_experiments.py table1 [--n 200]   # cross-model MAR on a common image set
    python experiments/da_experiments.py table2 [--n 50]    # MAR / time over k × superpixels
    python experiments/da_experiments.py fig6   [--n 50]    # MAR over α_step and f_c sweeps

Results (JSON, markdown, PNG) go to experiments/results/da_<name>.*. Every run is seeded.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import cnnlens
from cnnlens import zoo
from cnnlens._io import atomic_write_bytes, atomic_write_text
from cnnlens.ablation import dynamic_ablation
from cnnlens.errors import AssetMissingError

OUT = Path(__file__).resolve().parent / "results"


def _save(name: str, payload: dict, markdown: str) -> None:
    payload = {**payload, "load_avg": os.getloadavg(), "torch_threads": torch.get_num_threads()}
    atomic_write_text(OUT / f"da_{name}.json", json.dumps(payload, indent=2, default=float))
    atomic_write_text(OUT / f"da_{name}.md", markdown)
    print(markdown)


def _plot(name: str, draw) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw(plt)
    bio = io.BytesIO()
    fig.savefig(bio, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(OUT / f"da_{name}.png", bio.getvalue())


def _sample(ds, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(ds.images.shape[0], generator=g)[:n]
    return ds.images[idx], ds.labels[idx]


# ----------------------------------------------------------------------------------- Fig. 5
def fig5(args: argparse.Namespace) -> None:
    """Insertion game (SPEC §3) of DA Pos-R vs gradient, Guided Backprop, Grad-CAM, RISE and
    Extremal Perturbation on a random, unfiltered MNIST test sample; time per image per method
    from the same run."""
    from cnnlens.metrics import insertion_game

    clf = zoo.load_classifier("mnist_cnn")
    x, y = _sample(zoo.load_dataset("mnist"), args.n, args.seed)
    scale = 28 / 224  # EP's reference step/σ/blur are for 224-px inputs; scaled to 28 px
    methods = {
        "da_pos": dict(iterations=500),
        "saliency": {},
        "guided_backprop": {},
        "gradcam": {},
        "rise": dict(n_masks=4000),
        "extremal_perturbation": dict(step=1, sigma=21 * scale, max_blur=20 * scale, iterations=800),
    }
    curves, times, params = {}, {}, {}
    fractions = None
    for name, kw in methods.items():
        t0 = time.perf_counter()
        e = cnnlens.explain(clf, x, name, seed=args.seed, batch_size=64, **kw)
        times[name] = (time.perf_counter() - t0) / x.shape[0]
        ig = insertion_game(clf, x, e, labels=y, seed=args.seed)
        fractions = ig.fractions.tolist()
        curves[name] = ig.accuracy.tolist()
        params[name] = {k: v for k, v in e.params.items() if k != "version"}
        print(f"{name}: {times[name] * 1000:.1f} ms/image, acc {[f'{a:.2f}' for a in curves[name]]}", flush=True)
    acc0 = float((clf.predict(x) == y).float().mean())
    head = "| method | " + " | ".join(f"p={p:g}" for p in fractions) + " | ms / image |"
    sep = "|---" * (len(fractions) + 2) + "|"
    rows = [f"| {m} | " + " | ".join(f"{a:.3f}" for a in curves[m]) + f" | {times[m] * 1000:.1f} |" for m in methods]
    md = (f"### DA Fig. 5 — insertion game, mnist_cnn on {x.shape[0]} random MNIST images "
          f"(seed {args.seed}, unmodified accuracy {acc0:.3f})\n\n" + "\n".join([head, sep, *rows]) + "\n")
    _save("fig5", {"n": x.shape[0], "fractions": fractions, "accuracy": curves, "seconds_per_image": times,
                   "unmodified_accuracy": acc0, "params": params}, md)

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6, 4))
        for m in methods:
            ax.plot(fractions, curves[m], marker="o", ms=3, label=m)
        ax.axhline(acc0, color="grey", ls=":", label="unmodified")
        ax.set_xscale("log")
        ax.set_xlabel("kept fraction p (log)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"Insertion game, mnist_cnn, {x.shape[0]} images")
        ax.legend(fontsize=7)
        return fig

    _plot("fig5", draw)


# ----------------------------------------------------------------------------------- Table 1
def _common_mar(models: list[str], dataset: str, n: int, seed: int, split: str | None, iterations: int) -> dict:
    ds = zoo.load_dataset(dataset, **({"split": split} if split else {}))
    x, y = ds.images[:n], ds.labels[:n]
    clfs, missing = {}, []
    for m in models:
        try:
            clfs[m] = zoo.load_classifier(m)
        except AssetMissingError as exc:
            missing.append(f"{m}: {str(exc).splitlines()[0][:120]}")
    if len(clfs) < 2:
        return {"dataset": dataset, "missing": missing, "models": {}}
    ok = torch.ones(x.shape[0], dtype=torch.bool)
    for clf in clfs.values():
        ok &= clf.predict(x) == y
    xs = x[ok]
    out = {"dataset": dataset, "first_n": n, "common": int(ok.sum()), "missing": missing, "models": {}}
    for m, clf in clfs.items():
        t0 = time.perf_counter()
        res = dynamic_ablation(clf, xs, rule="pos", iterations=iterations, seed=seed)
        s = res.mar_summary()
        out["models"][m] = {**s, "seconds": time.perf_counter() - t0, "accepted_mean": float(res.accepted.double().mean()),
                            "no_acceptance": int((res.accepted == 0).sum())}
        print(m, out["models"][m], flush=True)
    return out


def table1(args: argparse.Namespace) -> None:
    families = [
        (["rnet_face", "onet_face"], "lfw_faces", None),
        (["fashion_cnn_s", "fashion_cnn_m", "fashion_cnn_l"], "fashion_mnist", "test"),
    ]
    if args.family != "all":
        families = [f for f in families if (f[1] == "lfw_faces") == (args.family == "faces")]
    results, lines = [], ["### DA Table 1 — cross-model MAR (Pos-R, 500 iterations, k=4, α=0.2, f_c=0.95, 500 superpixels)\n"]
    for models, dataset, split in families:
        r = _common_mar(models, dataset, args.n, args.seed, split, 500)
        results.append(r)
        if not r["models"]:
            lines.append(f"{dataset}: not run — missing models: {'; '.join(r['missing'])}\n")
            continue
        lines.append(f"\n{dataset}: the {r['common']} of the first {r['first_n']} images every model classifies correctly\n")
        lines.append("| model | MAR mean | MAR std | images | no acceptance | time (s) |")
        lines.append("|---|---|---|---|---|---|")
        for m, v in r["models"].items():
            lines.append(f"| {m} | {v['mean']:.2%} | {v['std']:.2%} | {v['n']} | {v['no_acceptance']} | {v['seconds']:.1f} |")
    _save("table1" if args.family in ("all", "faces") else "table1_fashion", {"families": results}, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------- Table 2
def table2(args: argparse.Namespace) -> None:
    clf = zoo.load_classifier(args.model)
    ds = zoo.load_dataset(args.dataset)
    x, _ = _sample(ds, args.n, args.seed)
    ks, sps = [1, 2, 4, 8, 16], [50, 100, 500, 1000, 0]
    res: dict[str, dict] = {}
    from cnnlens.ablation.superpixels import segment

    segs = {sp: segment(x, sp) for sp in sps}
    seg_counts = {sp: float(segs[sp].count.double().mean()) for sp in sps}
    pixel_like = {sp for sp in sps if sp and torch.equal(segs[sp].labels, segs[0].labels)}
    for k in ks:
        for sp in [0, *[s for s in sps if s]]:
            if sp in pixel_like:  # SLIC returned one segment per pixel: the same run as pixel mode
                res[f"{k}/{sp}"] = {**res[f"{k}/0"], "same_as_pixel_mode": True}
                continue
            t0 = time.perf_counter()
            r = dynamic_ablation(clf, x, rule="pos", k=k, superpixels=sp, iterations=500, seed=args.seed)
            dt = (time.perf_counter() - t0) / x.shape[0]
            res[f"{k}/{sp}"] = {"mar": r.mar_summary(), "seconds_per_image": dt}
            print(k, sp, res[f"{k}/{sp}"], flush=True)
            atomic_write_text(OUT / "da_table2.partial.json", json.dumps(res, indent=2))
    head = "| k | " + " | ".join("pixel mode" if sp == 0 else f"sp={sp}" for sp in sps) + " |"
    lines = [f"### DA Table 2 — MAR / seconds per image, {args.model} on {x.shape[0]} random {args.dataset} images "
             f"(Pos-R, 500 iterations, batched)\n",
             "mean segments per image: " + ", ".join(f"sp={sp}: {c:.0f}" for sp, c in seg_counts.items()) + "\n",
             head, "|---" * (len(sps) + 1) + "|"]
    for k in ks:
        lines.append(f"| {k} | " + " | ".join(
            f"{res[f'{k}/{sp}']['mar']['mean']:.3f} / {res[f'{k}/{sp}']['seconds_per_image']:.2f}" for sp in sps) + " |")
    _save("table2", {"model": args.model, "n": x.shape[0], "segments": seg_counts, "results": res}, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------- Fig. 6
def fig6(args: argparse.Namespace) -> None:
    clf = zoo.load_classifier(args.model)
    x, _ = _sample(zoo.load_dataset(args.dataset), args.n, args.seed)
    alphas = [float(a) for a in args.alphas.split(",")]
    fcs = [float(f) for f in args.fcs.split(",")]
    out: dict[str, dict] = {"alpha": {}, "fc": {}}
    for rule in ("pos", "neg"):
        for a in alphas:
            r = dynamic_ablation(clf, x, rule=rule, alpha_step=a, iterations=500, seed=args.seed)
            out["alpha"][f"{rule}/{a}"] = r.mar_summary()
            print(rule, "alpha", a, out["alpha"][f"{rule}/{a}"], flush=True)
            atomic_write_text(OUT / "da_fig6.partial.json", json.dumps(out, indent=2))
        for f in fcs:
            if f == 0.95 and f"{rule}/0.2" in out["alpha"]:  # the same run as α_step = 0.2
                out["fc"][f"{rule}/{f}"] = out["alpha"][f"{rule}/0.2"]
                continue
            r = dynamic_ablation(clf, x, rule=rule, fc=f, iterations=500, seed=args.seed)
            out["fc"][f"{rule}/{f}"] = r.mar_summary()
            print(rule, "fc", f, out["fc"][f"{rule}/{f}"], flush=True)
            atomic_write_text(OUT / "da_fig6.partial.json", json.dumps(out, indent=2))
    lines = [f"### DA Fig. 6 — mean MAR over α_step (f_c = 0.95) and f_c (α_step = 0.2), {args.model} on "
             f"{x.shape[0]} random {args.dataset} images, 500 iterations, k = 4\n",
             "| α_step | " + " | ".join(f"{a:g}" for a in alphas) + " |", "|---" * (len(alphas) + 1) + "|"]
    for rule in ("pos", "neg"):
        lines.append(f"| {rule.capitalize()}-R MAR | " + " | ".join(f"{out['alpha'][f'{rule}/{a}']['mean']:.3f}" for a in alphas) + " |")
    lines += ["", "| f_c | " + " | ".join(f"{f:g}" for f in fcs) + " |", "|---" * (len(fcs) + 1) + "|"]
    for rule in ("pos", "neg"):
        lines.append(f"| {rule.capitalize()}-R MAR | " + " | ".join(f"{out['fc'][f'{rule}/{f}']['mean']:.3f}" for f in fcs) + " |")
    _save("fig6", {"model": args.model, "n": x.shape[0], "alphas": alphas, "fcs": fcs, "mar": out}, "\n".join(lines) + "\n")

    def draw(plt):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for ax, key, vals, lab in ((axes[0], "alpha", alphas, "α_step"), (axes[1], "fc", fcs, "f_c")):
            for rule, col in (("pos", "tab:blue"), ("neg", "tab:red")):
                ax.plot(vals, [out[key][f"{rule}/{v}"]["mean"] for v in vals], marker="o", color=col, label=f"{rule.capitalize()}-R")
            ax.set_xlabel(lab)
            ax.set_ylabel("mean MAR")
            ax.legend()
        return fig

    _plot("fig6", draw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=("fig5", "table1", "table2", "fig6"))
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", choices=("all", "faces", "fashion"), default="all", help="table1: which model family")
    ap.add_argument("--model", default="mnist_cnn")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--alphas", default="0.05,0.1,0.2,0.4,0.8")
    ap.add_argument("--fcs", default="0.8,0.9,0.95,0.99")
    args = ap.parse_args()
    cnnlens.tune_cpu_malloc()  # a long CPU job: no page fault per large activation (BENCHMARKS.md)
    defaults = {"fig5": 100, "table1": 200, "table2": 50, "fig6": 50}
    args.n = args.n or defaults[args.which]
    {"fig5": fig5, "table1": table1, "table2": table2, "fig6": fig6}[args.which](args)


if __name__ == "__main__":
    main()
